"""``--reranker-option KEY=VALUE`` parsing: backend knobs from the command line (no torch here).

Values are read as YAML scalars/lists so that ``group_size=64`` is an int, ``cutoff_layers=[24,40]`` a list,
``engine=false`` a bool and ``implementation=flag`` a string; they land in ``ModelOptions.extra`` and therefore in the
score-cache fingerprint and the config hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rrbench.errors import UsageError

#: knobs that must be set through their own flag (they are ModelOptions fields with validation and hashing there)
RESERVED = {"model_path", "device", "max_length", "batch_size", "dtype", "instruction", "trust_remote_code"}


def parse_knobs(items: Iterable[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--reranker-option must look like KEY=VALUE, got {item!r}")
        if key in RESERVED:
            raise UsageError(f"--reranker-option {key}: use --{key.replace('_', '-')} instead")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if not isinstance(value, (str, int, float, bool, list)) or value is None:
            value = raw
        out[key] = value
    return out
