"""Where local weights are, by content: a small index from a weights folder's fingerprint to its path on this machine.

Records never name local paths (they would be wrong on the next machine, and a path in a record is something a
verifier must not be steered by). They name weights by their hash. To re-score or reproduce a record made with a
local model, rrbench looks the hash up here: ``rrbench train`` and ``rrbench run`` remember every local folder they
used, and ``--weights DIR`` adds folders to search. A hit is re-hashed before it is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from rrbench.components.identity import weights_fingerprint
from rrbench.util.cache_paths import cache_disabled_by_env, cache_root
from rrbench.util.errors import RRBenchError
from rrbench.util.io import atomic_write_text

INDEX_FILE = "weights-index.json"


def _index_path() -> Path | None:
    return None if cache_disabled_by_env() else cache_root() / INDEX_FILE


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def remember(fingerprint: str, folder: str | Path) -> None:
    """Note that ``folder`` holds the weights with ``fingerprint`` (a no-op with caches off)."""
    path = _index_path()
    if path is None:
        return
    index = _read(path) if path.is_file() else {}
    where = str(Path(folder).resolve())
    if index.get(fingerprint) == where:
        return
    index[fingerprint] = where
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(index, indent=1, sort_keys=True))


def _candidates(fingerprint: str, search: Iterable[str | Path]) -> Iterable[Path]:
    path = _index_path()
    if path is not None and path.is_file():
        known = _read(path).get(fingerprint)
        if known:
            yield Path(known)
    for root in search:
        root = Path(root)
        yield root
        if root.is_dir():
            yield from sorted(p for p in root.iterdir() if p.is_dir())


def find(fingerprint: str, search: Iterable[str | Path] = ()) -> Path | None:
    """A local folder whose weights hash to ``fingerprint`` (checked now), or None."""
    for folder in _candidates(fingerprint, search):
        try:
            if folder.is_dir() and weights_fingerprint(folder) == fingerprint:
                return folder
        except (OSError, RRBenchError):  # an unreadable or empty candidate is simply not the one
            continue
    return None
