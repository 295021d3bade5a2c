"""From scores to metrics, on arrays: the one code path shared by ``rrbench run`` and every sweep trial.

A sweep evaluates thousands of configurations over cached scores, so one configuration must cost milliseconds, and
its numbers must equal what ``rrbench run`` reports for the same configuration (to 1e-9). Both therefore build a
:class:`SplitArrays` (one split, one candidate generator: padded ``(queries, pool)`` matrices in retriever order)
and call :func:`evaluate_split` with a :class:`Combination` (which rerankers, how their scores are combined with
each other and with the retriever's) and a :class:`rrbench.pipeline.decide.DecisionConfig`.

Combination rules:

- the first ``top_k_rerank`` candidates of a pool (the *head*) are reranked; the rest keep the retriever's order;
- one reranker, no interpolation: its raw scores rank the head and feed the decision (the spec's score kind);
- several rerankers (an ensemble): ``sum_j w_j * norm_q(s_j)`` ranks the head, with a per-query normalisation
  (``minmax`` or ``zscore`` over the head). Per-query min-max would make every query's best score 1, so the
  decision uses split-level z-scores instead (each member standardised by its mean and deviation over all head
  scores of the split; unsupervised, no labels read), or calibrated probabilities on top of them;
- interpolation with the retriever (``beta`` > 0): ``(1 - beta) * norm_q(rerank) + beta * norm_q(retriever)``
  ranks; the decision is the same mix of split-level z-scores;
- no reranker, or ``top_k_rerank`` 0: the retriever's own order and scores (and its score kind) decide.

Ties are broken by retriever rank, as :func:`rrbench.measures.trec.final_ranking` does when the run file is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from rrbench.measures.metrics import RANK_METRIC_DEPTH, evaluate_arrays, ndcg_at_k
from rrbench.pipeline.decide import (
    Decision,
    DecisionConfig,
    brier_score,
    decide,
    expected_calibration_error,
    query_statistic,
    reliability_bins,
)
from rrbench.tasks.splits import grouped_kfold, query_groups
from rrbench.util.errors import UsageError

NORMS = ("minmax", "zscore")


@dataclass
class SplitArrays:
    """One split under one candidate generator, as padded matrices (row = query, column = pool position)."""

    query_ids: list[str]
    ids: np.ndarray  # (n, P) global candidate ids in retriever order, -1 padding
    valid: np.ndarray  # (n, P) bool
    retriever: np.ndarray  # (n, P) retriever scores
    grades: np.ndarray  # (n, P) grade of each candidate for its query
    ideal: np.ndarray  # (n, J) every judged grade of the query
    retriever_kind: str
    rerankers: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, P) scores, NaN where unscored
    reranker_kinds: dict[str, str] = field(default_factory=dict)
    groups: list[str] | None = None  # per query: its group for grouped cross-fitting (post / criterion)

    @property
    def has_evidence(self) -> np.ndarray:
        return np.asarray((self.ideal >= 1).any(axis=1), dtype=bool)

    @classmethod
    def build(cls, task: Any, queries: Sequence[Any], pools: Sequence[tuple[np.ndarray, np.ndarray]],
              retriever_kind: str) -> SplitArrays:
        """Pad one generator's pools; reranker scores are added with :meth:`add_reranker`."""
        n = len(queries)
        width = max([len(p[0]) for p in pools] + [1])
        ids = np.full((n, width), -1, dtype=np.int64)
        retr = np.zeros((n, width), dtype=np.float64)
        grades = np.zeros((n, width), dtype=np.float64)
        valid = np.zeros((n, width), dtype=bool)
        judged = [np.asarray(list(task.qrels.get(q.query_id, {}).values()), dtype=np.float64) for q in queries]
        ideal = np.zeros((n, max([len(j) for j in judged] + [1])), dtype=np.float64)
        for row, (query, (pool, scores)) in enumerate(zip(queries, pools, strict=True)):
            m = len(pool)
            ids[row, :m] = pool
            retr[row, :m] = scores
            valid[row, :m] = True
            grades[row, :m] = task.relevance(query, np.asarray(pool, dtype=np.int64))
            ideal[row, :len(judged[row])] = judged[row]

        groups = query_groups([(q.query_id, q.post_id, q.criterion_id) for q in queries])
        return cls([q.query_id for q in queries], ids, valid, retr, grades, ideal, retriever_kind,
                   groups=[groups[q.query_id] for q in queries])

    def add_reranker(self, name: str, head_scores: Sequence[np.ndarray], score_kind: str) -> None:
        """Scores of each pool's first ``len(head_scores[i])`` candidates (NaN beyond)."""
        matrix = np.full(self.ids.shape, np.nan, dtype=np.float64)
        for row, scores in enumerate(head_scores):
            matrix[row, :len(scores)] = scores
        self.rerankers[name] = matrix
        self.reranker_kinds[name] = score_kind

    def group_count(self) -> int:
        """How many independent groups (posts/criteria) grouped cross-fitting can deal into folds."""
        return len(set(self.groups or self.query_ids))

    def folds(self, k: int, seed: int) -> list[np.ndarray]:
        """Row indices of each of ``k`` grouped folds (no post or criterion in two folds)."""
        memo = self.__dict__.setdefault("_folds", {})
        if (k, seed) not in memo:
            memo[(k, seed)] = self._grouped_folds(k, seed)
        return memo[(k, seed)]

    def _grouped_folds(self, k: int, seed: int) -> list[np.ndarray]:
        rows = [(q, g, None) for q, g in zip(self.query_ids, self.groups or self.query_ids, strict=True)]
        index = {q: i for i, q in enumerate(self.query_ids)}
        try:
            return [np.asarray([index[q] for q in held], dtype=np.int64) for _, held in grouped_kfold(rows, k, seed)]
        except ValueError as exc:
            raise UsageError(f"--cross-fit {k}: {exc}") from None


@dataclass(frozen=True)
class Combination:
    """Which rerankers score the head and how the final scores are formed (see the module docstring)."""

    rerankers: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    top_k_rerank: int = 20
    ensemble_norm: str = "minmax"
    beta: float = 0.0
    interpolate_norm: str = "minmax"

    def validate(self) -> None:
        if self.top_k_rerank < 0:
            raise UsageError(f"--top-k-rerank must be >= 0, got {self.top_k_rerank}")
        if len(self.rerankers) != len(set(self.rerankers)):
            raise UsageError("the same --reranker is given twice")
        if self.weights and len(self.weights) != len(self.rerankers):
            raise UsageError(f"{len(self.weights)} --ensemble-weight values for {len(self.rerankers)} rerankers")
        if any(not np.isfinite(w) or w < 0 for w in self.weights):
            raise UsageError("--ensemble-weight values must be finite and >= 0")
        if self.weights and sum(self.weights) <= 0:
            raise UsageError("--ensemble-weight values must not all be 0")
        if not 0.0 <= self.beta <= 1.0:
            raise UsageError(f"--interpolate (beta) must be within [0, 1], got {self.beta}")
        for name, norm in (("--ensemble-norm", self.ensemble_norm), ("--interpolate-norm", self.interpolate_norm)):
            if norm not in NORMS:
                raise UsageError(f"{name} must be one of {', '.join(NORMS)}, got {norm!r}")

    @property
    def reranked(self) -> bool:
        return bool(self.rerankers) and self.top_k_rerank > 0

    def member_weights(self) -> np.ndarray:
        w = np.asarray(self.weights or [1.0] * len(self.rerankers), dtype=np.float64)
        return w / w.sum()

    def hashed(self) -> dict[str, Any]:
        """Keys for the configuration hash, present only when they differ from a plain single-reranker run."""
        out: dict[str, Any] = {}
        if len(self.rerankers) > 1:
            out["ensemble"] = {"weights": [float(w) for w in self.member_weights()], "norm": self.ensemble_norm}
        if self.beta > 0:
            out["interpolate"] = {"beta": float(self.beta), "norm": self.interpolate_norm}
        return out


# -- vectorised normalisations ---------------------------------------------------------------------------------------
def per_query_norm(values: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Per-row min-max or z-score over masked entries; constant rows become 0 (as rrbench.retrievers.fusion.normalise)."""
    count = mask.sum(axis=1, keepdims=True)
    safe = np.where(mask, values, 0.0)
    if method == "minmax":
        low = np.where(mask, values, np.inf).min(axis=1, keepdims=True)
        high = np.where(mask, values, -np.inf).max(axis=1, keepdims=True)
        span = high - low
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(span > 0, (safe - low) / np.where(span > 0, span, 1.0), 0.0)
    else:
        mean = safe.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        var = (np.where(mask, values - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        std = np.sqrt(var)
        out = np.where(std > 0, (safe - mean) / np.where(std > 0, std, 1.0), 0.0)
    return np.where(mask, out, 0.0)


def split_zscore(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Standardise by the mean and deviation of all masked entries of the split (row-major order)."""
    flat = values[mask]
    mean = float(flat.mean()) if len(flat) else 0.0
    std = float(flat.std()) if len(flat) else 0.0
    out = (values - mean) / std if std > 0 else np.zeros_like(values)
    return np.where(mask, out, 0.0)


# -- combination -----------------------------------------------------------------------------------------------------
@dataclass
class Combined:
    """Final ranking scores of the head, and the decision scale, for one split."""

    head: np.ndarray  # (n, P) bool: reranked entries (all valid entries when nothing is reranked)
    rank_scores: np.ndarray  # (n, P) scores ordering the head (retriever scores when nothing is reranked)
    decision: np.ndarray  # (n, P) scores the decision reads (over ``head``)
    decision_kind: str
    reranked: bool


def combine(data: SplitArrays, combination: Combination) -> Combined:
    if not combination.reranked:
        return Combined(data.valid, data.retriever, data.retriever, data.retriever_kind, False)
    positions = np.arange(data.ids.shape[1])[None, :]
    head = data.valid & (positions < combination.top_k_rerank)
    members = []
    for name in combination.rerankers:
        if name not in data.rerankers:
            raise UsageError(f"no scores for reranker {name!r} on this split")
        scores = data.rerankers[name]
        if np.isnan(scores[head]).any():
            raise UsageError(f"reranker {name!r} has no score for some of the top {combination.top_k_rerank} "
                             f"candidates (fill the cache for this pool size first)")
        members.append(np.where(head, scores, 0.0))
    weights = combination.member_weights()
    if len(members) == 1:
        rank_part, decision_part = members[0], members[0]
        kind = data.reranker_kinds[combination.rerankers[0]]
    else:
        rank_part = sum(w * per_query_norm(m, head, combination.ensemble_norm) for w, m in zip(weights, members, strict=True))
        decision_part = sum(w * split_zscore(m, head) for w, m in zip(weights, members, strict=True))
        kind = "z-score"
    if combination.beta > 0:
        b = combination.beta
        retr = np.where(head, data.retriever, 0.0)
        rank_scores = ((1 - b) * per_query_norm(rank_part, head, combination.interpolate_norm)
                       + b * per_query_norm(retr, head, combination.interpolate_norm))
        decision_part = (1 - b) * split_zscore(decision_part, head) + b * split_zscore(retr, head)
        kind = "z-score"
    else:
        rank_scores = rank_part
    return Combined(head, np.where(head, rank_scores, 0.0), np.where(head, decision_part, 0.0), kind, True)


def final_order(data: SplitArrays, combined: Combined) -> np.ndarray:
    """Column order per row: head by score (ties by pool position), then the rest of the pool, then padding."""
    width = data.ids.shape[1]
    positions = np.broadcast_to(np.arange(width), data.ids.shape)
    group = np.where(combined.head, 0, np.where(data.valid, 1, 2))
    score_key = np.where(combined.head, -combined.rank_scores, 0.0)
    return np.lexsort((positions, score_key, group), axis=-1)


#: how many scores one chunk of :func:`ranking_ndcg` sorts at once (bounds its memory)
SCAN_CHUNK = 4_000_000


def ranking_ndcg(data: SplitArrays, combination: Combination, betas: Sequence[float],
                 weights: Sequence[Sequence[float]] | None = None, k: int = RANK_METRIC_DEPTH) -> np.ndarray:
    """nDCG@k of ``combination`` under every pair of ensemble weights (rows: ``weights``, one vector per setting;
    None: the combination's own) and interpolation weight (columns: ``betas``), in one vectorised pass.

    A sweep scans these settings instead of sampling them. Only the ranking is computed, and only for has-evidence
    queries: the member normalisations once, every setting's scores by broadcasting (with the operations and
    operation order of :func:`combine`, so the values are the same floats), every final order by one stable sort of
    the head (the order of :func:`final_order`: head by score, ties by pool position, then the rest of the pool in
    pool order), and nDCG@k from it as :func:`evaluate_split` computes it. NaN where there is no has-evidence query.
    """
    betas_ = np.asarray(betas, dtype=np.float64)
    rows = [tuple(combination.weights)] if weights is None else [tuple(w) for w in weights]
    has = data.has_evidence
    if not has.any():
        return np.full((len(rows), len(betas_)), np.nan)
    plain = combine(data, replace(combination, beta=0.0, weights=rows[0] if len(combination.rerankers) > 1 else ()))
    head, valid = plain.head[has], data.valid[has]
    grades = np.where(valid, data.grades[has], 0.0)
    ideal = data.ideal[has]
    if not plain.reranked:  # the retriever's order: no setting changes it
        value = ndcg_at_k(np.take_along_axis(grades, final_order(data, plain)[has], axis=1), ideal, k).mean()
        return np.full((len(rows), len(betas_)), value)
    members = [np.where(head, data.rerankers[name][has], 0.0) for name in combination.rerankers]
    if len(members) == 1:  # one reranker: its raw scores; weights do not apply
        one = _scan(members[0][None], head, grades, ideal, data.retriever[has], combination, betas_, k)
        return np.repeat(one, len(rows), axis=0)
    normed = [per_query_norm(m, head, combination.ensemble_norm) for m in members]
    vectors = np.asarray(rows, dtype=np.float64)
    vectors = vectors / vectors.sum(axis=1, keepdims=True)  # Combination.member_weights, row by row
    parts = np.zeros((len(rows), *head.shape))
    for j, member in enumerate(normed):  # the order of combine's sum()
        parts = parts + vectors[:, j, None, None] * member
    return _scan(parts, head, grades, ideal, data.retriever[has], combination, betas_, k)


def _scan(parts: np.ndarray, head: np.ndarray, grades: np.ndarray, ideal: np.ndarray, retriever: np.ndarray,
          combination: Combination, betas_: np.ndarray, k: int) -> np.ndarray:
    """:func:`ranking_ndcg` for rank scores ``parts`` (one ``(queries, pool)`` matrix per setting)."""
    retr = per_query_norm(np.where(head, retriever, 0.0), head, combination.interpolate_norm)
    width = min(head.shape[1], max(combination.top_k_rerank, 0))  # only the head needs sorting
    out = np.empty((len(parts), len(betas_)))
    step = max(1, SCAN_CHUNK // max(1, len(betas_) * head.size))
    for start in range(0, len(parts), step):
        part = parts[start:start + step]
        b = betas_[None, :, None, None]
        mixed = (1 - b) * per_query_norm(part.reshape(-1, head.shape[1]), np.tile(head, (len(part), 1)),
                                         combination.interpolate_norm).reshape(part.shape)[:, None] + b * retr
        scores = np.where(b > 0, mixed, part[:, None])
        key = np.where(head, -scores, np.inf)[..., :width]
        order = np.argsort(key, axis=-1, kind="stable")[..., :k]
        if order.shape[-1] < k:  # a head shorter than k: the rest of the pool follows in pool order
            rest = np.arange(width, min(head.shape[1], width + k))
            order = np.concatenate([order, np.broadcast_to(rest, (*order.shape[:-1], len(rest)))], axis=-1)[..., :k]
        ranked = np.take_along_axis(np.broadcast_to(grades, (*order.shape[:-1], grades.shape[1])), order, axis=-1)
        values = ndcg_at_k(ranked.reshape(-1, ranked.shape[-1]), np.tile(ideal, (len(part) * len(betas_), 1)), k)
        out[start:start + len(part)] = values.reshape(len(part), len(betas_), -1).mean(axis=-1)
    return out


# -- evaluation ------------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    metrics: dict[str, Any]
    per_query: dict[str, dict[str, float]]
    order: np.ndarray
    combined: Combined
    decision: Decision
    reliability: list[dict[str, float]] | None = None  # equal-mass bins of pair probabilities, when there are any


def _pair_probabilities(decision: Decision, combined: Combined, config: DecisionConfig
                        ) -> np.ndarray | None:
    """Per (query, candidate) probabilities over the head, when the decision has a probability scale."""
    if decision.probabilities is None or config.policy != "max":
        return None
    values, head = combined.decision, combined.head
    out = np.full(values.shape, np.nan)
    if callable(decision.probabilities):  # only the head: padding and unranked entries are no statistics
        out[head] = decision.probabilities(values[head])
        return out
    for rows, fn in decision.probabilities:  # cross-fitted: each fold's own map
        block, mask = out[rows], head[rows]
        block[mask] = fn(values[rows][mask])
        out[rows] = block
    return out


def evaluate_split(data: SplitArrays, combination: Combination, decision_config: DecisionConfig,
                   fit: tuple[SplitArrays, Combination] | None = None, cross_fit_folds: list[np.ndarray] | None = None,
                   pool_k: int | None = None, extra_cutoffs: Sequence[int] = (), per_query: bool = True,
                   checkpoint_threshold: Callable[[], float] | None = None) -> Outcome:
    """Rank, decide and measure one split under one configuration."""
    combined = combine(data, combination)
    order = final_order(data, combined)
    ranked = np.take_along_axis(data.grades, order, axis=1)
    ranked = np.where(np.take_along_axis(data.valid, order, axis=1), ranked, 0.0)
    statistic = query_statistic(combined.decision, combined.head, decision_config.policy)
    fit_pair = None
    if decision_config.needs_fit and not decision_config.cross_fit:
        if fit is None:
            raise UsageError("this decision needs a fit split (--calibrate-on)")
        fit_data, fit_combination = fit
        fit_combined = combine(fit_data, fit_combination)
        fit_pair = (query_statistic(fit_combined.decision, fit_combined.head, decision_config.policy),
                    fit_data.has_evidence)
    decision = decide(decision_config, statistic, combined.decision_kind, fit=fit_pair,
                      folds=cross_fit_folds if decision_config.cross_fit else None,
                      has_evidence=data.has_evidence)
    depth_needed = max(pool_k or 0, 10)
    if ranked.shape[1] < depth_needed:
        ranked = np.pad(ranked, ((0, 0), (0, depth_needed - ranked.shape[1])))
    answered = decision.answered if decision.threshold is not None or decision.folds else None
    metrics, rows = evaluate_arrays(data.query_ids, ranked, data.ideal, answered, pool_k=pool_k,
                                    extra_cutoffs=extra_cutoffs, per_query=per_query)
    probs = _pair_probabilities(decision, combined, decision_config)
    if probs is not None:
        mask = combined.head
        labels = (data.grades >= 1)[mask].astype(np.float64)
        p = probs[mask]
        metrics["ece"] = expected_calibration_error(p, labels)
        metrics["brier"] = brier_score(p, labels)
        reliability = reliability_bins(p, labels) if per_query else None
    else:
        reliability = None
    return Outcome(metrics, rows, order, combined, decision, reliability)
