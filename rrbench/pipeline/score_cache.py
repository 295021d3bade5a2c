"""The score cache: reranker scores stored in SQLite, keyed by exactly the inputs that determine them.

Why a cache at all: sweeps re-score the same (query, sentence) pairs over and over (other pool sizes, other fusion
settings, other thresholds). A score depends only on the model, the scoring options and the texts, so it is computed
once and reused. Concretely a score's key is

- the **model fingerprint**: spec id, backend, interaction, score kind, revision, a content hash of the weight
  files (so retraining into the same folder never serves stale scores), dtype, effective max length, instruction /
  template and every backend option;
- for pointwise and bi-encoder models: the query text and the candidate text;
- for listwise models: the query text and the whole *ordered* candidate list (a score depends on its neighbours).

The candidate generator is deliberately *not* part of the key (it is part of the result's config hash instead), so
scores are shared across retrievers, pool sizes and fusion settings. Batch size and device are not part of the key
either: they change speed, not the scores (beyond float noise).

Concurrency: one SQLite file in WAL mode, every write a short ``BEGIN IMMEDIATE`` transaction with ``INSERT OR
IGNORE``; several processes may score into the same cache at once (tested). Keep the cache on a local disk: SQLite's
WAL mode does not work over network file systems.

Location: ``--cache-dir`` > ``$RRBENCH_CACHE`` > ``$XDG_CACHE_HOME/rrbench`` (``~/.cache/rrbench``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker, PointwiseReranker
from rrbench.components.identity import model_fingerprint
from rrbench.components.score_checks import check_scores
from rrbench.util.cache_paths import cache_disabled_by_env, cache_root, check_cache_dir, means_off
from rrbench.util.errors import RRBenchError, UsageError, close_matches
from rrbench.util.file_digests import memo_sha256, write_transaction

DB_NAME = "scores.sqlite"
KEY_BYTES = 16  # truncated sha256: a collision needs ~2^64 distinct pairs under one model
_SQL_CHUNK = 500  # host parameters per IN (...) query, below SQLite's historical limit of 999

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    mid INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    info TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_scores (
    mid INTEGER NOT NULL,
    key BLOB NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (mid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_scores (
    mid INTEGER NOT NULL,
    key BLOB NOT NULL,
    scores BLOB NOT NULL,
    PRIMARY KEY (mid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


def pair_key(query: str, document: str) -> bytes:
    """Key of one (query, candidate) pair: length-prefixed so no two different pairs share a byte string."""
    digest = hashlib.sha256()
    for text in (query, document):
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.digest()[:KEY_BYTES]


def list_key(query: str, documents: Sequence[str]) -> bytes:
    """Key of a listwise group: the query and every candidate *in order* (neighbours change listwise scores)."""
    text = json.dumps([query, list(documents)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


@dataclass
class CacheStats:
    """What one run asked of the cache; reported in the result record."""

    hits: int = 0
    misses: int = 0
    computed: int = 0  # unique pairs/groups actually sent to the model (duplicates within a call scored once)
    model_calls: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "computed": self.computed, "model_calls": self.model_calls}


class ScoreCache:
    """A SQLite score store. Cheap to open; one connection per instance (do not share across processes)."""

    def __init__(self, directory: str | Path | None = None, timeout_s: float = 120.0) -> None:
        self.directory = Path(directory).expanduser() if directory else cache_root()
        check_cache_dir(self.directory, "cache directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cache directory {self.directory}: cannot create it ({exc.strerror})") from None
        self.path = self.directory / DB_NAME
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self._db.execute(statement)
        except sqlite3.DatabaseError as exc:
            raise RRBenchError(f"score cache {self.path}: {exc} (delete the file or use another --cache-dir)") from None

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (:func:`rrbench.util.file_digests.write_transaction`)."""
        return write_transaction(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- models --------------------------------------------------------------------------------------------------
    def model_id(self, fingerprint: str, model_id: str, info: dict[str, Any]) -> int:
        """The integer handle of a model fingerprint, registering it on first use."""
        row = self._db.execute("SELECT mid FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()
        if row:
            return int(row[0])
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO models(fingerprint, model_id, info, created) VALUES (?,?,?,?)",
                       (fingerprint, model_id, json.dumps(info, sort_keys=True, default=str), time.time()))
        return int(self._db.execute("SELECT mid FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()[0])

    # -- weights -------------------------------------------------------------------------------------------------
    def file_sha256(self, path: Path) -> str:
        """sha256 of a file through this cache's ``file_hashes`` memo (see :mod:`rrbench.util.file_digests`)."""
        return memo_sha256(self._db, path)

    # -- pair scores ---------------------------------------------------------------------------------------------
    def get_pairs(self, mid: int, keys: Sequence[bytes]) -> dict[bytes, float]:
        found: dict[bytes, float] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _SQL_CHUNK):
            chunk = unique[start:start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, score in self._db.execute(
                    f"SELECT key, score FROM pair_scores WHERE mid=? AND key IN ({marks})", (mid, *chunk)):
                found[bytes(key)] = float(score)
        return found

    def put_pairs(self, mid: int, items: Iterable[tuple[bytes, float]]) -> None:
        rows = [(mid, key, float(score)) for key, score in items]
        if not rows:
            return
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO pair_scores(mid, key, score) VALUES (?,?,?)", rows)

    # -- listwise scores -----------------------------------------------------------------------------------------
    def get_list(self, mid: int, key: bytes) -> np.ndarray | None:
        row = self._db.execute("SELECT scores FROM list_scores WHERE mid=? AND key=?", (mid, key)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype="<f8").astype(np.float64)

    def put_list(self, mid: int, key: bytes, scores: np.ndarray) -> None:
        blob = np.asarray(scores, dtype="<f8").tobytes()
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO list_scores(mid, key, scores) VALUES (?,?,?)", (mid, key, blob))

    # -- maintenance ---------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Per model: id, fingerprint, stored pair scores and listwise groups; plus the file size."""
        models = []
        for mid, fingerprint, model_id, info, created in self._db.execute(
                "SELECT mid, fingerprint, model_id, info, created FROM models ORDER BY model_id, created"):
            pairs = self._db.execute("SELECT COUNT(*) FROM pair_scores WHERE mid=?", (mid,)).fetchone()[0]
            lists = self._db.execute("SELECT COUNT(*) FROM list_scores WHERE mid=?", (mid,)).fetchone()[0]
            models.append({"model_id": model_id, "fingerprint": fingerprint, "pair_scores": int(pairs),
                           "list_groups": int(lists), "created": created, "info": json.loads(info)})
        size = sum(p.stat().st_size for p in self.directory.glob(DB_NAME + "*") if p.is_file())
        return {"path": str(self.path), "size_bytes": size, "models": models,
                "pair_scores": sum(m["pair_scores"] for m in models),
                "list_groups": sum(m["list_groups"] for m in models)}

    def clear(self, model: str | None = None) -> int:
        """Delete every score (``model=None``) or those of one model id / fingerprint prefix; returns rows deleted."""
        with self._write() as db:
            if model is None:
                mids = [r[0] for r in db.execute("SELECT mid FROM models")]
            else:
                mids = [r[0] for r in db.execute(
                    "SELECT mid FROM models WHERE model_id=? OR fingerprint LIKE ?", (model, f"{model}%"))]
            deleted = 0
            for mid in mids:
                deleted += db.execute("DELETE FROM pair_scores WHERE mid=?", (mid,)).rowcount
                deleted += db.execute("DELETE FROM list_scores WHERE mid=?", (mid,)).rowcount
                db.execute("DELETE FROM models WHERE mid=?", (mid,))
            if model is None:
                db.execute("DELETE FROM file_hashes")
        if model is not None and not mids:
            known = [r[0] for r in self._db.execute("SELECT DISTINCT model_id FROM models")]

            raise UsageError(f"the cache holds no scores for model {model!r}.{close_matches(model, known)}")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if model is None:
            self._db.execute("VACUUM")
        return deleted

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- the caching wrapper ---------------------------------------------------------------------------------------------
@dataclass
class _Binding:
    cache: ScoreCache
    mid: int
    fingerprint: str
    info: dict[str, Any]
    stats: CacheStats = field(default_factory=CacheStats)


def wrap(reranker: Any, cache: ScoreCache) -> Any:
    """Return a reranker that answers from ``cache`` and sends only missing pairs/groups to ``reranker``.

    The wrapper keeps the original interface (pairwise or listwise), so the scoring engine needs no changes; new
    scores are committed after every call, so an interrupted run keeps what it computed and the next one resumes.
    Rerankers whose fingerprint is not pinned (no weights on disk, no revision, no ``cache_fingerprint``) are
    returned unwrapped.
    """

    fingerprint, info = model_fingerprint(reranker, cache)
    if info.get("unpinned"):
        return reranker
    binding = _Binding(cache, cache.model_id(fingerprint, reranker.spec.id, info), fingerprint, info)
    if isinstance(reranker, ListwiseReranker):
        return CachedListwiseReranker(reranker, binding)
    if isinstance(reranker, PointwiseReranker):
        return CachedPointwiseReranker(reranker, binding)
    return reranker


class _CachedMixin:
    """Forwarding of everything but scoring to the wrapped reranker."""

    _inner: Any
    _binding: _Binding

    def _setup(self, inner: Any, binding: _Binding) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_binding", binding)
        self.spec = inner.spec
        self.options = inner.options
        self.weights_path = inner.weights_path
        self.weights_source = inner.weights_source
        self.revision = inner.revision
        self.interaction = inner.interaction

    def __getattr__(self, name: str) -> Any:  # only called for attributes not found normally
        return getattr(self._inner, name)

    @property
    def score_kind(self) -> str:
        return self._inner.score_kind

    @property
    def inner(self) -> Any:
        return self._inner

    @property
    def cache_stats(self) -> CacheStats:
        return self._binding.stats

    @property
    def fingerprint(self) -> str:
        return self._binding.fingerprint

    def describe(self) -> dict[str, Any]:
        return self._inner.describe()


class CachedPointwiseReranker(_CachedMixin, PointwiseReranker):
    def __init__(self, inner: Any, binding: _Binding) -> None:
        self._setup(inner, binding)

    def cached_scores(self, queries: Sequence[str], documents: Sequence[str]) -> list[float | None]:
        """The stored score of each pair, None where the cache has none. Never calls the model and counts no hits
        (sweeps read whole splits of scores this way, then decide whether anything needs filling)."""
        b = self._binding
        keys = [pair_key(q, d) for q, d in zip(queries, documents, strict=True)]
        found = b.cache.get_pairs(b.mid, keys)
        return [found.get(key) for key in keys]

    def close(self) -> None:
        """Close the cache connection (the wrapper stays usable for attributes, not for scoring)."""
        self._binding.cache.close()

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        b = self._binding
        keys = [pair_key(q, d) for q, d in zip(queries, documents, strict=True)]
        found = b.cache.get_pairs(b.mid, keys)
        missing: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in found and key not in missing:
                missing[key] = i
        b.stats.hits += sum(1 for k in keys if k in found)
        b.stats.misses += sum(1 for k in keys if k not in found)
        if missing:
            idx = list(missing.values())
            fresh = check_scores(self._inner.score_pairs([queries[i] for i in idx], [documents[i] for i in idx]),
                                 len(idx), f"reranker {self.spec.id!r}")
            b.stats.computed += len(idx)
            b.stats.model_calls += 1
            new = dict(zip(missing, fresh.tolist(), strict=True))
            b.cache.put_pairs(b.mid, new.items())
            found.update(new)
        return np.asarray([found[k] for k in keys], dtype=np.float64)


class CachedListwiseReranker(_CachedMixin, ListwiseReranker):
    def __init__(self, inner: Any, binding: _Binding) -> None:
        self._setup(inner, binding)

    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        b = self._binding
        key = list_key(query, documents)
        cached = b.cache.get_list(b.mid, key)
        if cached is not None and len(cached) == len(documents):
            b.stats.hits += len(documents)
            return cached
        b.stats.misses += len(documents)
        fresh = check_scores(self._inner.score_list(query, documents), len(documents), f"reranker {self.spec.id!r}")
        b.stats.computed += len(documents)
        b.stats.model_calls += 1
        b.cache.put_list(b.mid, key, fresh)
        return fresh


def open_cache(cache_dir: str | Path | None = None, enabled: bool = True) -> ScoreCache | None:
    """The cache a run should use, or None when disabled (``--no-cache`` or ``RRBENCH_CACHE=off``)."""
    if not enabled or (cache_dir is None and cache_disabled_by_env()):
        return None
    if cache_dir is not None and means_off(cache_dir):
        return None
    return ScoreCache(cache_dir)
