"""What every Optuna study of rrbench shares: how a sampler is made and how one value of a dimension is drawn.

Tier A sweeps (:mod:`rrbench.hpo.sweep`) and Tier B training studies (:mod:`rrbench.hpo.matrix_tier_b`) both come
here, so a dimension means the same thing in a space file and in a matrix file, and a seed reproduces the same
trials in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rrbench.util.errors import UsageError

SAMPLERS = ("tpe", "nsga2", "random")


def make_sampler(name: str, seed: int, *, startup_trials: int | None = None, constraints_func: Any = None) -> Any:
    """The sampler called ``name``, seeded. ``startup_trials``: random trials before TPE models the space (Optuna's
    default when None). ``constraints_func``: for Optuna < 5, whose samplers take feasibility only through it
    (Optuna >= 5 reads ``Trial.set_constraint``)."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    legacy: dict[str, Any] = {} if constraints_func is None or hasattr(optuna.trial.Trial, "set_constraint") else \
        {"constraints_func": constraints_func}
    if name == "tpe":
        startup: dict[str, Any] = {} if startup_trials is None else {"n_startup_trials": startup_trials}
        return optuna.samplers.TPESampler(seed=seed, **startup, **legacy)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **legacy)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def suggest_value(trial: Any, name: str, dimension: Any) -> Any:
    """One value of a dimension: a list of choices, or a range given as an object or a mapping with ``low``,
    ``high`` and optionally ``step``, ``log`` and ``integer``. A range whose ends meet is still suggested (Optuna
    records it without sampling), so every trial lists every dimension it used."""
    if isinstance(dimension, Sequence) and not isinstance(dimension, str):
        return trial.suggest_categorical(name, list(dimension))
    spec: Mapping[str, Any] = dimension if isinstance(dimension, Mapping) else vars(dimension)
    if "choices" in spec:
        return trial.suggest_categorical(name, list(spec["choices"]))
    low, high = spec["low"], spec["high"]
    if spec.get("integer"):
        return trial.suggest_int(name, int(low), int(high), log=bool(spec.get("log")), step=int(spec.get("step") or 1))
    return trial.suggest_float(name, float(low), float(high), log=bool(spec.get("log")), step=spec.get("step"))
