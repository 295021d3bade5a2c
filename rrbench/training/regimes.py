"""Regimes (R0-R5) and recipes: named bundles of training options.

Precedence is *defaults < regime < explicit flags*: a regime fills in what the user did not say, and anything the
user did say wins. The resolved configuration (and which regime produced it) is written next to the checkpoint, so
a result is traceable to the exact recipe even after the catalogue changes.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from rrbench.components.registry import resolve
from rrbench.components.specs import RegimeSpec
from rrbench.training.config import TrainConfig
from rrbench.util.errors import UsageError

#: Regime option keys that are not TrainConfig fields but are handled by the trainer.
_SPECIAL = {"requires_teacher"}


def expand(spec: RegimeSpec) -> dict[str, Any]:
    """The TrainConfig values a regime sets (validated against TrainConfig's fields)."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(spec.options) - known - _SPECIAL
    if unknown:
        raise UsageError(f"regime {spec.id} sets unknown option(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in spec.options.items() if k in known}


def resolve_config(explicit: dict[str, Any], regime: str | None = None) -> TrainConfig:
    """Build the TrainConfig: dataclass defaults, then the regime's options, then ``explicit`` (user flags)."""
    values: dict[str, Any] = {}
    regime_spec = None
    if regime:
        regime_spec = resolve("regimes", regime).spec
        values.update(expand(regime_spec))
        values["regime"] = regime_spec.id
    for key, value in explicit.items():
        if key in ("loss_options", "miner_options") and value:
            values[key] = {**values.get(key, {}), **value}
        elif value is not None:
            values[key] = value
    known = {f.name for f in fields(TrainConfig)}
    bad = set(values) - known
    if bad:
        raise UsageError(f"unknown training option(s): {', '.join(sorted(bad))}")
    config = TrainConfig(**values)
    if regime_spec is not None and regime_spec.options.get("requires_teacher") and not config.teacher:
        raise UsageError(f"regime {regime_spec.id} distils a teacher: pass --teacher RERANKER (with cached scores)")
    config.validate()
    return config
