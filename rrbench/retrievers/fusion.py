"""Fusion of several retrievers' ranked lists for one query: reciprocal rank fusion and weighted score fusion.

A *run* here is one retriever's list for one query: ``(ids, scores)`` with ``ids`` global candidate ids (unique) and
``scores`` aligned with them, in any order. Fusers return the union of all ids with fused scores, best first, ties
broken by ascending id so that the result never depends on input order.

Design choices (documented in docs/retrieval.md because they change numbers):

- **Ties inside a run share a rank** (competition ranking: scores 5, 3, 3, 1 get ranks 1, 2, 2, 4). A retriever that
  cannot separate two candidates should not hand one of them a better RRF contribution because of its id.
- **A candidate absent from a run** (it was not in that retriever's top-K) contributes nothing to RRF, and in weighted
  fusion gets that run's lowest normalised value (min-max: 0; z-score: the run's lowest z; rank: 0, i.e. "ranked
  just below the end"). Absent means "no better than the worst retrieved", never "better than some retrieved".
- Scores are normalised **per query and per run**, so a retriever's scale (BM25 ~ 0-40, cosine ~ -1-1) cannot
  dominate the sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import Fuser, Run
from rrbench.components.calls import build
from rrbench.components.registry import resolve
from rrbench.util.errors import UsageError

NORMALISATIONS = ("minmax", "zscore", "rank")
RRF_K0_DEFAULT = 60


def competition_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, best score first; equal scores share the best rank of their group (1, 2, 2, 4)."""
    scores = np.asarray(scores, dtype=np.float64)
    return 1 + np.searchsorted(np.sort(-scores), -scores, side="left")


def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    """Per-run score normalisation. A run whose scores are all equal carries no ordering: every value becomes 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return scores.copy()
    if method == "minmax":
        low, high = scores.min(), scores.max()
        return (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    if method == "zscore":
        std = scores.std()
        return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    if method == "rank":
        n = len(scores)
        return (n - competition_ranks(scores) + 1) / n if len(np.unique(scores)) > 1 else np.zeros_like(scores)
    raise UsageError(f"unknown normalisation {method!r}; choose from {', '.join(NORMALISATIONS)}")


def absent_value(normalised: np.ndarray, method: str) -> float:
    """What a candidate missing from a run receives in weighted fusion (see the module docstring)."""
    if method == "rank" or len(normalised) == 0:
        return 0.0
    return float(normalised.min())


def _union(runs: Sequence[Run]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted union of ids and, per run, the position of each run id inside the union."""
    for ids, scores in runs:
        if len(ids) != len(scores):
            raise ValueError(f"a run has {len(ids)} ids but {len(scores)} scores")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("a run lists the same candidate twice")
    union = np.unique(np.concatenate([np.asarray(ids, dtype=np.int64) for ids, _ in runs])) if runs else \
        np.empty(0, dtype=np.int64)
    return union, [np.searchsorted(union, np.asarray(ids, dtype=np.int64)) for ids, _ in runs]


def _ordered(union: np.ndarray, fused: np.ndarray) -> Run:
    order = np.lexsort((union, -fused))
    return union[order], fused[order]


def rrf(runs: Sequence[Run], k0: float = RRF_K0_DEFAULT) -> Run:
    """Reciprocal rank fusion (Cormack et al., SIGIR 2009): ``sum_i 1 / (k0 + rank_i(d))``."""
    union, positions = _union(runs)
    fused = np.zeros(len(union), dtype=np.float64)
    for (_, scores), pos in zip(runs, positions, strict=True):
        fused[pos] += 1.0 / (k0 + competition_ranks(scores))
    return _ordered(union, fused)


def weighted(runs: Sequence[Run], weights: Sequence[float], norm: str = "minmax") -> Run:
    """Weighted sum of per-query normalised scores: ``sum_i w_i * norm_i(d)``."""
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} weights for {len(runs)} runs")
    union, positions = _union(runs)
    fused = np.zeros(len(union), dtype=np.float64)
    for (_, scores), pos, weight in zip(runs, positions, weights, strict=True):
        values = normalise(scores, norm)
        column = np.full(len(union), absent_value(values, norm))
        column[pos] = values
        fused += weight * column
    return _ordered(union, fused)


def alpha_weights(alpha: float, n_runs: int) -> list[float]:
    """``alpha`` for the first retriever, ``1 - alpha`` shared equally by the others (the usual dense/sparse knob)."""
    if n_runs == 1:
        return [1.0]
    rest = (1.0 - alpha) / (n_runs - 1)
    return [alpha] + [rest] * (n_runs - 1)


# -- the plugin-facing classes ---------------------------------------------------------------------------------------
class RRFFuser(Fuser):
    score_kind = "rrf"

    def validate(self) -> None:
        k0 = self.options["k0"]
        if isinstance(k0, bool) or not isinstance(k0, (int, float)) or not k0 > 0:
            raise UsageError(f"fusion 'rrf': --rrf-k (k0) must be a number > 0, got {k0!r}")

    def fuse(self, runs: Sequence[Run]) -> Run:
        return rrf(runs, float(self.options["k0"]))


class WeightedFuser(Fuser):
    score_kind = "weighted"

    def validate(self) -> None:
        alpha, norm = self.options["alpha"], self.options["norm"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise UsageError(f"fusion 'weighted': --alpha must be within [0, 1], got {alpha!r}")
        if norm not in NORMALISATIONS:
            raise UsageError(f"fusion 'weighted': unknown --norm {norm!r}; choose from {', '.join(NORMALISATIONS)}")

    def fuse(self, runs: Sequence[Run]) -> Run:
        return weighted(runs, alpha_weights(float(self.options["alpha"]), len(runs)), str(self.options["norm"]))


def load_fuser(name: str, options: Mapping[str, Any] | None = None) -> Fuser:
    """Instantiate a registered fusion method; unknown names fail with a close-match suggestion."""

    entry = resolve("fusers", name)
    return build("fusers", entry.spec, entry.spec, dict(options or {}))
