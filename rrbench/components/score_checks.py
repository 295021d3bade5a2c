"""What a plugin returns is checked in one place: one finite number per candidate (rerankers, retrievers, fusers),
probabilities that keep the statistics' order (calibrators), distinct in-corpus positions (a retriever's search).

A leaf module (numpy and the error types only), so that the stages that call plugins - retrieval, fusion, reranking
and the score cache - can all use it without importing each other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rrbench.util.errors import PluginError


def check_scores(scores: Any, expected: int, component: str) -> np.ndarray:
    """One finite float per candidate, or a one-line :class:`PluginError` naming ``component``."""
    try:
        array = np.asarray(scores, dtype=np.float64).reshape(-1) if scores is not None else np.empty(0)
    except (TypeError, ValueError):
        raise PluginError(f"{component} returned {type(scores).__name__} values that are not numbers") from None
    if scores is not None and np.asarray(scores).dtype.kind not in "biuf":
        raise PluginError(f"{component} returned scores of dtype {np.asarray(scores).dtype}, not numbers")
    if array.shape[0] != expected:
        raise PluginError(f"{component} returned {array.shape[0]} scores for {expected} candidates")
    bad = ~np.isfinite(array)
    if bad.any():
        raise PluginError(f"{component} returned {int(bad.sum())} non-finite score(s) (NaN/inf) "
                          f"out of {expected}")
    return array


#: Slack for float noise when a calibrator's output is checked against [0, 1] and against monotonicity.
PROBABILITY_SLACK = 1e-9


def check_probabilities(values: Any, expected: int, component: str) -> np.ndarray:
    """What a calibrator's ``transform`` returns: one finite probability in [0, 1] per statistic, or a one-line
    :class:`PluginError` naming ``component`` and the rule broken."""
    array = check_scores(values, expected, f"{component}: transform()")
    low, high = (float(array.min()), float(array.max())) if len(array) else (0.0, 1.0)
    if low < -PROBABILITY_SLACK or high > 1.0 + PROBABILITY_SLACK:
        outside = int(((array < -PROBABILITY_SLACK) | (array > 1.0 + PROBABILITY_SLACK)).sum())
        raise PluginError(f"{component}: transform() returned {outside} value(s) outside [0, 1] (from {low:.4g} to "
                          f"{high:.4g}); a calibrator maps statistics to probabilities")
    return np.clip(array, 0.0, 1.0)


def check_non_decreasing(statistics: Any, probabilities: np.ndarray, component: str) -> None:
    """A calibrator is a monotone map: on the statistics it was fitted on, a larger statistic never gets a smaller
    probability. Refused with a one-line :class:`PluginError` naming the first violation."""
    x = np.asarray(statistics, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    xs, ps = x[order], np.asarray(probabilities, dtype=np.float64)[order]
    drops = np.flatnonzero((np.diff(ps) < -PROBABILITY_SLACK) & (np.diff(xs) > 0))
    if len(drops):
        i = int(drops[0])
        raise PluginError(f"{component}: transform() is not non-decreasing on the statistics it was fitted on "
                          f"(statistic {xs[i]:.4g} -> {ps[i]:.4g} but {xs[i + 1]:.4g} -> {ps[i + 1]:.4g}); a "
                          f"calibrator must keep the order of the statistics")


def check_search_result(ids: Any, scores: Any, k: int, corpus: int, component: str) -> tuple[np.ndarray, np.ndarray]:
    """What a retriever's ``search(query, k)`` returns: at most ``k`` distinct integer positions in ``[0, corpus)``
    and one finite score each. A one-line :class:`PluginError` names the rule that broke."""
    where = f"{component}: search()"
    try:
        top = np.asarray(ids).reshape(-1)
    except (TypeError, ValueError):
        raise PluginError(f"{where} returned ids that are not an array of positions") from None
    if len(top) and top.dtype.kind not in "iu":
        raise PluginError(f"{where} returned ids of dtype {top.dtype}; positions must be integers")
    if len(top) > k:
        raise PluginError(f"{where} returned {len(top)} ids for k={k}; at most k are allowed")
    values = check_scores(scores, len(top), where)
    if len(top):
        if top.min() < 0 or top.max() >= corpus:
            bad = top[(top < 0) | (top >= corpus)]
            raise PluginError(f"{where} returned {len(bad)} id(s) outside the indexed corpus [0, {corpus}) "
                              f"(e.g. {int(bad[0])})")
        unique, counts = np.unique(top, return_counts=True)
        if len(unique) != len(top):
            raise PluginError(f"{where} returned duplicate ids ({int((counts > 1).sum())} id(s) more than once, "
                              f"e.g. {int(unique[counts > 1][0])}); each candidate may appear once")
    return top.astype(np.int64), values
