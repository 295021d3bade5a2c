"""Specs of retrievers beyond the defaults (sparse, dense, learned sparse). Only spec objects are built here."""

from __future__ import annotations


def register_more_retrievers(register) -> None:
    """Register further RetrieverSpecs."""
