"""Combining scores: the vectorised interpolation scan a sweep uses equals the one path ``rrbench run`` takes."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench.pipeline.combine import Combination, SplitArrays, evaluate_split, interpolation_ndcg
from rrbench.pipeline.decide import DecisionConfig


def _arrays(seed: int) -> SplitArrays:
    """40 queries with pools of 3-12 candidates (padded), graded labels, ties in every score, two rerankers."""
    rng = np.random.default_rng(seed)
    n, width = 40, 12
    lengths = rng.integers(3, width + 1, size=n)
    valid = np.arange(width)[None, :] < lengths[:, None]
    grades = np.where(valid, rng.choice([0, 0, 0, 1, 2], size=(n, width)), 0).astype(np.float64)
    grades[::4] = 0.0  # no-evidence queries
    ideal = np.sort(grades, axis=1)[:, ::-1].copy()
    retriever = np.where(valid, np.round(rng.normal(size=(n, width)), 1), 0.0)
    retriever = -np.sort(-retriever, axis=1)  # pools come in retriever order
    ids = np.where(valid, np.arange(n * width).reshape(n, width), -1)
    data = SplitArrays([f"q{i}" for i in range(n)], ids, valid, retriever, grades, ideal, "bm25",
                       groups=[f"g{i // 2}" for i in range(n)])
    for name, kind in (("a", "logit"), ("b", "cosine")):
        scores = np.round(rng.normal(size=(n, width)) + grades, 1)  # rounded: ties inside the head
        data.add_reranker(name, [row[:m] for row, m in zip(scores, lengths, strict=True)], kind)
    return data


@pytest.mark.parametrize("combination", [
    Combination(("a",), top_k_rerank=12, interpolate_norm="minmax"),
    Combination(("a",), top_k_rerank=4, interpolate_norm="zscore"),
    Combination(("a", "b"), (0.3, 0.7), top_k_rerank=6, ensemble_norm="zscore"),
    Combination(("a", "b"), (0.5, 0.5), top_k_rerank=12, ensemble_norm="minmax", interpolate_norm="zscore"),
    Combination((), top_k_rerank=0),
])
def test_the_interpolation_scan_equals_evaluating_each_weight(combination):
    from dataclasses import replace

    data = _arrays(11)
    betas = [0.0, 0.05, 0.35, 0.5, 0.95, 1.0]
    scanned = interpolation_ndcg(data, combination, betas)
    for beta, value in zip(betas, scanned, strict=True):
        outcome = evaluate_split(data, replace(combination, beta=beta), DecisionConfig(), per_query=False)
        assert value == pytest.approx(outcome.metrics["nDCG@10"], abs=1e-12), beta
