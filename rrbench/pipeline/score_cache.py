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

Where scores live: a SQLite file in a cache folder on this machine, or a PostgreSQL database that many machines share
(:mod:`rrbench.pipeline.score_store` is the one interface; ``score_store_sqlite`` and ``score_store_pg`` implement
it). Location: ``--cache-dir`` (a folder or a ``postgresql://`` URL) > ``$RRBENCH_CACHE`` > ``$XDG_CACHE_HOME/rrbench``
(``~/.cache/rrbench``). On a shared store, a run's missing scores are filled through the store's fill queue
(:mod:`rrbench.pipeline.fill_queue`) before they are read, so two processes needing the same pairs never score them
both.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker, PointwiseReranker
from rrbench.components.calls import component_label, running
from rrbench.components.identity import model_fingerprint, plugin_source_fingerprint
from rrbench.components.score_checks import check_scores
from rrbench.pipeline.fill_queue import plan_units, work_queue
from rrbench.pipeline.score_store import KEY_BYTES, ScoreStore, list_key, pair_key, score_tolerance
from rrbench.pipeline.score_store_pg import PostgresScoreStore
from rrbench.pipeline.score_store_sqlite import DB_NAME, SQLiteScoreStore
from rrbench.util.cache_paths import (
    cache_disabled_by_env,
    database_from_env,
    is_database_url,
    means_off,
    note_scores_committed,
)
from rrbench.util.io import canonical_hash
from rrbench.util.progress import progress as _bar

#: The SQLite store under its historical name (``ScoreCache(directory)``).
ScoreCache = SQLiteScoreStore

__all__ = ["DB_NAME", "KEY_BYTES", "CacheStats", "CachedListwiseReranker", "CachedPointwiseReranker", "ScoreCache",
           "ScoreStore", "list_key", "open_cache", "open_store", "pair_key", "set_worker_label", "worker_label",
           "wrap"]

#: How this process names itself in a shared store's worker table (``rrbench matrix run`` sets ``matrix:NAME``).
_WORKER_LABEL = ["run"]


def set_worker_label(label: str) -> None:
    """Name this process's writes in shared stores' worker tables (a report then sums a matrix's workers)."""
    _WORKER_LABEL[0] = label


def worker_label() -> str:
    """This process's label in worker tables (:func:`set_worker_label`; ``run`` unless a command set one)."""
    return _WORKER_LABEL[0]


@dataclass
class CacheStats:
    """What one run asked of the cache; reported in the result record."""

    hits: int = 0
    misses: int = 0
    computed: int = 0  # unique pairs/groups actually sent to the model (duplicates within a call scored once)
    model_calls: int = 0
    #: seconds spent inside the model's scoring calls (no cache look-ups, writes or model loading): pairs/s divides
    #: ``computed`` by this
    model_seconds: float = 0.0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "computed": self.computed, "model_calls": self.model_calls}


def open_store(location: str | Path | None = None) -> ScoreStore:
    """The store at ``location``: a ``postgresql://`` URL, a cache folder, or (None) ``$RRBENCH_CACHE`` / the
    cache root. Never None: callers that honour ``off`` use :func:`open_cache`."""
    if location is None:
        location = database_from_env()
    if location is not None and is_database_url(location):
        return PostgresScoreStore(str(location))
    return SQLiteScoreStore(location)


# -- the caching wrapper ---------------------------------------------------------------------------------------------
def load_model(reranker: Any) -> None:
    """Build a deferred reranker's model now (rrbench.models.lazy), so that the time of its first scoring call is
    scoring time, not loading time; other rerankers are loaded already."""
    if not getattr(reranker, "loaded", True):
        with running(component_label(reranker), "loading the model"):
            reranker.model()

@dataclass
class _Binding:
    cache: ScoreStore
    mid: int
    fingerprint: str
    info: dict[str, Any]
    stats: CacheStats = field(default_factory=CacheStats)
    #: keys a queue fill of this run scored (their first read counts as a miss, not a hit)
    fresh: set[bytes] = field(default_factory=set)

    @property
    def tolerance(self) -> float:
        return score_tolerance(self.info.get("dtype"))


def wrap(reranker: Any, cache: ScoreStore) -> Any:
    """Return a reranker that answers from ``cache`` and sends only missing pairs/groups to ``reranker``.

    The wrapper keeps the original interface (pairwise or listwise), so the scoring engine needs no changes; new
    scores are committed after every call, so an interrupted run keeps what it computed and the next one resumes.
    Rerankers whose fingerprint is not pinned (no weights on disk, no revision, no ``cache_fingerprint``) are
    returned unwrapped.
    """

    fingerprint, info = model_fingerprint(reranker, cache)
    if info.get("unpinned"):
        return reranker
    key = fingerprint
    source = plugin_source_fingerprint(reranker)
    if source is not None:  # a plugin installed from a local folder: its code is part of what its scores depend on
        key = canonical_hash({"fingerprint": fingerprint, "source_sha256": source})
        _warn_if_code_changed(cache, fingerprint, source, component_label(reranker))
        info = {**info, "fingerprint": fingerprint, "source_sha256": source}
    # the binding keeps the model fingerprint (records and config hashes use it); only the cache row is keyed by source
    binding = _Binding(cache, cache.model_id(key, reranker.spec.id, info), fingerprint, info)
    if cache.shared:  # every write to a shared store is counted per worker (reports show each pair scored once)
        cache.start_worker(_WORKER_LABEL[0])
    if isinstance(reranker, ListwiseReranker):
        return CachedListwiseReranker(reranker, binding)
    if isinstance(reranker, PointwiseReranker):
        return CachedPointwiseReranker(reranker, binding)
    return reranker


_WARNED: set[tuple[str, str]] = set()


def _warn_if_code_changed(cache: ScoreStore, fingerprint: str, source: str, label: str) -> None:
    """Say so when the cache holds scores of the same model fingerprint (same ``cache_fingerprint()``) made by other
    plugin source: the old scores are not reused, but the author should know the fingerprint did not move."""
    if (fingerprint, source) in _WARNED:
        return
    _WARNED.add((fingerprint, source))
    key = canonical_hash({"fingerprint": fingerprint, "source_sha256": source})
    for _, stored, _, info in cache.list_models():
        if stored != key and info.get("fingerprint") == fingerprint and info.get("source_sha256") not in (None, source):
            print(f"rrbench: warning: {label}: its source code changed since scores were cached under the same "
                  f"model fingerprint (cache_fingerprint() unchanged); the old scores are not used. Change "
                  f"cache_fingerprint() when a code change alters scores, so records say so too.", file=sys.stderr)
            return


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
    def label(self) -> str:
        """The wrapped component's error prefix (plugin, distribution, id): a cached run names it like an uncached
        one."""
        return component_label(self._inner)

    @property
    def cache_stats(self) -> CacheStats:
        return self._binding.stats

    @property
    def fingerprint(self) -> str:
        return self._binding.fingerprint

    @property
    def store(self) -> ScoreStore:
        """The score store this reranker reads and writes."""
        return self._binding.cache

    @property
    def store_mid(self) -> int:
        """The model's handle in :attr:`store`."""
        return self._binding.mid

    @property
    def tolerance(self) -> float:
        """Within how much two scores of one pair must agree (the dtype's tolerance)."""
        return self._binding.tolerance

    def describe(self) -> dict[str, Any]:
        return self._inner.describe()


class CachedPointwiseReranker(_CachedMixin, PointwiseReranker):
    def __init__(self, inner: Any, binding: _Binding) -> None:
        self._setup(inner, binding)

    def cached_scores(self, queries: Sequence[str], documents: Sequence[str]) -> list[float | None]:
        """The stored score of each pair, None where the cache has none, in one batched read. Never calls the model
        and counts no hits (sweeps read whole splits of scores this way, then decide whether anything needs
        filling)."""
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
        fresh = [k for k in keys if k in found and k in b.fresh]
        b.stats.hits += sum(1 for k in keys if k in found) - len(fresh)
        b.stats.misses += sum(1 for k in keys if k not in found) + len(fresh)
        b.fresh.difference_update(fresh)
        if missing:
            idx = list(missing.values())
            load_model(self._inner)
            started = time.perf_counter()
            with running(self.label, "score_pairs()"):
                raw = self._inner.score_pairs([queries[i] for i in idx], [documents[i] for i in idx])
            b.stats.model_seconds += time.perf_counter() - started
            scores = check_scores(raw, len(idx), self.label)
            b.stats.computed += len(idx)
            b.stats.model_calls += 1
            new = dict(zip(missing, scores.tolist(), strict=True))
            b.cache.put_pairs(b.mid, new.items(), b.tolerance, seconds=time.perf_counter() - started)
            note_scores_committed()  # an interrupted command may then say its scores were kept
            found.update(new)
        return np.asarray([found[k] for k in keys], dtype=np.float64)

    def prefill(self, groups: Sequence[Sequence[tuple[str, str]]], task: str, split: str,
                progress: bool | None = None) -> None:
        """On a shared store, score ``groups``' missing pairs through the store's fill queue (together with any other
        process that needs them) before they are read; on a store of this machine alone, do nothing (the reads
        score what is missing, as always)."""
        b = self._binding
        if not b.cache.shared:
            return
        planned = plan_units(b.fingerprint, b.mid, task, split, groups)
        keys = [key for unit in planned for key in unit.keys]
        before = set(b.cache.get_pairs(b.mid, keys))
        missing = len(keys) - len(before)
        if not missing:
            return

        def model(queries: list[str], documents: list[str]) -> np.ndarray:
            b.stats.model_calls += 1
            load_model(self._inner)
            started = time.perf_counter()
            with running(self.label, "score_pairs()"):
                raw = self._inner.score_pairs(queries, documents)
            b.stats.model_seconds += time.perf_counter() - started
            return check_scores(raw, len(queries), self.label)

        with _bar(missing, f"filling ({self.spec.id})", progress, unit="pair") as bar:
            batch = max(256, self.options.batch_size * 8)
            report = work_queue(b.cache, b.mid, planned, model, b.tolerance, batch_pairs=batch,
                                on_scored=bar.update)
        b.stats.computed += report.scored
        if report.scored:
            note_scores_committed()
        b.fresh.update(k for k in keys if k not in before)


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
        load_model(self._inner)
        started = time.perf_counter()
        with running(self.label, "score_list()"):
            raw = self._inner.score_list(query, documents)
        b.stats.model_seconds += time.perf_counter() - started
        fresh = check_scores(raw, len(documents), self.label)
        b.stats.computed += len(documents)
        b.stats.model_calls += 1
        b.cache.put_list(b.mid, key, fresh)
        note_scores_committed()
        return fresh


def open_cache(cache_dir: str | Path | None = None, enabled: bool = True) -> ScoreStore | None:
    """The store a run should use, or None when disabled (``--no-cache`` or ``RRBENCH_CACHE=off``)."""
    if not enabled or (cache_dir is None and cache_disabled_by_env()):
        return None
    if cache_dir is not None and means_off(cache_dir):
        return None
    return open_store(cache_dir)
