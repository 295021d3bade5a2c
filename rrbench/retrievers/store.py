"""Content-addressed, atomic caches for the first stage: document embeddings and candidate rankings.

Encoding 46k sentences with a bi-encoder costs minutes on a laptop CPU, and every rerank run of a sweep starts from
the same candidate pools, so both are cached on disk. Keys are sha256 hashes of *everything* that can change the
stored arrays (model id, revision, weights location, options, the exact texts, the task data hash, the split, the
context window), never of file names or timestamps: a stale entry cannot be served for changed inputs, and two
processes computing the same entry write the same bytes. Files are written to a temporary name and renamed into
place, so an interrupted run leaves no half-written entry.

Location: :func:`rrbench.util.cache_paths.cache_root` (the same root as the reranker score cache), under ``embeddings/`` and
``candidates/``. ``RRBENCH_CACHE=off`` disables both, as it does the score cache.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.util.cache_paths import cache_disabled_by_env, cache_root
from rrbench.util.io import atomic_write, canonical_hash


def cache_enabled() -> bool:
    """Off with ``RRBENCH_CACHE=off``: the same switch as the score cache's."""
    return not cache_disabled_by_env()


def texts_hash(texts: Sequence[str]) -> str:
    """Hash of an ordered list of texts (length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` differ)."""

    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def _path(kind: str, key: str, suffix: str) -> Path:
    return cache_root() / kind / key[:2] / f"{key}{suffix}"


# -- embeddings ------------------------------------------------------------------------------------------------------
def embedding_key(model: dict[str, Any], texts: Sequence[str]) -> str:
    return canonical_hash({"kind": "embeddings", "model": model, "texts": texts_hash(texts), "n": len(texts)})


def load_embeddings(key: str) -> np.ndarray | None:
    path = _path("embeddings", key, ".npy")
    if not cache_enabled() or not path.is_file():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None  # a damaged entry is recomputed and overwritten, never trusted


def save_embeddings(key: str, array: np.ndarray) -> None:
    if cache_enabled():
        atomic_write(_path("embeddings", key, ".npy"), lambda handle: np.save(handle, array, allow_pickle=False))


def load_sparse(key: str) -> Any:
    """A cached scipy CSR matrix (SPLADE document vectors), or None."""
    path = _path("embeddings", key, ".npz")
    if not cache_enabled() or not path.is_file():
        return None
    try:
        from scipy import sparse  # lazy: slow to import; few functions need it

        return sparse.load_npz(path).tocsr()
    except (OSError, ValueError):
        return None


def save_sparse(key: str, matrix: Any) -> None:
    if cache_enabled():
        from scipy import sparse  # lazy: slow to import; few functions need it

        atomic_write(_path("embeddings", key, ".npz"), lambda handle: sparse.save_npz(handle, matrix))


# -- candidate rankings ----------------------------------------------------------------------------------------------
def ranking_key(identity: dict[str, Any]) -> str:
    return canonical_hash({"kind": "ranking", **identity})


def load_ranking(key: str) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]] | None:
    """``(ids per query, scores per query, meta)`` or None when absent or unreadable."""
    path = _path("candidates", key, ".npz")
    if not cache_enabled() or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            offsets, ids, scores = data["offsets"], data["ids"], data["scores"]
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError):
        return None
    bounds = list(itertools.pairwise(offsets))
    return [ids[a:b] for a, b in bounds], [scores[a:b] for a, b in bounds], meta


def save_ranking(key: str, ids: Sequence[np.ndarray], scores: Sequence[np.ndarray], meta: dict[str, Any]) -> Path:
    path = _path("candidates", key, ".npz")
    if not cache_enabled():
        return path
    offsets = np.cumsum([0] + [len(row) for row in ids]).astype(np.int64)
    flat_ids = np.concatenate(ids).astype(np.int64) if ids else np.empty(0, np.int64)
    flat_scores = np.concatenate(scores).astype(np.float64) if scores else np.empty(0, np.float64)
    meta_text = np.asarray(json.dumps(meta, sort_keys=True, allow_nan=False))
    atomic_write(path, lambda handle: np.savez(handle, offsets=offsets, ids=flat_ids, scores=flat_scores,
                                               meta=meta_text))
    return path
