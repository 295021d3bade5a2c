"""Combining scores: the vectorised interpolation scan a sweep uses equals the one path ``rrbench run`` takes."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench.pipeline.combine import Combination, SplitArrays, evaluate_split, ranking_ndcg
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
    Combination(("a", "b"), (0.5, 0.5), top_k_rerank=3, ensemble_norm="minmax"),
    Combination((), top_k_rerank=0),
])
def test_the_ranking_scan_equals_evaluating_each_setting(combination, monkeypatch):
    from dataclasses import replace

    from rrbench.pipeline import combine

    monkeypatch.setattr(combine, "SCAN_CHUNK", 2000)  # several chunks
    data = _arrays(11)
    betas = [0.0, 0.05, 0.35, 0.5, 0.95, 1.0]
    weights = [(0.05, 0.95), (0.35, 0.65), (0.5, 0.5), (0.9, 0.1)] if len(combination.rerankers) == 2 else None
    scanned = ranking_ndcg(data, combination, betas, weights)
    assert scanned.shape == (len(weights or [None]), len(betas))
    for row, weight in enumerate(weights or [combination.weights]):
        for column, beta in enumerate(betas):
            setting = replace(combination, weights=tuple(weight), beta=beta)
            outcome = evaluate_split(data, setting, DecisionConfig(), per_query=False)
            assert scanned[row, column] == pytest.approx(outcome.metrics["nDCG@10"], abs=1e-12), (weight, beta)
