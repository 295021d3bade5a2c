"""The paired randomisation test used to confirm a trained model beats its baselines."""

from __future__ import annotations

import pytest

from rrbench.errors import UsageError
from rrbench.training.compare import paired_test


def _record(values):
    return {"per_query": {f"q{i}": {"nDCG@10": v} for i, v in enumerate(values)}}


def test_clear_improvement_is_significant_and_noise_is_not():
    better = paired_test(_record([0.9] * 30), _record([0.5] * 30), samples=20_000)
    assert better["mean_diff"] == pytest.approx(0.4) and better["p_value"] < 0.001 and better["wins"] == 30
    mixed = paired_test(_record([0.6, 0.4] * 15), _record([0.4, 0.6] * 15), samples=20_000)
    assert mixed["mean_diff"] == pytest.approx(0.0) and mixed["p_value"] > 0.5


def test_different_query_sets_are_refused():
    with pytest.raises(UsageError, match="different queries"):
        paired_test(_record([0.1, 0.2]), _record([0.1]))
