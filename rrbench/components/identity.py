"""What identifies a component's scores: content hashes of its weights and the model fingerprint.

Identity comes from content, never from a path or a file's mtime: a score cache key, a candidate-cache key or a
config hash derived from a local folder name would be wrong on the next machine, and weights retrained into the same
folder must never serve stale scores. Every layer that needs an identity (the score cache, retrievers' caches,
runtime exports, checkpoints, records) takes it from here.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from rrbench.components.registry import BUILTIN_PLUGIN, get_registry
from rrbench.util.cache_paths import cache_disabled_by_env
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.file_digests import FileDigestMemo
from rrbench.util.io import canonical_hash, sha256_file


class DigestMemo(Protocol):
    """Anything that memoises file digests (the score cache, :class:`FileDigestMemo`)."""

    def file_sha256(self, path: Path) -> str: ...


#: Files that never influence a score (training leftovers, docs); everything else in a weights folder is hashed.
_IGNORED_NAMES = {"README.md", "trainer_state.json", "training_args.bin", "optimizer.pt", "scheduler.pt",
                  "rrbench_model.json", ".gitattributes"}
_IGNORED_PREFIXES = (".", "checkpoint-", "rng_state", "runs")

def weight_files(root: Path) -> Iterator[Path]:
    """Every file of a weights folder that can influence a score (not training leftovers, hidden or ``checkpoint-*``
    folders, docs)."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if not path.is_file() or path.name in _IGNORED_NAMES or any(p.startswith(_IGNORED_PREFIXES) for p in rel):
            continue
        yield path


# -- fingerprints ----------------------------------------------------------------------------------------------------
#: In-process memo of file digests, keyed by (path, size, mtime): a fusion names the same weights several times.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path, cache: DigestMemo | None) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = cache.file_sha256(path) if cache is not None else sha256_file(path)
    return _DIGESTS[key]


def weights_fingerprint(path: str | Path, cache: DigestMemo | None = None) -> str:
    """Content hash of a weights folder (or file): every file that can influence a score, by relative path.

    The one weights fingerprint of rrbench: reranker score-cache keys, retriever candidate-cache keys, embedding
    keys and config hashes all use it, so weights changed in place never serve stale scores, pools or hashes.
    ``cache`` memoises file digests on disk by (path, size, mtime) so gigabytes are not re-read on every run.
    """
    root = Path(path)
    parts = []
    for file in weight_files(root):
        parts.append(f"{file.relative_to(root) if root.is_dir() else file.name}\t{_file_digest(file, cache)}")
    if not parts:
        raise UsageError(f"{root}: no weight files found to fingerprint")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def stored_weights_fingerprint(path: str | Path | None) -> str | None:
    """:func:`weights_fingerprint` for first-stage models, with file digests memoised in the score cache's
    ``file_hashes`` table when the cache is on (a retriever is fingerprinted on every run, even a cached one).
    None when there is no weights path."""
    if not path or not Path(path).exists():
        return None
    memo: FileDigestMemo | None = None
    if not cache_disabled_by_env():
        try:
            memo = FileDigestMemo()
        except RRBenchError:
            memo = None  # an unusable cache only costs the memo; the cache's own users report it
    try:
        return weights_fingerprint(path, memo)
    finally:
        if memo is not None:
            memo.close()


#: ModelOptions fields that change speed, not scores: left out of the fingerprint.
NOT_SCORE_OPTIONS = {"batch_size", "device", "model_path", "show_progress", "progress", "num_workers"}


def model_fingerprint(reranker: Any, cache: DigestMemo | None = None) -> tuple[str, dict[str, Any]]:
    """``(fingerprint, the dict it hashes)`` for a loaded reranker.

    A reranker may define ``cache_fingerprint() -> dict`` to add what rrbench cannot see (remote model versions,
    prompt code). ``weights`` is a content hash of the weight files when the reranker says where they are.
    """
    spec, options = reranker.spec, reranker.options
    weights_path = getattr(reranker, "weights_path", None)
    weights = weights_fingerprint(weights_path, cache) if weights_path and Path(weights_path).exists() else None
    effective_max_length = options.max_length or getattr(reranker, "max_length", None) or spec.max_length
    extra = {k: v for k, v in sorted(options.extra.items()) if k not in NOT_SCORE_OPTIONS}
    info: dict[str, Any] = {
        "id": spec.id, "backend": spec.backend, "interaction": getattr(reranker, "interaction", spec.interaction),
        "score_kind": reranker.score_kind, "hub_id": spec.hub_id, "revision": getattr(reranker, "revision", None),
        "weights_sha256": weights, "dtype": options.dtype, "max_length": effective_max_length,
        "instruction": options.instruction if options.instruction is not None else spec.instruction,
        "trust_remote_code": options.trust_remote_code, "options": extra,
    }
    custom = getattr(reranker, "cache_fingerprint", None)
    if callable(custom) and custom() is not None:
        info["custom"] = custom()
    if weights is None and info.get("custom") is None and not info["revision"]:
        # Nothing pins what the model is: hashing only its name would serve stale scores after an update.
        info["unpinned"] = True
    return canonical_hash(info), info


# -- plugin source -----------------------------------------------------------------------------------------------------
#: In-process memo: top-level module name -> content hash of its Python files.
_SOURCES: dict[str, str] = {}


def _installed_from_local_source(distribution: str | None) -> bool:
    """PEP 610: ``direct_url.json`` of a distribution installed from a folder (editable or not) or a local file."""
    if not distribution:
        return False
    try:
        raw = importlib.metadata.distribution(distribution).read_text("direct_url.json")
        found = json.loads(raw) if raw else {}
    except Exception:
        return False
    return bool(isinstance(found, dict) and ("dir_info" in found or str(found.get("url", "")).startswith("file:")))


def source_sha256(module: str) -> str | None:
    """Content hash of the Python files of ``module``'s top-level package (or the module file itself)."""
    top = module.split(".")[0]
    if top not in _SOURCES:
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            found = None
        origin = Path(found.origin) if found is not None and found.origin else None
        if origin is None or not origin.is_file():
            return None
        root = origin.parent if origin.name == "__init__.py" else origin
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        digest = hashlib.sha256()
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(f"{file.relative_to(root) if root.is_dir() else file.name}\t{sha256_file(file)}\n"
                          .encode())
        _SOURCES[top] = digest.hexdigest()
    return _SOURCES[top]


def plugin_source_fingerprint(component: Any) -> str | None:
    """For a component of a plugin installed in editable mode or from a local path: a hash of its source files, else
    None (rrbench's own components, and plugins installed from an index, change only with their version).

    Why: a plugin author edits scoring code without touching ``cache_fingerprint()``; the score cache must not serve
    the old scores (0.6793 where the code now gives 0.4703, issue 26). The hash keys the score cache only, never a
    record's configuration hash, or every edit would make a new system.
    """
    spec = getattr(component, "spec", None)
    kind = getattr(spec, "kind", None)
    if spec is None or kind is None:
        return None
    entries = get_registry().entries.get(kind, [])
    entry = next((e for e in entries if e.spec is spec), None) or next((e for e in entries if e.spec == spec), None)
    if entry is None or entry.plugin == BUILTIN_PLUGIN:
        return None
    if not (entry.editable or _installed_from_local_source(entry.distribution)):
        return None
    module = str(getattr(spec, "loader", "")).partition(":")[0]
    return source_sha256(module) if module else None

