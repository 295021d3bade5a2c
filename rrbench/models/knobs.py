"""``--reranker-option KEY=VALUE`` parsing: backend knobs from the command line (no torch here).

Values are read as YAML scalars/lists so that ``group_size=64`` is an int, ``cutoff_layers=[24,40]`` a list,
``engine=false`` a bool and ``implementation=flag`` a string; they land in ``ModelOptions.extra`` and therefore in the
score-cache fingerprint and the config hash.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rrbench.util.errors import UsageError
from rrbench.util.strict_yaml import loads_yaml

#: knobs that must be set through their own flag (they are ModelOptions fields with validation and hashing there)
RESERVED = {"model_path", "device", "max_length", "batch_size", "dtype", "instruction", "trust_remote_code", "runtime"}


def parse_knobs(items: Iterable[str], flag: str = "--reranker-option", keep_colon: bool = False) -> dict[str, Any]:
    """``KEY=VALUE`` flags as a dict. ``keep_colon``: keys may be ``COMPONENT:KEY`` (only KEY is normalised)."""

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        owner, colon, key = key.strip().rpartition(":") if keep_colon else ("", "", key)
        key = owner + colon + key.strip().replace("-", "_")
        if not sep or not key or (colon and not (owner and key.partition(":")[2])):
            raise UsageError(f"{flag} must look like KEY=VALUE, got {item!r}")
        if flag == "--reranker-option" and key in RESERVED:
            raise UsageError(f"--reranker-option {key}: use --{key.replace('_', '-')} instead")
        try:
            value = loads_yaml(raw, flag) if raw.strip() else ""
        except UsageError:
            value = raw
        if not isinstance(value, (str, int, float, bool, list)) or value is None:
            value = raw
        out[key] = value
    return out
