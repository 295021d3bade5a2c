"""Specs of fusion methods (RRF, weighted score fusion)."""

from __future__ import annotations


def register_fusers(register) -> None:
    """Register FuserSpecs."""
