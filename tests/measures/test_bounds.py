"""The Wilson score bound the sweep's FE constraint reads (rrbench.measures.bounds)."""

from __future__ import annotations

import math

import pytest

from rrbench.measures.bounds import rate_upper_bound, wilson_interval, wilson_upper


@pytest.mark.parametrize("successes, trials, low, high", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in Medicine 17:857-872,
    # Table I, method 3 (the score interval without continuity correction), 95%
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_the_interval_matches_published_values(successes, trials, low, high):
    got = wilson_interval(successes, trials, 0.95)
    assert got == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize("successes, trials", [(0, 10), (3, 56), (5, 58), (56, 56), (17, 40)])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_each_end_is_where_the_score_test_is_on_its_edge(successes, trials, confidence):
    """Wilson's interval is the set of p that the score test does not reject: (p_hat - p)^2 = z^2 p (1 - p) / n at
    each end inside (0, 1)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p_hat = successes / trials
    for p in wilson_interval(successes, trials, confidence):
        if 0.0 < p < 1.0:
            assert (p_hat - p) ** 2 == pytest.approx(z * z * p * (1 - p) / trials, rel=1e-9, abs=1e-15)
    low, high = wilson_interval(successes, trials, confidence)
    assert 0.0 <= low <= p_hat <= high <= 1.0


def test_no_success_has_the_closed_form_upper_end_and_more_confidence_widens():
    z2 = 1.959963984540054 ** 2
    assert wilson_upper(0, 10) == pytest.approx(z2 / (10 + z2), rel=1e-12)  # 0.2775, where a Wald bound says 0
    assert wilson_upper(4, 56, 0.8) < wilson_upper(4, 56, 0.95) < wilson_upper(4, 56, 0.99)
    assert wilson_upper(20, 400) < wilson_upper(5, 100) < wilson_upper(1, 20)  # same rate, more queries: tighter


def test_rate_upper_bound_reads_the_count_and_zero_confidence_is_the_rate():
    assert rate_upper_bound(5 / 56, 56) == wilson_upper(5, 56)
    assert rate_upper_bound(5 / 56, 56, 0) == 5 / 56
    assert rate_upper_bound(0.25, 8, None) == 0.25
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("call", [
    lambda: wilson_interval(3, 2), lambda: wilson_interval(-1, 5), lambda: wilson_upper(1, 5, 1.0),
    lambda: wilson_upper(1, 5, 0.0), lambda: wilson_upper(1, 5, math.nan), lambda: rate_upper_bound(1.5, 4),
])
def test_impossible_inputs_are_refused(call):
    with pytest.raises(ValueError):
        call()
