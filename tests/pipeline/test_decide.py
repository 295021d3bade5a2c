"""The decision stage: calibrators against hand-computed fits, statistics, fits never on the evaluated split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rrbench.pipeline.decide import (
    DecisionConfig,
    brier_score,
    decide,
    expected_calibration_error,
    fit_threshold,
    load_calibrator,
    query_statistic,
)
from rrbench.util.errors import UsageError


def test_platt_recovers_the_closed_form_fit():
    # x=0: 1 of 4 has evidence; x=1: 3 of 4. The MLE is exact: sigmoid(b) = 1/4, sigmoid(a + b) = 3/4.
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    cal = load_calibrator("platt").fit(x, y)
    assert cal.params["b"] == pytest.approx(-math.log(3), abs=1e-6)
    assert cal.params["a"] == pytest.approx(2 * math.log(3), abs=1e-6)
    assert cal.transform(np.array([0.0, 1.0])) == pytest.approx([0.25, 0.75], abs=1e-7)


def test_temperature_recovers_the_closed_form_fit():
    # All statistics 2, 3 of 4 positive: sigmoid(2 / T) = 3/4, so T = 2 / ln 3.
    cal = load_calibrator("temperature").fit(np.full(4, 2.0), np.array([1, 1, 1, 0.0]))
    assert cal.params["temperature"] == pytest.approx(2 / math.log(3), rel=1e-7)


def test_isotonic_pools_adjacent_violators():
    # Outcomes 0, 1, 0, 1 at increasing x: the violating middle pair pools to 0.5.
    cal = load_calibrator("isotonic").fit(np.array([1.0, 2, 3, 4]), np.array([0, 1, 0, 1.0]))
    assert cal.transform(np.array([1.0, 2, 3, 4])) == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert cal.transform(np.array([-5.0, 9.0])) == pytest.approx([0.0, 1.0])  # clipped outside the fit range


def test_temperature_refuses_scores_without_a_logit_scale():
    with pytest.raises(UsageError, match="cannot calibrate cosine"):
        load_calibrator("temperature").check_kind("cosine")


def test_query_statistics_max_and_margin():
    values = np.array([[3.0, 1.0, 0.5], [2.0, 0.0, 0.0], [4.0, 0.0, 0.0]])
    valid = np.array([[True, True, True], [True, True, False], [True, False, False]])
    assert query_statistic(values, valid, "max").tolist() == [3.0, 2.0, 4.0]
    assert query_statistic(values, valid, "margin").tolist() == [2.0, 2.0, 0.0]  # one candidate: margin 0


def test_fit_threshold_maximises_balanced_accuracy():
    x = np.array([0.9, 0.8, 0.3, 0.2, 0.85, 0.1])
    has = np.array([True, True, True, False, False, False])
    fitted = fit_threshold(x, has)
    # answering x >= 0.8 gives 2/3 answered and 1/3 false evidence; x >= 0.3: 3/3 and 1/3 -> best (5/6)
    assert fitted["threshold"] == pytest.approx((0.3 + 0.2) / 2)
    assert fitted["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)


def test_ece_and_brier_by_hand():
    probs = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([0, 1, 1, 1.0])
    # two equal-mass bins: {0.1, 0.2} mean 0.15 vs 0.5; {0.8, 0.9} mean 0.85 vs 1.0
    assert expected_calibration_error(probs, labels, bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)
    assert brier_score(probs, labels) == pytest.approx((0.01 + 0.64 + 0.04 + 0.01) / 4)


@pytest.mark.parametrize("config", [
    DecisionConfig(calibrator="platt", fit_split="dev_select"),
    DecisionConfig(threshold_mode="fit", fit_split="dev_select"),
    DecisionConfig(calibrator="isotonic"),
])
def test_a_fit_on_the_evaluated_split_is_refused(config):
    with pytest.raises(UsageError, match="dev_select"):
        config.validate("dev_select")


def test_cross_fitting_never_uses_a_query_to_decide_itself():
    # Fold 1 holds the only query with statistic 5: fitted on fold 0 alone, its threshold cannot have seen it.
    stat = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.5])
    has = np.array([False, True, False, True, True, False])
    folds = [np.array([0, 1, 2]), np.array([3, 4, 5])]
    config = DecisionConfig(threshold_mode="fit", cross_fit=2)
    config.validate("dev_select")
    result = decide(config, stat, "logit", folds=folds, has_evidence=has)
    first = fit_threshold(stat[3:], has[3:])["threshold"]
    second = fit_threshold(stat[:3], has[:3])["threshold"]
    assert [f["threshold"] for f in result.folds] == [first, second]
    assert result.answered.tolist() == [bool(s >= first) for s in stat[:3]] + [bool(s >= second) for s in stat[3:]]
