"""Ranking and decision metrics, vectorised over padded score arrays.

Sweeps evaluate thousands of configurations, so metrics work on ``(n_queries, depth)`` arrays rather than dicts.
Definitions follow trec_eval (and are tested against pytrec_eval):

- ``nDCG@k``: linear gain (the grade), discount ``1/log2(rank+1)``, ideal ranking from *all* judged sentences;
- ``RR@k``: reciprocal rank of the first sentence with grade >= 1 within the top k, else 0;
- ``R@k``: share of grade >= 1 sentences found in the top k.

Rank metrics are averaged over **has-evidence** queries only: a no-evidence query has no ideal ranking (trec_eval
would skip it, MTEB silently drops it). No-evidence queries instead feed the **false-evidence rate**: the share of
them whose final list holds any score >= the decision threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RANK_METRIC_DEPTH = 10


@dataclass(frozen=True)
class RankedQuery:
    """One query's final ranking, reduced to what metrics need."""

    query_id: str
    ranked_grades: np.ndarray  # grade of each ranked candidate, in final rank order
    judged_grades: np.ndarray  # grades of every judged sentence of the query (for the ideal ranking and recall)
    decision_scores: np.ndarray | None = None  # scores compared with the threshold (the reranked list)

    @property
    def has_evidence(self) -> bool:
        return bool(np.any(self.judged_grades >= 1))


def _pad(rows: Sequence[np.ndarray], depth: int) -> np.ndarray:
    out = np.zeros((len(rows), depth), dtype=np.float64)
    for i, row in enumerate(rows):
        n = min(depth, len(row))
        out[i, :n] = row[:n]
    return out


def _discounts(depth: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, depth + 2, dtype=np.float64))


def ndcg_at_k(ranked: np.ndarray, ideal: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per row; ``ranked`` and ``ideal`` are gain matrices (ideal need not be sorted)."""
    disc = _discounts(k)
    dcg = (ranked[:, :k] * disc[: ranked[:, :k].shape[1]]).sum(axis=1)
    ideal_sorted = -np.sort(-ideal, axis=1)[:, :k]
    idcg = (ideal_sorted * disc[: ideal_sorted.shape[1]]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, 0.0)


def rr_at_k(ranked: np.ndarray, k: int) -> np.ndarray:
    hits = ranked[:, :k] >= 1
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


def recall_at_k(ranked: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    found = (ranked[:, :k] >= 1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, found / np.maximum(n_relevant, 1), 0.0)


def false_evidence(decision_scores: Sequence[np.ndarray | None], threshold: float) -> np.ndarray:
    """1.0 where any score reaches the threshold, else 0.0 (one value per query)."""
    return np.asarray([float(s is not None and len(s) > 0 and bool(np.max(s) >= threshold))
                       for s in decision_scores])


def evaluate(queries: Sequence[RankedQuery], pool_k: int | None = None, threshold: float | None = None,
             extra_cutoffs: Sequence[int] = ()) -> tuple[dict[str, float | int | None], dict[str, dict[str, float]]]:
    """Compute summary metrics and per-query values from per-query rankings (see :func:`evaluate_arrays`).

    A query is answered when its best decision score reaches ``threshold`` (the max policy of
    :mod:`rrbench.pipeline.decide`); without a threshold no decision metric is computed.
    """
    depth = max([RANK_METRIC_DEPTH, pool_k or 0, *(len(q.ranked_grades) for q in queries)])
    ranked = _pad([q.ranked_grades for q in queries], depth)
    ideal = _pad([q.judged_grades for q in queries], max([len(q.judged_grades) for q in queries] + [1]))
    answered = None
    if threshold is not None:
        answered = false_evidence([q.decision_scores for q in queries], threshold).astype(bool)
    return evaluate_arrays([q.query_id for q in queries], ranked, ideal, answered, pool_k=pool_k,
                           extra_cutoffs=extra_cutoffs)


def evaluate_arrays(query_ids: Sequence[str], ranked: np.ndarray, ideal: np.ndarray, answered: np.ndarray | None,
                    pool_k: int | None = None, extra_cutoffs: Sequence[int] = (), per_query: bool = True
                    ) -> tuple[dict[str, float | int | None], dict[str, dict[str, float]]]:
    """Metrics over padded arrays: the one implementation behind ``rrbench run``, ``evaluate`` and the sweep.

    ``ranked``: grades in final rank order, ``(queries, depth)``, zero-padded; ``ideal``: every judged grade of each
    query, zero-padded; ``answered``: the decision per query (None: no decision metrics). Returns ``(metrics,
    per_query)``; ``metrics`` holds ``nDCG@10``, ``RR@10``, ``R@10``, ``R@<pool_k>`` (and ``extra_cutoffs``) averaged
    over has-evidence queries, ``false_evidence_rate`` over no-evidence queries (None without decisions),
    ``answer_rate_has_evidence`` and the query counts. ``per_query=False`` skips the per-query dict (sweeps).
    """
    has = np.asarray((ideal >= 1).any(axis=1), dtype=bool)
    cutoffs = sorted({RANK_METRIC_DEPTH, *(c for c in extra_cutoffs if c > 0), *([pool_k] if pool_k else [])})
    rows: dict[str, dict[str, float]] = {q: {} for q in query_ids} if per_query else {}
    metrics: dict[str, float | int | None] = {}
    evidence_ids = [q for q, h in zip(query_ids, has.tolist(), strict=True) if h] if per_query else []
    if has.any():
        r, i = ranked[has], ideal[has]
        n_relevant = (i >= 1).sum(axis=1)
        columns = {"nDCG@10": ndcg_at_k(r, i, RANK_METRIC_DEPTH), "RR@10": rr_at_k(r, RANK_METRIC_DEPTH)}
        for k in cutoffs:
            columns[f"R@{k}"] = recall_at_k(r, n_relevant, k)
        for name, values in columns.items():
            metrics[name] = float(values.mean())
            if per_query:
                for q, value in zip(evidence_ids, values, strict=True):
                    rows[q][name] = float(value)
    else:
        for name in ["nDCG@10", "RR@10", *(f"R@{k}" for k in cutoffs)]:
            metrics[name] = None
    if answered is not None and (~has).any():
        flags = np.asarray(answered, dtype=np.float64)[~has]
        metrics["false_evidence_rate"] = float(flags.mean())
        if per_query:
            for q, flag in zip((q for q, h in zip(query_ids, has.tolist(), strict=True) if not h), flags, strict=True):
                rows[q]["false_evidence"] = float(flag)
    else:
        metrics["false_evidence_rate"] = None
    if answered is not None and has.any():
        # Share of has-evidence queries that return at least one sentence: the other side of the trade-off.
        metrics["answer_rate_has_evidence"] = float(np.asarray(answered, dtype=np.float64)[has].mean())
    metrics["queries"] = len(query_ids)
    metrics["queries_has_evidence"] = int(has.sum())
    metrics["queries_no_evidence"] = int((~has).sum())
    return metrics, rows


def safe_float(value: float | None) -> float | None:
    """None for missing or non-finite values, so records stay strict JSON."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
