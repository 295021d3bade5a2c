"""Confidence bounds on rates measured over a few dozen queries.

A false-evidence rate is a proportion over the split's no-evidence queries (66 on scifact-evidence dev_select, 58
on dev_final). Choosing, among thousands of candidate decisions, the one that answers the most has-evidence queries
while its measured FE rate is within a budget picks the decision whose rate was measured luckiest: on the next split
it lands over the budget (the winner's curse). Requiring an upper confidence bound of the rate, rather than the rate
itself, to be within the budget leaves the margin that the sample's size calls for.

The bound is the upper end of the **Wilson score interval** (Wilson 1927): the values ``p`` whose score test
``|p_hat - p| <= z * sqrt(p (1 - p) / n)`` does not reject, with ``z`` the normal quantile of the two-sided
confidence level. Unlike the normal ("Wald") interval it stays inside [0, 1] and is not degenerate at 0 or n
successes (0 of 10 gives 0.2775 at 95%, not 0), which is exactly where an FE budget sits. Closed form::

    centre = (p_hat + z^2 / 2n) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p_hat (1 - p_hat) / n + z^2 / 4n^2)
    bounds = centre -/+ half

The upper end of the two-sided 95% interval is a one-sided 97.5% upper bound. Standard library only (the normal
quantile is :class:`statistics.NormalDist`), so every layer above ``measures`` can use it without SciPy.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0 or math.isnan(confidence):
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check(successes: float, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def wilson_interval(successes: float, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Wilson score interval of a proportion ``successes / trials`` at ``confidence``; ``(0, 1)``
    when there are no trials (nothing is known)."""
    _check(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    z = _z(confidence)
    n = float(trials)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denominator
    half = z / denominator * math.sqrt(max(p * (1.0 - p) / n + z * z / (4.0 * n * n), 0.0))
    # at 0 and n successes the closed form is exact up to rounding: pin the bound that must be 0 or 1
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def wilson_upper(successes: float, trials: int, confidence: float = 0.95) -> float:
    """The upper end of :func:`wilson_interval`: how high the true rate may be, given ``successes`` of
    ``trials``, at ``confidence`` (two-sided; a one-sided bound at ``(1 + confidence) / 2``)."""
    return wilson_interval(successes, trials, confidence)[1]


def rate_upper_bound(rate: float, trials: int, confidence: float | None = 0.95) -> float:
    """An upper bound of a measured rate over ``trials`` items: the Wilson upper end for the count
    ``round(rate * trials)``, or the rate itself when ``confidence`` is ``None`` or 0 (no bound asked for)."""
    if not confidence:
        return float(rate)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"a rate must be within [0, 1], got {rate}")
    return wilson_upper(round(rate * trials), trials, confidence)
