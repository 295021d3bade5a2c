"""The Tier A search space: which inference settings a sweep may choose, read from ``space.yaml``.

Every dimension is optional; a missing one takes its default below (the research plan's grids where it gives them).
A dimension is a list of choices, or a range ``{low, high[, step]}`` for the continuous ones. The file is checked
strictly, because a misspelt dimension silently left at its default would waste a whole sweep: unknown names, empty
lists and out-of-range values are one-line errors.

Dimensions (see docs/sweep.md):

- ``top_k_retriever``, ``top_k_rerank``: pool size K and reranked head N (clipped to the pool; within a post the
  pool is the whole post, so most values collapse);
- ``fusion`` (``none``, ``rrf``, ``weighted``; only with several retrievers), ``rrf_k``, ``alpha``, ``norm``;
- ``rerankers``: which of the named rerankers form the ranking (``A``, ``A+B`` ...; default: every non-empty
  subset), ``ensemble_weight`` (weight of each member before normalisation), ``ensemble_norm``;
- ``interpolate`` (beta, weight of the retriever score) and ``interpolate_norm``;
- ``abstain`` (``max``, ``margin``), ``calibrator``, ``threshold_mode`` (``max-fe``, the default: the lowest
  threshold within the FE budget, cross-fitted, with the policy, the calibrator, the interpolation weight and a
  two-reranker ensemble's weights solved in each trial rather than sampled; ``fixed``: a sampled threshold; ``fit``:
  the balanced-accuracy threshold, cross-fitted), ``threshold_quantile`` (a fixed raw threshold, as a quantile of
  the split's query statistics), ``prob_threshold`` (a fixed threshold on calibrated probabilities); the last two
  apply to ``fixed`` only;
- ``max_length``, ``instruction``: variants of the rerankers, used only where their scores are cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrbench.util.errors import UsageError, close_matches
from rrbench.util.strict_yaml import read_yaml_mapping

CATEGORICAL: dict[str, Any] = {
    "top_k_retriever": [50, 100, 200, 400],
    "top_k_rerank": [5, 10, 20, 50, 100, 200],
    "fusion": ["none", "rrf", "weighted"],
    "rrf_k": [20, 60, 100],
    "norm": ["minmax", "zscore", "rank"],
    "rerankers": None,  # default: every non-empty subset of the named rerankers
    "ensemble_norm": ["minmax", "zscore"],
    "interpolate_norm": ["minmax", "zscore"],
    "abstain": ["max", "margin"],
    "calibrator": ["none", "platt", "isotonic"],
    "threshold_mode": ["max-fe"],
    "max_length": None,  # default: the spec's own
    "instruction": None,
}
RANGES = {
    "alpha": (0.0, 1.0, 0.05),
    "ensemble_weight": (0.0, 1.0, 0.05),
    "interpolate": (0.0, 1.0, 0.05),
    "threshold_quantile": (0.0, 1.0, None),
    "prob_threshold": (0.05, 0.95, None),
}
#: ranges that must stay inside [0, 1]
UNIT = {"alpha", "ensemble_weight", "interpolate", "threshold_quantile", "prob_threshold"}
DIMENSIONS = sorted({*CATEGORICAL, *RANGES})


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    step: float | None = None


@dataclass
class Space:
    """Resolved dimensions: name -> list of choices or a :class:`Range`."""

    dims: dict[str, Any]

    def choices(self, name: str) -> list[Any]:
        value = self.dims[name]
        if isinstance(value, Range):
            raise TypeError(name)
        return list(value)

    def describe(self) -> dict[str, Any]:
        return {k: ({"low": v.low, "high": v.high, "step": v.step} if isinstance(v, Range) else list(v))
                for k, v in sorted(self.dims.items())}


def _check_range(name: str, raw: Mapping[str, Any], where: str) -> Range:
    unknown = set(raw) - {"low", "high", "step"}
    if unknown:
        raise UsageError(f"{where}: dimension {name!r} has unknown key(s) {', '.join(sorted(unknown))} "
                         f"(use low, high, step)")
    try:
        low, high = float(raw["low"]), float(raw["high"])
        step = float(raw["step"]) if raw.get("step") is not None else None
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{where}: dimension {name!r} needs numeric low and high") from None
    if not low <= high:
        raise UsageError(f"{where}: dimension {name!r} has an empty range (low {low} > high {high})")
    if name in UNIT and not (low >= 0.0 and high <= 1.0):
        raise UsageError(f"{where}: dimension {name!r} must stay within [0, 1], got [{low}, {high}]")
    if step is not None and step <= 0:
        raise UsageError(f"{where}: dimension {name!r} needs a step > 0, got {step}")
    return Range(low, high, step)


def parse_space(raw: Mapping[str, Any] | None, rerankers: list[str], where: str = "space.yaml") -> Space:
    """Validate a space mapping and fill the defaults."""
    raw = dict(raw or {})
    dims: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in DIMENSIONS:
            raise UsageError(f"{where}: unknown dimension {name!r}.{close_matches(str(name), DIMENSIONS)}")
        if name in RANGES:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = {"low": value, "high": value}
            if isinstance(value, list):
                if not value:
                    raise UsageError(f"{where}: dimension {name!r} is an empty list")
                if name in UNIT and any(not 0.0 <= float(v) <= 1.0 for v in value):
                    raise UsageError(f"{where}: dimension {name!r} must stay within [0, 1], got {value}")
                dims[name] = [float(v) for v in value]
                continue
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}: dimension {name!r} must be a range {{low, high}} or a list")
            dims[name] = _check_range(name, value, where)
        else:
            value = value if isinstance(value, list) else [value]
            if not value:
                raise UsageError(f"{where}: dimension {name!r} is an empty list")
            dims[name] = value
    for name, default in CATEGORICAL.items():
        if name not in dims:
            if name == "rerankers":
                default = _subsets(rerankers)
            if default is not None:
                dims[name] = list(default)
    for name, (low, high, step) in RANGES.items():
        dims.setdefault(name, Range(low, high, step))
    for name in ("top_k_retriever", "top_k_rerank", "rrf_k", "max_length"):
        for v in dims.get(name, []):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < (0 if name == "top_k_rerank" else 1):
                raise UsageError(f"{where}: dimension {name!r} holds {v!r}; expected positive numbers")
    known = {
        "fusion": {"none", "rrf", "weighted"}, "norm": {"minmax", "zscore", "rank"},
        "ensemble_norm": {"minmax", "zscore"}, "interpolate_norm": {"minmax", "zscore"},
        "abstain": {"max", "margin"}, "threshold_mode": {"fixed", "fit", "natural", "max-fe"},
    }
    for name, allowed in known.items():
        bad = [v for v in dims[name] if v not in allowed]
        if bad:
            raise UsageError(f"{where}: dimension {name!r} holds {bad[0]!r}; choose from {', '.join(sorted(allowed))}")
    for subset in dims["rerankers"]:
        for member in str(subset).split("+"):
            if member not in rerankers:
                raise UsageError(f"{where}: dimension 'rerankers' names {member!r}, which is not a --reranker of "
                                 f"this sweep ({', '.join(rerankers) or 'none'})")
    return Space(dims)


def _subsets(names: list[str]) -> list[str]:
    out = []
    for mask in range(1, 2 ** len(names)):
        out.append("+".join(n for i, n in enumerate(names) if mask >> i & 1))
    return sorted(out, key=lambda s: (s.count("+"), s))


def load_space(path: str | Path | None, rerankers: list[str]) -> Space:
    if path is None:
        return parse_space({}, rerankers, "default space")

    return parse_space(read_yaml_mapping(path, "space file"), rerankers, str(path))
