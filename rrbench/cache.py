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
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.errors import RRBenchError, UsageError
from rrbench.faults import kill_point
from rrbench.score_checks import check_scores

DB_NAME = "scores.sqlite"
KEY_BYTES = 16  # truncated sha256: a collision needs ~2^64 distinct pairs under one model
_SQL_CHUNK = 500  # host parameters per IN (...) query, below SQLite's historical limit of 999

#: Files that never influence a score (training leftovers, docs); everything else in a weights folder is hashed.
_IGNORED_NAMES = {"README.md", "trainer_state.json", "training_args.bin", "optimizer.pt", "scheduler.pt",
                  "rrbench_model.json", ".gitattributes"}
_IGNORED_PREFIXES = (".", "checkpoint-", "rng_state", "runs")

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


#: Values of ``$RRBENCH_CACHE`` that turn every cache off.
_OFF = {"off", "0", "none", "false", "no"}


def cache_root() -> Path:
    """The one place the cache root is resolved: ``$RRBENCH_CACHE``, else ``$XDG_CACHE_HOME/rrbench``, else
    ``~/.cache/rrbench``. The score cache, embeddings and candidate sets all live under it. A root that exists but is
    not a directory is a user error (exit 2), named here instead of as a traceback from deep inside SQLite."""
    env = os.environ.get("RRBENCH_CACHE", "").strip()
    if env and env.lower() not in _OFF:
        root = Path(env).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "rrbench"
    check_cache_dir(root, "RRBENCH_CACHE" if env else "cache root")
    return root


def check_cache_dir(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path} is not a directory")


#: Kept for callers that predate :func:`cache_root`.
default_cache_dir = cache_root


def cache_disabled_by_env() -> bool:
    """``RRBENCH_CACHE=off`` (or ``0``/``none``/``false``/``no``) turns every cache off."""
    return os.environ.get("RRBENCH_CACHE", "").strip().lower() in _OFF


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
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; concurrent writers wait on the lock (``timeout_s``) instead of failing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        kill_point("commit")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ScoreCache":
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
        """sha256 of a file, memoised on (path, size, mtime): re-hashing gigabytes on every run would be slow."""
        stat = path.stat()
        key = str(path.resolve())
        row = self._db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (key,)).fetchone()
        if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return str(row[2])
        from rrbench.io import sha256_file

        digest = sha256_file(path)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, sha256) VALUES (?,?,?,?)",
                       (key, stat.st_size, stat.st_mtime_ns, digest))
        return digest

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
            from rrbench.errors import close_matches

            raise UsageError(f"the cache holds no scores for model {model!r}.{close_matches(model, known)}")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if model is None:
            self._db.execute("VACUUM")
        return deleted

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- fingerprints ----------------------------------------------------------------------------------------------------
#: In-process memo of file digests, keyed by (path, size, mtime): a fusion names the same weights several times.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path, cache: ScoreCache | None) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        from rrbench.io import sha256_file

        _DIGESTS[key] = cache.file_sha256(path) if cache is not None else sha256_file(path)
    return _DIGESTS[key]


def weights_fingerprint(path: str | Path, cache: ScoreCache | None = None) -> str:
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
    memo = None
    if not cache_disabled_by_env():
        try:
            memo = ScoreCache()
        except RRBenchError:
            memo = None  # an unusable cache only costs the memo; the cache's own users report it
    try:
        return weights_fingerprint(path, memo)
    finally:
        if memo is not None:
            memo.close()


#: ModelOptions fields that change speed, not scores: left out of the fingerprint.
_NOT_SCORE_OPTIONS = {"batch_size", "device", "model_path", "show_progress", "progress", "num_workers"}


def model_fingerprint(reranker: Any, cache: ScoreCache | None = None) -> tuple[str, dict[str, Any]]:
    """``(fingerprint, the dict it hashes)`` for a loaded reranker.

    A reranker may define ``cache_fingerprint() -> dict`` to add what rrbench cannot see (remote model versions,
    prompt code). ``weights`` is a content hash of the weight files when the reranker says where they are.
    """
    from rrbench.io import canonical_hash

    spec, options = reranker.spec, reranker.options
    weights_path = getattr(reranker, "weights_path", None)
    weights = weights_fingerprint(weights_path, cache) if weights_path and Path(weights_path).exists() else None
    effective_max_length = options.max_length or getattr(reranker, "max_length", None) or spec.max_length
    extra = {k: v for k, v in sorted(options.extra.items()) if k not in _NOT_SCORE_OPTIONS}
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
    from rrbench.models.base import ListwiseReranker, PairwiseReranker

    fingerprint, info = model_fingerprint(reranker, cache)
    if info.get("unpinned"):
        return reranker
    binding = _Binding(cache, cache.model_id(fingerprint, reranker.spec.id, info), fingerprint, info)
    if isinstance(reranker, ListwiseReranker):
        return CachedListwiseReranker(reranker, binding)
    if isinstance(reranker, PairwiseReranker):
        return CachedPairwiseReranker(reranker, binding)
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


# the wrappers must *be* pairwise/listwise rerankers (the engine dispatches on the class); models.base imports
# nothing from here, so this module-level import is not a cycle
from rrbench.models.base import ListwiseReranker as _Listwise  # noqa: E402
from rrbench.models.base import PairwiseReranker as _Pairwise  # noqa: E402


class CachedPairwiseReranker(_CachedMixin, _Pairwise):
    def __init__(self, inner: Any, binding: _Binding) -> None:  # noqa: D107 - see wrap()
        self._setup(inner, binding)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        b = self._binding
        keys = [pair_key(q, d) for q, d in zip(queries, documents)]
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
            new = dict(zip(missing, fresh.tolist()))
            b.cache.put_pairs(b.mid, new.items())
            found.update(new)
        return np.asarray([found[k] for k in keys], dtype=np.float64)


class CachedListwiseReranker(_CachedMixin, _Listwise):
    def __init__(self, inner: Any, binding: _Binding) -> None:  # noqa: D107 - see wrap()
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
    if cache_dir is not None and str(cache_dir).strip().lower() in _OFF:
        return None
    return ScoreCache(cache_dir)
