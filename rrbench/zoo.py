"""The reranker zoo: specs of the registered hub models (issue: reranker zoo). Only spec objects are built here."""

from __future__ import annotations


def register_zoo(register) -> None:
    """Register the zoo's RerankerSpecs."""
