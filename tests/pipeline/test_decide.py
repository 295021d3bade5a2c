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


def test_platt_never_inverts_the_statistic():
    # The statistic runs against the outcome (x=0: 3 of 4 have evidence; x=1: 1 of 4). The unconstrained fit has a
    # negative slope; a calibrator is non-decreasing, so the best admissible map is flat at the base rate 1/2.
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    y = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=float)
    cal = load_calibrator("platt").fit(x, y)
    assert cal.params == {"a": 0.0, "b": pytest.approx(0.0, abs=1e-12)}
    assert cal.transform(np.array([0.0, 1.0])) == pytest.approx([0.5, 0.5])


def test_the_stage_refuses_a_calibrator_that_breaks_its_contract():
    """Checked at run time like scores: finite, in [0, 1], non-decreasing on the fitted statistics."""
    from rrbench.components.bases import Calibrator
    from rrbench.pipeline.decide import GuardedCalibrator
    from rrbench.plugin import CalibratorSpec
    from rrbench.util.errors import PluginError

    class Fixed(Calibrator):
        def __init__(self, values):
            super().__init__(CalibratorSpec(id="fixed", loader="x:y"))
            self.values = values

        def fit(self, x, y):
            return self

        def transform(self, x):
            return self.values(np.asarray(x))

    x, y = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 1.0])
    for values, fragment in ((lambda x: 1.0 - x / 2, "not non-decreasing"), (lambda x: x, r"outside \[0, 1\]"),
                             (lambda x: x * np.nan, "non-finite"), (lambda x: x[:1] * 0, "1 scores for 3")):
        with pytest.raises(PluginError, match=fragment) as info:
            GuardedCalibrator(Fixed(values)).fit(x, y)
        assert str(info.value).startswith("calibrator 'fixed'")
    good = GuardedCalibrator(Fixed(lambda x: x / 4)).fit(x, y)
    assert good.fitted == pytest.approx([0.0, 0.25, 0.5])


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


def test_the_refusal_never_suggests_the_evaluated_split():
    """Issue 26: `rrbench run --config best.yaml` (fitted on dev_select) on dev_select pointed at dev_select."""
    with pytest.raises(UsageError) as info:
        DecisionConfig(calibrator="platt", fit_split="dev_select").validate("dev_select")
    assert "--calibrate-on dev_select" not in str(info.value) and "--split dev_final" in str(info.value)
    with pytest.raises(UsageError) as info:
        DecisionConfig(calibrator="platt", fit_split="dev_final").validate("dev_final")
    assert "--calibrate-on dev_select" in str(info.value) and "--calibrate-on dev_final" not in str(info.value)


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


# -- the max-fe threshold (a false-evidence budget) --------------------------------------------------------------------
def test_fe_thresholds_pick_the_lowest_threshold_within_each_budget():
    from rrbench.pipeline.decide import fe_thresholds, fit_fe_threshold

    # no-evidence statistics 0.9, 0.6, 0.4, 0.1 (four); has-evidence 0.8, 0.5, 0.3
    x = np.array([0.9, 0.6, 0.4, 0.1, 0.8, 0.5, 0.3])
    has = np.array([False, False, False, False, True, True, True])
    t = fe_thresholds(x, has, [0.0, 0.25, 0.5, 0.49, 1.0])
    # FE 0: above 0.9 (never answer: halfway to 0.9 + 1); 1/4: answer from 0.8 (halfway to 0.6); 2/4: from 0.5
    # (halfway to 0.4); 0.49 allows one false answer only; everything: below the lowest statistic
    assert t.tolist() == pytest.approx([1.4, 0.7, 0.45, 0.7, -0.4])
    fitted = fit_fe_threshold(x, has, 0.25)
    assert fitted["threshold"] == pytest.approx(0.7)
    assert fitted["false_evidence_rate"] == 0.25 and fitted["answer_rate_has_evidence"] == pytest.approx(1 / 3)
    assert fit_fe_threshold(x[has], has[has], 0.25)["threshold"] is None  # needs no-evidence queries


def test_a_query_with_nothing_to_rank_is_never_answered_under_a_budget():
    from rrbench.pipeline.decide import fe_thresholds

    x = np.array([-np.inf, 0.2, 0.7, 0.5])
    has = np.array([False, False, True, True])
    assert fe_thresholds(x, has, [1.0])[0] < 0.2  # answers every finite statistic, not -inf


@pytest.mark.parametrize("calibrator", ["none", "platt", "isotonic"])
def test_the_cross_fitted_budget_ladder_equals_deciding_each_budget(calibrator):
    from rrbench.pipeline.decide import cross_fitted_fe_budgets

    rng = np.random.default_rng(5)
    has = rng.random(90) < 0.6
    statistic = rng.normal(size=90) + 1.2 * has
    statistic[[3, 7]] = statistic[[4, 8]]  # ties
    folds = [np.arange(i, 90, 5) for i in range(5)]
    budgets = [0.2, 0.15, 0.1, 0.05, 0.0]
    config = DecisionConfig(calibrator=calibrator, threshold_mode="max-fe", cross_fit=5, threshold_max_fe=0.2)
    fe, answer = cross_fitted_fe_budgets(config, statistic, "logit", folds, has, budgets)
    for budget, want_fe, want_answer in zip(budgets, fe, answer, strict=True):
        one = DecisionConfig(calibrator=calibrator, threshold_mode="max-fe", cross_fit=5, threshold_max_fe=budget)
        decision = decide(one, statistic, "logit", folds=folds, has_evidence=has)
        assert decision.answered[~has].mean() == pytest.approx(want_fe, abs=1e-12)
        assert decision.answered[has].mean() == pytest.approx(want_answer, abs=1e-12)
    assert list(fe) == sorted(fe, reverse=True)  # a smaller budget never answers more


def test_a_max_fe_threshold_needs_its_budget():
    with pytest.raises(UsageError, match="--threshold-max-fe"):
        DecisionConfig(threshold_mode="max-fe", fit_split="dev_select").validate("dev_final")
    with pytest.raises(UsageError, match="applies to --threshold max-fe only"):
        DecisionConfig(threshold_mode="fixed", threshold=0.5, threshold_max_fe=0.1).validate("dev_final")
    config = DecisionConfig(threshold_mode="max-fe", fit_split="dev_select", threshold_max_fe=0.15)
    config.validate("dev_final")
    assert config.needs_fit and config.hashed()["threshold_fit"] == {"rule": "max-fe", "max_fe": 0.15}
