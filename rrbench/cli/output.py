"""How the CLI prints: strict JSON, and the one formatter for numbers in tables and summaries."""

from __future__ import annotations

import json
from typing import Any

import click


def echo_json(obj: Any) -> None:
    """Strict JSON on stdout (no NaN or Infinity: a number that is not finite is a bug to surface, not to print).
    Values JSON has no type for (paths, numpy scalars) print as text."""
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False, default=str))
