"""Specs of the built-in fusion methods (RRF, weighted score fusion). Only spec objects are built here, so listing
them stays cheap; the code lives in :mod:`rrbench.retrievers.fusion`."""

from __future__ import annotations

from typing import Any

from rrbench.components.specs import FuserSpec, OptionSpec

#: Declared once: validated for ``--fusion-option`` and searched by the sweep/matrix within these ranges.
RRF_SCHEMA = (
    OptionSpec("k0", "float", 60.0, low=1.0, high=1000.0, log=True,
               help="RRF constant: small values reward a single top rank, large ones agreement across retrievers"),
)
WEIGHTED_SCHEMA = (
    OptionSpec("alpha", "float", 0.5, low=0.0, high=1.0, help="weight of the first retriever; the others share 1-alpha"),
    OptionSpec("norm", "str", "minmax", choices=("minmax", "zscore", "rank"), help="per-query score normalisation"),
)


def register_fusers(register: Any) -> None:
    """Register the built-in FuserSpecs."""
    register(FuserSpec(
        id="rrf", aliases=("reciprocal-rank-fusion",), loader="rrbench.retrievers.fusion:RRFFuser",
        description="reciprocal rank fusion: sum of 1/(k0 + rank) over retrievers; tied scores share a rank",
        option_schema=RRF_SCHEMA,
    ))
    register(FuserSpec(
        id="weighted", aliases=("linear", "convex"), loader="rrbench.retrievers.fusion:WeightedFuser",
        description="weighted sum of per-query normalised scores (minmax, zscore or rank); alpha weighs the first "
                    "retriever, 1-alpha is shared by the others",
        option_schema=WEIGHTED_SCHEMA,
    ))
