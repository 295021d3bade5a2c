"""Specs of the built-in fusion methods (RRF, weighted score fusion). Only spec objects are built here, so listing
them stays cheap; the code lives in :mod:`rrbench.fusion`."""

from __future__ import annotations

from rrbench.specs import FuserSpec


def register_fusers(register) -> None:
    """Register the built-in FuserSpecs."""
    register(FuserSpec(
        id="rrf", aliases=("reciprocal-rank-fusion",), loader="rrbench.fusion:RRFFuser",
        description="reciprocal rank fusion: sum of 1/(k0 + rank) over retrievers; tied scores share a rank",
        options={"k0": 60},
    ))
    register(FuserSpec(
        id="weighted", aliases=("linear", "convex"), loader="rrbench.fusion:WeightedFuser",
        description="weighted sum of per-query normalised scores (minmax, zscore or rank); alpha weighs the first "
                    "retriever, 1-alpha is shared by the others",
        options={"alpha": 0.5, "norm": "minmax"},
    ))
