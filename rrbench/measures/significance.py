"""Statistical comparison of systems over the same queries: the one home of rrbench's randomisation tests.

Per-query IR scores are bounded, lumpy and far from normal, so rrbench uses distribution-free tests that only
assume the queries are exchangeable units (Smucker, Allan & Carterette, CIKM 2007):

* :func:`sign_flip_test`: the paired randomisation test. Under H0 the two systems are exchangeable, so each query's
  difference is equally likely to carry either sign. Exact (all ``2^n`` sign vectors) when that is no more work than
  the requested samples, else seeded Monte Carlo. One- or two-sided, with an optional shift of the null mean (the
  regression gate's non-inferiority margin).
* :func:`bootstrap_ci`: a seeded percentile bootstrap interval of a mean over queries.
* :func:`holm`: Holm-Bonferroni step-down adjustment of a family of p-values (the leaderboard's default when every
  row is compared with the leader).
* :func:`randomised_tukey_hsd`: the randomised Tukey HSD test (Carterette, TOIS 2012; Sakai 2014), the usual
  multiple-comparison test in IR for many systems: permute the systems' scores within each query and compare every
  observed pairwise difference with the permutation distribution of the *largest* difference among all systems.
  ranx's ``tukey`` is the parametric test; this is the randomised one.

Everything is seeded, so a leaderboard rebuilt from the same records gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rrbench.util.errors import UsageError

SAMPLES = 10_000
SEED = 0
ALPHA = 0.05
Alternative = Literal["two-sided", "less", "greater"]
# float noise guard: a permuted statistic equal to the observed one counts as "at least as extreme"
_EPS = 1e-12


def sign_flip_test(diff: Sequence[float] | np.ndarray, samples: int = SAMPLES, seed: int = SEED,
                   alternative: Alternative = "two-sided", null_mean: float = 0.0) -> float:
    """p-value of the paired sign-flip test of H0: mean(diff) = ``null_mean`` (or the one-sided version).

    ``alternative="less"`` tests against mean(diff) < null_mean (p small when the differences are clearly lower),
    ``"greater"`` the opposite. The differences are shifted by ``null_mean`` before their signs are flipped.
    Monte Carlo p-values use the (count + 1) / (samples + 1) estimator, which is never 0.
    """
    d = np.asarray(diff, dtype=np.float64) - float(null_mean)
    n = len(d)
    if n == 0:
        raise UsageError("no paired values to test")
    observed = d.mean()
    if n <= 20 and 2 ** n <= samples:
        signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        means = (signs * d).mean(axis=1)
        return _tail(means, observed, alternative, exact=True)
    rng = np.random.default_rng(seed)
    out = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, 4096):  # chunks bound memory for large query sets
        stop = min(samples, start + 4096)
        signs = rng.integers(0, 2, size=(stop - start, n), dtype=np.int8) * 2 - 1
        out[start:stop] = (signs * d).mean(axis=1)
    return _tail(out, observed, alternative, exact=False)


def _tail(means: np.ndarray, observed: float, alternative: Alternative, exact: bool) -> float:
    if alternative == "two-sided":
        hits = np.count_nonzero(np.abs(means) >= abs(observed) - _EPS)
    elif alternative == "less":
        hits = np.count_nonzero(means <= observed + _EPS)
    elif alternative == "greater":
        hits = np.count_nonzero(means >= observed - _EPS)
    else:
        raise UsageError(f"alternative must be two-sided, less or greater, got {alternative!r}")
    if exact:
        return float(hits) / len(means)
    return (float(hits) + 1.0) / (len(means) + 1.0)


def bootstrap_ci(values: Sequence[float] | np.ndarray, level: float = 0.95, samples: int = SAMPLES,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (queries resampled with replacement)."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise UsageError("no values to bootstrap")
    if not 0.0 < level < 1.0:
        raise UsageError(f"confidence level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = np.empty(samples, dtype=np.float64)
    for start in range(0, samples, 4096):
        stop = min(samples, start + 4096)
        idx = rng.integers(0, len(x), size=(stop - start, len(x)))
        means[start:stop] = x[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; monotone; capped at 1), in the input order."""
    p = [float(v) for v in pvalues]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def randomised_tukey_hsd(scores: np.ndarray, samples: int = SAMPLES, seed: int = SEED) -> np.ndarray:
    """Pairwise p-values (systems x systems) of the randomised Tukey HSD test.

    ``scores`` is queries x systems. Each sample shuffles every query's row across systems, takes the systems'
    means, and keeps max - min; ``p[i, j]`` is the share of samples whose range reaches ``|mean_i - mean_j|``.
    Controls the family-wise error rate over all pairs at once.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise UsageError("randomised Tukey HSD needs a queries x systems matrix with at least 2 systems")
    n, k = x.shape
    means = x.mean(axis=0)
    observed = np.abs(means[:, None] - means[None, :])
    rng = np.random.default_rng(seed)
    ranges = np.empty(samples, dtype=np.float64)
    chunk = max(1, 2_000_000 // max(1, n * k))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        keys = rng.random((stop - start, n, k))
        perm = np.argsort(keys, axis=2)
        shuffled = np.take_along_axis(np.broadcast_to(x, (stop - start, n, k)), perm, axis=2)
        m = shuffled.mean(axis=1)
        ranges[start:stop] = m.max(axis=1) - m.min(axis=1)
    ranges.sort()
    # count of ranges >= observed - eps, via binary search on the sorted ranges
    hits = samples - np.searchsorted(ranges, observed - _EPS, side="left")
    p = (hits + 1.0) / (samples + 1.0)
    np.fill_diagonal(p, 1.0)
    return p


# -- comparing records -----------------------------------------------------------------------------------------------
def per_query_values(per_query: Mapping[str, Mapping[str, Any]], metric: str) -> dict[str, float]:
    """``{query id: value}`` of one metric (queries where the metric is undefined are absent)."""
    return {q: float(v[metric]) for q, v in per_query.items() if isinstance(v, Mapping) and metric in v}


def common_queries(*systems: Mapping[str, float]) -> list[str]:
    if not systems:
        return []
    shared = set(systems[0])
    for s in systems[1:]:
        shared &= set(s)
    return sorted(shared)


@dataclass
class PairedComparison:
    """``a`` against ``b`` on the queries both scored (``mean_diff`` = mean(a - b))."""

    metric: str
    queries: int
    mean_a: float
    mean_b: float
    mean_diff: float
    wins: int
    losses: int
    ties: int
    p_value: float
    ci_diff: tuple[float, float]
    test: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ci_diff": list(self.ci_diff)}


def compare_pair(a: Mapping[str, float], b: Mapping[str, float], metric: str, samples: int = SAMPLES,
                 seed: int = SEED, require_same_queries: bool = True,
                 higher_is_better: bool = True) -> PairedComparison:
    """Two-sided paired sign-flip test and bootstrap CI of the mean difference between two systems. ``wins`` counts
    the queries where A is better (higher, or lower for a metric where lower is better)."""
    if require_same_queries and set(a) != set(b):
        raise UsageError(f"the two records scored different queries for {metric} ({len(a)} vs {len(b)}); "
                         "compare records of the same task version and split")
    ids = common_queries(a, b)
    if not ids:
        raise UsageError(f"no common queries with per-query {metric} values to compare")
    diff = np.asarray([a[q] - b[q] for q in ids])
    return PairedComparison(
        metric=metric, queries=len(ids), mean_a=float(np.mean([a[q] for q in ids])),
        mean_b=float(np.mean([b[q] for q in ids])), mean_diff=float(diff.mean()),
        wins=int(((diff > 0) if higher_is_better else (diff < 0)).sum()),
        losses=int(((diff < 0) if higher_is_better else (diff > 0)).sum()), ties=int((diff == 0).sum()),
        p_value=sign_flip_test(diff, samples, seed), ci_diff=bootstrap_ci(diff, samples=samples, seed=seed),
        test=f"paired sign-flip randomisation, two-sided, {samples} samples (exact when 2^n <= samples)")


def compare_with_leader(systems: Sequence[Mapping[str, float]], method: str = "holm", alpha: float = ALPHA,
                        samples: int = SAMPLES, seed: int = SEED) -> list[dict[str, Any]]:
    """Every system against ``systems[0]`` (the leader), corrected for multiple comparisons.

    Returns one dict per system: ``{"p": raw p or None, "p_adjusted": ..., "tied": bool, "queries": n}``; the leader's
    own entry has p None and tied False. ``method`` is ``holm`` (paired sign-flip tests on each pair's common
    queries, Holm-adjusted) or ``tukey`` (randomised Tukey HSD on the queries every system scored).
    """
    if method not in ("holm", "tukey"):
        raise UsageError(f"multiple-comparison method must be holm or tukey, got {method!r}")
    out: list[dict[str, Any]] = [{"p": None, "p_adjusted": None, "tied": False,
                                  "queries": len(systems[0]) if systems else 0}]
    if len(systems) < 2:
        return out
    leader = systems[0]
    if method == "tukey":
        ids = common_queries(*systems)
        if len(ids) < 2:
            return out + [{"p": None, "p_adjusted": None, "tied": True, "queries": len(ids)} for _ in systems[1:]]
        matrix = np.asarray([[s[q] for s in systems] for q in ids])
        p = randomised_tukey_hsd(matrix, samples=samples, seed=seed)
        for j in range(1, len(systems)):
            out.append({"p": float(p[0, j]), "p_adjusted": float(p[0, j]), "tied": bool(p[0, j] >= alpha),
                        "queries": len(ids)})
        return out
    raw: list[float | None] = []
    counts = []
    for other in systems[1:]:
        ids = common_queries(leader, other)
        counts.append(len(ids))
        raw.append(sign_flip_test([leader[q] - other[q] for q in ids], samples, seed) if len(ids) >= 2 else None)
    valid = [i for i, v in enumerate(raw) if v is not None]
    adjusted = holm([raw[i] for i in valid])  # type: ignore[misc]
    adj: list[float | None] = [None] * len(raw)
    for i, v in zip(valid, adjusted, strict=True):
        adj[i] = v
    for p_raw, p_adj, n in zip(raw, adj, counts, strict=True):
        out.append({"p": p_raw, "p_adjusted": p_adj, "tied": p_adj is None or p_adj >= alpha, "queries": n})
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    x = [float(v) for v in values]
    mean = math.fsum(x) / len(x)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in x) / (len(x) - 1)) if len(x) > 1 else 0.0
    return mean, std


__all__ = [
    "ALPHA",
    "SAMPLES",
    "PairedComparison",
    "bootstrap_ci",
    "common_queries",
    "compare_pair",
    "compare_with_leader",
    "holm",
    "mean_std",
    "per_query_values",
    "randomised_tukey_hsd",
    "sign_flip_test",
]
