"""Specs of training losses, negative miners and regimes."""

from __future__ import annotations


def register_losses(register) -> None:
    """Register LossSpecs."""


def register_miners(register) -> None:
    """Register MinerSpecs."""


def register_regimes(register) -> None:
    """Register RegimeSpecs."""
