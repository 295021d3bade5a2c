"""What a plugin returns as scores is checked in one place: one finite number per candidate.

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
