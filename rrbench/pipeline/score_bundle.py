"""Score bundles: the scores of one model on one task split, as a Parquet file that travels between stores.

A lab publishing a record can publish the scores behind it; a sweep on a laptop can read scores computed on a
cluster. ``rrbench cache export`` writes a bundle, ``rrbench cache import`` loads one into any store.

A bundle holds two columns, ``key`` (the 16-byte pair key) and ``score`` (float64), sorted by key, and in the Parquet
schema's metadata what the scores are: the task (id, version, data hash), split, context, the model fingerprint and
the fingerprint's info. It is addressed by the sha256 of its canonical content (that identity, then every key with
its score as little-endian float64, in key order), not of the file's bytes, so writing it again with another
Parquet version or compression gives the same address. Import checks everything it can without the model:

- the content hash (a file edited or cut short is refused);
- the fingerprint against its info (a bundle whose identity was edited is refused);
- the task: the local task's data hash must equal the bundle's, and every key must be a pair of that split (a query
  of the split with one of its candidates, read with the bundle's context);
- stored scores of the same pairs must agree within the dtype's tolerance (else nothing is written).

Records that read imported scores name the bundle's hash in ``provenance.score_bundles``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrbench import __version__
from rrbench.pipeline.score_store import ScoreStore, pair_key, score_tolerance
from rrbench.tasks.resolve import Task, candidate_text
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write, canonical_hash

FORMAT = "rrbench-score-bundle"
FORMAT_VERSION = 1
_META_KEY = b"rrbench"


@dataclass
class Bundle:
    """A bundle's identity (its metadata) and rows (keys sorted, scores in the same order)."""

    meta: dict[str, Any]
    keys: list[bytes]
    scores: list[float]


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow  # lazy: bundles are the only Parquet rrbench writes, in the optional 'postgres' extra
        import pyarrow.parquet as parquet  # lazy: see above
    except ModuleNotFoundError:
        raise UsageError("score bundles are Parquet files and need pyarrow: pip install 'rrbench[postgres]'") from None
    return pyarrow, parquet


def content_hash(identity: dict[str, Any], keys: Sequence[bytes], scores: Sequence[float]) -> str:
    """sha256 of a bundle's canonical content: its identity, then each key and its float64 score, in key order."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n")
    for key, score in sorted(zip(keys, scores, strict=True)):
        digest.update(key)
        digest.update(float(score).hex().encode("ascii") + b"\n")
    return digest.hexdigest()


def split_keys(task: Task, split: str, context: int) -> set[bytes]:
    """Every pair key a split can ask for: each query with each of its candidates, read with ``context``."""
    return {pair_key(query.text, candidate_text(task, int(i), context))
            for query in task.split_queries(split) for i in task.candidates(query)}


def _identity(task: Task, split: str, context: int, fingerprint: str) -> dict[str, Any]:
    return {"task": {"id": task.id, "version": task.version, "data_sha256": task.data_sha256}, "split": split,
            "context": int(context), "fingerprint": fingerprint}


def pick_model(store: ScoreStore, model: str) -> tuple[int, str, str, dict[str, Any]]:
    """The one registered model whose id is ``model`` or whose fingerprint starts with it."""
    models = store.list_models()
    matches = [m for m in models if m[2] == model or m[1].startswith(model)]
    if not matches:
        known = ", ".join(sorted({m[2] for m in models})) or "none"
        raise UsageError(f"score store {store.location} holds no model {model!r} (models: {known})")
    if len(matches) > 1:
        shown = ", ".join(f"{m[1][:12]} (dtype {m[3].get('dtype')}, max_length {m[3].get('max_length')})"
                          for m in matches)
        raise UsageError(f"--model {model!r} names {len(matches)} fingerprints; give a fingerprint prefix: {shown}")
    return matches[0]


def export_bundle(store: ScoreStore, task: Task, split: str, model: str, output: Path,
                  context: int = 0) -> dict[str, Any]:
    """Write the stored scores of ``model`` on ``split`` as a bundle; returns its metadata (with ``path``).
    ``output`` is a folder (the file is named by the content hash) or a ``.parquet`` path."""
    pyarrow, parquet = _pyarrow()
    mid, fingerprint, model_id, info = pick_model(store, model)
    found = store.get_pairs(mid, sorted(split_keys(task, split, context)))
    if not found:
        raise UsageError(f"score store {store.location} holds no scores of {model_id} ({fingerprint[:12]}) on "
                         f"{task.id} split {split!r}" + (f" with context {context}" if context else ""))
    keys = sorted(found)
    scores = [found[k] for k in keys]
    identity = _identity(task, split, context, fingerprint)
    digest = content_hash(identity, keys, scores)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **identity, "model_id": model_id,
            "fingerprint_info": info, "pairs": len(keys), "content_sha256": digest, "rrbench_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    table = pyarrow.table({"key": pyarrow.array(keys, type=pyarrow.binary(16)),
                           "score": pyarrow.array(scores, type=pyarrow.float64())})
    table = table.replace_schema_metadata({_META_KEY: json.dumps(meta, sort_keys=True).encode("utf-8")})
    target = output if output.suffix == ".parquet" else output / f"rrbench-scores-{digest[:16]}.parquet"
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: folder {target.parent} does not exist")
    atomic_write(target, lambda handle: parquet.write_table(table, handle))
    return {**meta, "path": str(target)}


def read_bundle(path: Path) -> Bundle:
    """A bundle's metadata and rows; refuses a file that is not one (one line, exit 2)."""
    _, parquet = _pyarrow()
    if not path.is_file():
        raise UsageError(f"score bundle {path}: no such file")
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow raises several types for files that are not Parquet
        raise UsageError(f"score bundle {path}: not a Parquet file ({' '.join(str(exc).split())[:200]})") from None
    raw = (table.schema.metadata or {}).get(_META_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UsageError(f"score bundle {path}: not an rrbench score bundle (no '{FORMAT}' metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise UsageError(f"score bundle {path}: format version {meta.get('format_version')} is not "
                         f"{FORMAT_VERSION}; use the rrbench version that wrote it ({meta.get('rrbench_version')})")
    if set(table.column_names) != {"key", "score"}:
        raise UsageError(f"score bundle {path}: columns {table.column_names}, expected key and score")
    keys = [bytes(k) for k in table.column("key").to_pylist()]
    scores = [float(s) for s in table.column("score").to_pylist()]
    return Bundle(meta, keys, scores)


def import_bundle(store: ScoreStore, path: Path, task: Task) -> dict[str, Any]:
    """Check a bundle against ``task`` and load it into ``store``; returns what it did (see the module doc)."""
    bundle = read_bundle(path)
    meta = bundle.meta
    where = f"score bundle {path}"
    wanted = meta.get("task") or {}
    if task.data_sha256 != wanted.get("data_sha256"):
        raise UsageError(f"{where} was made from other data of task {wanted.get('id')!r} (data sha256 "
                         f"{str(wanted.get('data_sha256'))[:12]}...; the local {task.id!r} has {task.data_sha256[:12]}"
                         f"...): its scores do not belong to these texts")
    info, fingerprint = meta.get("fingerprint_info"), str(meta.get("fingerprint"))
    if not isinstance(info, dict) or canonical_hash(info) != fingerprint:
        raise UsageError(f"{where}: its fingerprint does not match its model description (edited?)")
    split, context = str(meta.get("split")), int(meta.get("context") or 0)
    identity = _identity(task, split, context, fingerprint)
    if content_hash(identity, bundle.keys, bundle.scores) != meta.get("content_sha256"):
        raise UsageError(f"{where}: its content does not match its hash {str(meta.get('content_sha256'))[:16]} "
                         f"(corrupt, cut short or edited)")
    if len(set(bundle.keys)) != len(bundle.keys) or any(len(k) != 16 for k in bundle.keys):
        raise UsageError(f"{where}: keys are not 16 distinct bytes each")
    if not all(math.isfinite(s) for s in bundle.scores):
        raise UsageError(f"{where}: holds scores that are not finite")
    universe = split_keys(task, split, context)
    foreign = sum(1 for k in bundle.keys if k not in universe)
    if foreign:
        raise UsageError(f"{where}: {foreign} of {len(bundle.keys)} pairs are not pairs of {task.id} split {split!r}"
                         + (f" with context {context}" if context else ""))
    mid = store.model_id(fingerprint, str(meta.get("model_id")), info)
    counts = store.put_pairs(mid, zip(bundle.keys, bundle.scores, strict=True),
                             score_tolerance(info.get("dtype")), computed=False)
    store.record_bundle(str(meta["content_sha256"]), mid, task.id, task.data_sha256, split, context, len(bundle.keys))
    return {"content_sha256": meta["content_sha256"], "model_id": meta.get("model_id"), "fingerprint": fingerprint,
            "task": task.id, "split": split, "context": context, "pairs": len(bundle.keys), "new": counts.new,
            "already_stored": counts.duplicate}
