"""Tier B: per (M, R, L, N) cell, an Optuna study over training hyper-parameters, with pruning.

Training is the expensive part of the research program, so a bad configuration must stop early: every trial reports
its selection-split nDCG@10 after each of a few evaluations, and a pruner (median, successive halving, Hyperband)
stops the trials that fall behind. Trials run inside ``study.optimize()`` (one at a time, see
:func:`run_study`) because that is where Optuna sends heartbeats: a worker killed mid-trial then has its trial
failed and re-enqueued by another worker (see :mod:`rrbench.util.storage`).

The search space is declared, not hand-written per loss: training knobs (learning rate, warm-up, epochs,
negatives, hard fraction, group size) come from :data:`TRAINING_SPACE`; each loss's and miner's own parameters
come from their plugin's ``option_schema`` (``searchable`` options over ``[low, high]`` or ``choices``). A matrix
file overrides any dimension under ``budgets.tier_b.space`` (``loss.sigma``, ``miner.hard_fraction``, ``lr``...).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrbench.components.registry import resolve
from rrbench.hpo.study import make_sampler, suggest_value
from rrbench.measures.names import trainer_key
from rrbench.training.regimes import resolve_config
from rrbench.training.trainer import train
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash

if TYPE_CHECKING:
    import optuna

    from rrbench.hpo.matrix import Cell, MatrixSpec, ParamRange

#: The training dimensions searched by default (shape -> which apply is decided in :func:`cell_space`).
TRAINING_SPACE: dict[str, dict[str, Any]] = {
    "lr": {"low": 1e-5, "high": 1e-4, "log": True},
    "warmup": {"low": 0.0, "high": 0.2},
    "epochs": {"low": 0.5, "high": 2.0, "step": 0.5},
    "negatives": {"low": 2, "high": 16, "integer": True},
    "group_size": {"choices": [None, 8, 16]},
}
#: Training options that make no sense to search for the given regime shapes.
_NOT_FOR = {"group_size": ("pointwise", "distillation"), "negatives": ()}

PRUNERS = ("median", "successive-halving", "hyperband", "none")

#: A trainer: ``(config, report) -> summary``; ``report(value)`` is called after each selection-split evaluation
#: and raises ``optuna.TrialPruned`` when the pruner stops the trial. The summary holds ``eval["nDCG@10"]``.
Trainer = Callable[[Any, Callable[[float], None]], dict[str, Any]]


def cell_space(cell: Cell, spec: MatrixSpec) -> dict[str, dict[str, Any]]:
    """The search space of one cell: training knobs + the loss's and miner's searchable options, then overrides."""

    space: dict[str, dict[str, Any]] = {}
    if cell.shape == "none":
        return space
    for name, rng in TRAINING_SPACE.items():
        if cell.shape in _NOT_FOR.get(name, ()):
            continue
        space[name] = dict(rng)
    for prefix, kind, component in (("loss", "losses", cell.L), ("miner", "miners", cell.N)):
        if component is None:
            continue
        for option in resolve(kind, component).spec.option_schema:
            if not option.searchable:
                continue
            if option.choices is not None:
                space[f"{prefix}.{option.name}"] = {"choices": list(option.choices)}
            elif option.type in ("int", "float") and option.low is not None and option.high is not None:
                space[f"{prefix}.{option.name}"] = {"low": option.low, "high": option.high, "log": option.log,
                                                    "integer": option.type == "int"}
            elif option.type == "bool":
                space[f"{prefix}.{option.name}"] = {"choices": [False, True]}
    for name, override in spec.budgets.tier_b.space.items():
        space[name] = _range_dict(override)
    fixed = spec.budgets.tier_b.fixed
    return {k: v for k, v in space.items() if k not in fixed}


def _range_dict(rng: ParamRange) -> dict[str, Any]:
    if rng.choices is not None:
        return {"choices": list(rng.choices)}
    return {"low": rng.low, "high": rng.high, "log": rng.log, "step": rng.step, "integer": rng.integer}


def coerce_params(params: dict[str, Any], space: dict[str, dict[str, Any]], cell: Cell) -> dict[str, Any]:
    """An enqueued parameter set in the space's types (YAML reads ``2e-05`` as text), checked against the space."""
    unknown = set(params) - set(space)
    if unknown:
        raise UsageError(f"budgets.tier_b.enqueue: {', '.join(sorted(unknown))} not in cell {cell.key}'s "
                         f"search space ({', '.join(sorted(space)) or 'empty'})")
    out: dict[str, Any] = {}
    for name, value in params.items():
        rng = space[name]
        if "choices" in rng:
            if value not in rng["choices"]:
                raise UsageError(f"budgets.tier_b.enqueue: {name}={value!r} is not one of {rng['choices']}")
            out[name] = value
            continue
        try:
            number = int(value) if rng.get("integer") else float(value)
        except (TypeError, ValueError):
            raise UsageError(f"budgets.tier_b.enqueue: {name}={value!r} is not a number") from None
        if not rng["low"] <= number <= rng["high"]:
            raise UsageError(f"budgets.tier_b.enqueue: {name}={value!r} is outside [{rng['low']}, {rng['high']}]")
        out[name] = number
    return out


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw (or, for an enqueued trial, read back) one value per dimension, in name order."""
    return {name: suggest_value(trial, name, rng) for name, rng in sorted(space.items())}


def make_pruner(name: str, evaluations: int) -> optuna.pruners.BasePruner:
    """The pruner a matrix names; the resource is the evaluation index (1..evaluations), not the step."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(2, evaluations), reduction_factor=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UsageError(f"unknown pruner {name!r}; one of {', '.join(PRUNERS)}")


def train_options(cell: Cell, spec: MatrixSpec, params: dict[str, Any], output: Path) -> dict[str, Any]:
    """The explicit ``rrbench train`` options of one trial (the regime fills in the rest)."""
    fixed = dict(spec.budgets.tier_b.fixed)
    values: dict[str, Any] = {"task": spec.task, "base": cell.M, "loss": cell.L, "miner": cell.N,
                              "output": str(output), "seed": spec.seeds[0]}
    loss_options = dict(fixed.pop("loss_options", {}) or {})
    miner_options = dict(fixed.pop("miner_options", {}) or {})
    declared = _declared_options(cell)
    # fixed loss./miner. options apply to the cells whose component declares them (one file, several losses)
    fixed = {k: v for k, v in fixed.items() if not k.startswith(("loss.", "miner.")) or k in declared}
    for name, value in {**fixed, **params}.items():
        if name.startswith("loss."):
            loss_options[name[5:]] = value
        elif name.startswith("miner."):
            miner_options[name[6:]] = value
        else:
            values[name] = value
    values["loss_options"], values["miner_options"] = loss_options, miner_options
    if cell.teacher:
        values["teacher"] = cell.teacher
    return values


def _declared_options(cell: Cell) -> set[str]:
    out: set[str] = set()
    for prefix, kind, component in (("loss", "losses", cell.L), ("miner", "miners", cell.N)):
        if component is None:
            continue
        spec = resolve(kind, component).spec
        names = [o.name for o in spec.option_schema] or list(spec.options)
        out.update(f"{prefix}.{name}" for name in names)
    return out


def report_callback(report: Callable[[float], None], evaluations: int) -> Any:
    """A transformers callback: evaluate ``evaluations`` times per training phase and report each nDCG@10."""
    from transformers import TrainerCallback  # lazy: heavy: pulls in torch

    class ReportToOptuna(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.max_steps and state.global_step == 0:
                every = max(1, math.ceil(state.max_steps / evaluations))
                state.eval_steps = state.save_steps = every

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            value = (metrics or {}).get(trainer_key("nDCG@10"))
            if value is not None:
                report(float(value))

    return ReportToOptuna()


def real_trainer(evaluations: int, cache_dir: str | None = None, show_progress: bool = False) -> Trainer:
    """``rrbench train`` as a Tier B trainer (the evaluations go through training/evaluation.py)."""

    def trainer(values: dict[str, Any], report: Callable[[float], None]) -> dict[str, Any]:
        values = dict(values)
        regime = values.pop("regime", None)
        config = resolve_config(values, regime)
        return train(config, show_progress=show_progress, callbacks=[report_callback(report, evaluations)],
                     cache_dir=cache_dir)

    return trainer


class NotEnqueued(Exception):
    """A worker asked for a trial when only fixed (enqueued) parameter sets are allowed and none was left."""


def objective_for(cell: Cell, spec: MatrixSpec, space: dict[str, dict[str, Any]], trials_dir: Path,
                  trainer: Trainer) -> Callable[[optuna.Trial], float]:
    """The Optuna objective of a cell: suggest, train with intermediate reports, return the final nDCG@10."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    tier_b = spec.budgets.tier_b

    def objective(trial: optuna.Trial) -> float:
        attrs = _system_attrs(trial)
        if not tier_b.sample and "fixed_params" not in attrs:
            raise NotEnqueued("no enqueued parameter set was left for this trial (another worker took it)")
        params = suggest(trial, space)
        # A retry of a trial whose worker died continues in that trial's folder, from its last checkpoint.
        original = attrs.get("failed_trial", trial.number)
        out = trials_dir / f"trial-{original:04d}"
        values = train_options(cell, spec, params, out)
        values["regime"] = cell.R
        step = {"n": 0}

        def report(value: float) -> None:
            step["n"] += 1
            trial.report(value, step["n"])
            if trial.should_prune():
                trial.set_user_attr("pruned_at_evaluation", step["n"])
                raise optuna.TrialPruned(f"pruned after evaluation {step['n']} (nDCG@10 {value:.4f})")

        started = time.perf_counter()
        summary = trainer(values, report)
        value = summary["eval"]["nDCG@10"]
        if value is None or not math.isfinite(float(value)):
            raise UsageError(f"cell {cell.key}: trial {trial.number} produced no finite dev nDCG@10")
        trial.set_user_attr("output", str(out))
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        trial.set_user_attr("eval", summary["eval"])
        return float(value)

    return objective


def _system_attrs(trial: optuna.Trial) -> dict[str, Any]:
    """The running trial's system attributes (enqueued parameters, retry history), through public API."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    running = trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    frozen = next((t for t in running if t.number == trial.number), None)
    return dict(frozen.system_attrs) if frozen is not None else {}


# -- one cell's study ------------------------------------------------------------------------------------------------
def study_name(spec: MatrixSpec, cell: Cell) -> str:
    return f"{spec.name}:tier-b:{cell.key}"


def space_identity(cell: Cell, spec: MatrixSpec, space: dict[str, dict[str, Any]]) -> str:
    """What a stored study must match to be continued: the space, the budget and the fixed options."""
    tier_b = spec.budgets.tier_b
    return canonical_hash({"space": space, "fixed": tier_b.fixed, "trials": tier_b.trials, "pruner": tier_b.pruner,
                           "sampler": tier_b.sampler, "evaluations": tier_b.evaluations,
                           "enqueue": tier_b.enqueue, "sample": tier_b.sample, "seeds": spec.seeds})[:16]


def open_cell_study(cell: Cell, spec: MatrixSpec, storage: Any, space: dict[str, dict[str, Any]],
                    storage_label: str, wait_s: float = 60.0) -> optuna.Study:
    """Create the cell's study (the one worker that wins the creation enqueues the fixed sets) or load it.

    A stored study made from a different space or budget is refused: continuing it would mix two experiments.
    """
    import optuna  # lazy: optional: only sweeps and the matrix use it

    name = study_name(spec, cell)
    tier_b = spec.budgets.tier_b
    identity = space_identity(cell, spec, space)
    # Each worker's sampler gets its own seed: with one shared seed, every worker would draw the same first
    # random configurations. Sampled trials are therefore not reproducible run to run; enqueued ones are.
    worker_seed = (spec.seeds[0] * 1_000_003 + os.getpid()) % 2**32
    kwargs = dict(storage=storage, study_name=name, direction="maximize",
                  sampler=make_sampler(tier_b.sampler, worker_seed, startup_trials=4),
                  pruner=make_pruner(tier_b.pruner, tier_b.evaluations))
    try:
        study = optuna.create_study(**kwargs)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, sampler=kwargs["sampler"],
                                  pruner=kwargs["pruner"])
        deadline = time.monotonic() + wait_s
        while "space" not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(0.2)  # the creating worker is still enqueueing
        stored = study.user_attrs.get("space")
        if stored is None:
            raise UsageError(f"study {name!r} in {storage_label} was created but never initialised (its worker "
                             f"died while enqueueing); delete it with `optuna delete-study --study-name {name} "
                             f"--storage URL` and run again") from None
        if stored != identity:
            raise UsageError(f"study {name!r} in {storage_label} was made from a different version of the matrix "
                             f"file (search space or budget changed); to start a new study, rename the matrix "
                             f"('name:') or pass another --storage/--output") from None
        return study
    for params in tier_b.enqueue:
        study.enqueue_trial(coerce_params(params, space, cell))
    study.set_user_attr("space", identity)
    study.set_user_attr("cell", cell.as_dict())
    return study


def cell_counts(study: optuna.Study) -> dict[str, int]:
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return {k: counts.get(k, 0) for k in ("complete", "pruned", "fail", "running", "waiting")}


def run_study(study: optuna.Study, objective: Callable[[optuna.Trial], float], budget: int, sample: bool = True,
              poll_s: float = 1.0, stop: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Work on one study until ``budget`` trials are complete or pruned; safe in any number of workers at once.

    Trials are taken one by one through ``study.optimize(n_trials=1)`` (heartbeats, stale-trial retries). With
    fixed sets only (``sample=False``) the budget is the enqueued sets; a worker then waits while another worker's
    trial is still running, because that trial may die and be re-enqueued.
    """
    import optuna  # lazy: optional: only sweeps and the matrix use it
    from optuna.storages import fail_stale_trials  # lazy: optional: only sweeps and the matrix use it

    while not stop():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)
        counts = cell_counts(study)
        finished = counts["complete"] + counts["pruned"]
        if finished >= budget:
            break
        if sample:
            if finished + counts["running"] >= budget and counts["waiting"] == 0:
                time.sleep(poll_s)  # the rest of the budget is being worked on elsewhere
                continue
        elif counts["waiting"] == 0:
            if counts["running"] == 0:
                break
            time.sleep(poll_s)
            continue
        study.optimize(objective, n_trials=1, catch=(NotEnqueued,), gc_after_trial=True)
    return cell_counts(study)


def tier_b_budget(spec: MatrixSpec) -> tuple[int, bool]:
    """(trials to finish, whether to sample beyond the enqueued sets)."""
    tier_b = spec.budgets.tier_b
    return (tier_b.trials, True) if tier_b.sample else (len(tier_b.enqueue), False)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best completed trial; ties go to the earliest *original* trial (a retry counts as the trial it
    replaces), so a resumed study selects what an uninterrupted one would."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return None
    return max(done, key=lambda t: (t.value, -int(t.system_attrs.get("failed_trial", t.number))))
