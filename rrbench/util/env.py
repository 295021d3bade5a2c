"""Numeric settings read from environment variables: one reader, so a bad value is the same one-line error
everywhere (leases, heartbeats, fill units) instead of a traceback from ``int()`` deep inside a worker."""

from __future__ import annotations

import os

from rrbench.util.errors import UsageError


def positive_env_number(name: str, default: float, whole: bool, unit: str = "") -> float:
    """``$name`` as a positive number (an int when ``whole``), or ``default`` when unset; a UsageError names it."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    kind = "a whole number" if whole else "a number"
    try:
        value: float = int(raw) if whole else float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not {kind}{' of ' + unit if unit else ''}") from None
    if not value > 0:
        raise UsageError(f"{name}={raw!r} must be positive")
    return value
