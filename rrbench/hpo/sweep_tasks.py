"""Leave-one-task-out selection: ``rrbench sweep --tasks A,B,C --holdout-task C``.

Selecting on a task's own dev split holds; carrying the selection to another task is the claim users make, and the
real test of it is a task the selection never saw. So Tier A runs here over several *selection* tasks at once: one
Optuna study whose trial is one configuration, evaluated (over cached scores, no model call) on every selection
task's sweep split. A trial is feasible when its false-evidence rate is within ``--max-fe`` on *each* selection
task. It is scored by its per-task difference to BM25 (BM25 alone on that task, pinned to the trial's pool size K,
as the board's cross-task view pins it), either by the **worst**
task (the default: a system should not lose anywhere) or by the **mean**. Worst-task selection favours whatever
looks best on the noisiest task, so the chosen configuration is then confirmed on every selection task's
``dev_final`` as well as evaluated on the held-out task (its decision refitted on the held-out task's
``dev_select``, as the configuration prescribes).

The decision is sampled here, never solved per task (the default ``[max-fe]`` becomes ``[fit, max-fe]``), and
fixed raw thresholds are left out: they are quantiles of one task's statistics, so no single value means the same
on several tasks. Fitted and max-fe thresholds (cross-fitted on each task) and calibrated probabilities do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.hpo.space import Space
from rrbench.hpo.study import make_sampler
from rrbench.hpo.sweep import (
    ScoreSource,
    SweepSetup,
    config_for,
    constraint_violation,
    constraints,
    evaluate_config,
    feasible,
    suggest,
)
from rrbench.hpo.sweep_report import best_config_file
from rrbench.pipeline.combine import Combination, evaluate_split
from rrbench.pipeline.decide import DecisionConfig
from rrbench.pipeline.runner import RunConfig, execute, score_split
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, canonical_hash, strict_json_dumps
from rrbench.util.storage import open_storage

SELECTIONS = ("worst", "mean")
CONFIRM_SPLIT = "dev_final"
LOTO_FILE = "loto.json"


def check_loto(tasks: Sequence[str], holdout: str, select: str, space: Space) -> list[str]:
    """The selection tasks (all but the held-out one); one-line refusals for what cannot be honest."""
    if select not in SELECTIONS:
        raise UsageError(f"--select must be one of {', '.join(SELECTIONS)}, got {select!r}")
    if any(t.lower() == "all" for t in tasks):
        raise UsageError("--tasks all is not offered: name the tasks (what is installed differs between machines)")
    if len(set(tasks)) != len(tasks):
        raise UsageError(f"--tasks names a task twice: {','.join(tasks)}")
    if holdout not in tasks:
        raise UsageError(f"--holdout-task {holdout!r} is not one of --tasks {','.join(tasks)}")
    selection = [t for t in tasks if t != holdout]
    if len(selection) < 2:
        raise UsageError("leave-one-task-out needs at least two selection tasks besides --holdout-task")
    return selection


def task_free_space(space: Space) -> tuple[Space, str | None]:
    """A space whose trial is one configuration for every task: no fixed raw thresholds (a quantile of one task's
    statistics means nothing on another), and the decision sampled rather than solved (a sweep's default
    ``[max-fe]`` solves it per task, which would give each task its own decision). ``[max-fe]`` becomes
    ``[fit, max-fe]``, and a note says so; a space of fixed thresholds only is refused."""
    modes = list(space.dims.get("threshold_mode", []))
    kept = [m for m in modes if m != "fixed"]
    if not kept:
        raise UsageError("the space's threshold_mode is only 'fixed': a fixed raw threshold is a quantile of one "
                         "task's statistics; leave-one-task-out uses fit or max-fe thresholds (threshold_mode: "
                         "[fit, max-fe])")
    if kept == ["max-fe"]:
        kept = ["fit", "max-fe"]
    if kept == modes:
        return space, None
    return Space({**space.dims, "threshold_mode": kept}), (f"threshold_mode {modes} became {kept}: one decision "
                                                           f"for every task, no fixed raw thresholds")


def bm25_baseline(task: str, split: str, pool: int) -> float:
    """nDCG@10 of BM25 alone with pool size ``pool`` on a task's split: the per-task reference of a trial's delta.

    Pinned to the trial's pool because a pool under 10 changes BM25's own nDCG@10, and a reference that moved with
    something other than the system would blur the delta."""
    config = RunConfig(task=task, split=split, retriever="bm25", top_k_retriever=pool, show_progress=False)
    data = score_split(get_task(task), split, config, []).arrays
    outcome = evaluate_split(data, Combination(), DecisionConfig(), pool_k=pool, per_query=False)
    return float(outcome.metrics["nDCG@10"])


@dataclass
class Bm25Reference:
    """BM25 alone on one task's split, computed once per pool size a trial asks for."""

    task: str
    split: str
    values: dict[int, float] = field(default_factory=dict)

    def at(self, pool: int) -> float:
        if pool not in self.values:
            self.values[pool] = bm25_baseline(self.task, self.split, pool)
        return self.values[pool]


def selection_value(deltas: Sequence[float], select: str) -> float:
    """A trial's score from its per-task differences to BM25: the worst one, or their mean."""
    return float(min(deltas)) if select == "worst" else float(np.mean(deltas))


@dataclass
class TaskSource:
    task: str
    setup: SweepSetup
    source: ScoreSource
    bm25: Bm25Reference


def objective_factory(sources: Sequence[TaskSource], space: Space, select: str) -> Callable[[Any], float]:
    import optuna  # lazy: optional: only sweeps and the matrix use it

    def objective(trial: Any) -> float:
        params = suggest(trial, sources[0].setup, space)
        per_task: dict[str, dict[str, Any]] = {}
        item = sources[0]
        try:
            for item in sources:
                config = config_for(params, item.setup, item.source)
                metrics = evaluate_config(config, item.source).metrics
                bm25 = item.bm25.at(config.top_k_retriever)
                per_task[item.task] = {"nDCG@10": metrics.get("nDCG@10"), "bm25": bm25, "pool": config.top_k_retriever,
                                       "delta": float(metrics.get("nDCG@10") or 0.0) - bm25,
                                       "false_evidence_rate": metrics.get("false_evidence_rate"),
                                       "answer_rate_has_evidence": metrics.get("answer_rate_has_evidence")}
        except UsageError as exc:  # this configuration cannot run on this task: say which
            trial.set_user_attr("invalid", f"task {item.task}: {exc}")
            raise optuna.TrialPruned(str(exc)) from None
        violation = max(constraint_violation(p["false_evidence_rate"], sources[0].setup.max_fe)
                        for p in per_task.values())
        trial.set_user_attr("constraint", violation)
        if hasattr(trial, "set_constraint"):
            trial.set_constraint("false_evidence_rate", violation)
        trial.set_user_attr("per_task", per_task)
        task_free = config_for(params, sources[0].setup, sources[0].source).to_file_dict()
        trial.set_user_attr("config", {k: v for k, v in task_free.items() if k not in ("task", "split")})
        return selection_value([p["delta"] for p in per_task.values()], select)

    return objective


def pick(rows: Sequence[dict[str, Any]], max_fe: float) -> dict[str, Any] | None:
    """The best trial whose FE rate is within the budget on every selection task (ties: the lower trial number)."""
    ok = [r for r in rows if all(feasible(p["false_evidence_rate"], max_fe) for p in r["per_task"].values())]
    return max(ok, key=lambda r: (r["value"], -r["number"])) if ok else None


def run_loto(tasks: Sequence[str], holdout: str, select: str, base: SweepSetup, space: Space, output: Path,
             trials: int, sampler: str, storage_url: str | None, fill_hint: Callable[[str], str]) -> dict[str, Any]:
    """Select on every task but ``holdout``, then confirm on each one's dev_final and evaluate on the held-out task;
    writes ``loto.json`` (and the selected configuration as ``best.yaml``) under ``output``."""
    import optuna  # lazy: optional: only sweeps and the matrix use it
    from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

    selection = check_loto(tasks, holdout, select, space)
    space, note = task_free_space(space)
    sources = []
    for task in selection:
        setup = replace(base, task=task)
        setup.validate()
        source = ScoreSource(setup, space)
        missing = source.missing()
        if missing:
            raise UsageError(f"task {task!r}: reranker {missing[0][0]!r} lacks {missing[0][2]} of the "
                             f"{missing[0][3]} cached scores this space needs; fill them first: {fill_hint(task)}")
        sources.append(TaskSource(task, setup, source, Bm25Reference(task, setup.split)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    output.mkdir(parents=True, exist_ok=True)
    identity = {"tasks": list(selection), "holdout": holdout, "select": select,
                **{k: v for k, v in base.identity(space).items() if k != "task"}}
    storage = open_storage(storage_url, output / "study.sqlite")
    study = optuna.create_study(study_name="loto-" + canonical_hash(identity)[:12], storage=storage,
                                direction="maximize", load_if_exists=True,
                                sampler=make_sampler(sampler, base.seed, constraints_func=constraints))
    study.set_user_attr("setup", identity)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if trials > done:
        study.optimize(objective_factory(sources, space, select), n_trials=trials - done)
    rows = [{"number": t.number, "value": float(t.value or 0.0), "per_task": t.user_attrs["per_task"],
             "config": t.user_attrs["config"]}
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = pick(rows, base.max_fe)
    body: dict[str, Any] = {"selection_tasks": list(selection), "holdout_task": holdout, "select": select,
                            "max_fe": base.max_fe, "split": base.split, "trials": len(rows), "best": best,
                            "space_note": note}
    if best is None:
        invalid = [t.user_attrs["invalid"] for t in study.get_trials(deepcopy=False) if "invalid" in t.user_attrs]
        if not rows and invalid:
            body["reason"] = f"no trial could be evaluated on every selection task (e.g. {invalid[-1]})"
            atomic_write_text(output / LOTO_FILE, strict_json_dumps(body))
            raise UsageError(f"leave-one-task-out: {body['reason']}")
        body["reason"] = (f"no completed trial has a false-evidence rate <= {base.max_fe:g} on every selection "
                          f"task")
        atomic_write_text(output / LOTO_FILE, strict_json_dumps(body))
        return body
    chosen = best_config_file(best["config"], base.split, base.max_fe)
    atomic_write_text(output / "best.yaml", strict_json_dumps(chosen))
    body["confirm"] = {}
    for task in [*selection, holdout]:
        config = RunConfig.from_mapping({**chosen, "task": task, "split": CONFIRM_SPLIT, "cache_dir": base.cache_dir,
                                         "show_progress": False,
                                         "output": str(output / "confirm" / Path(task).name)}, "best.yaml")
        record = execute(config)
        body["confirm"][task] = {"held_out": task == holdout, "output": record["output_dir"],
                                 **{k: record["metrics"].get(k) for k in ("nDCG@10", "false_evidence_rate",
                                                                          "answer_rate_has_evidence")},
                                 "bm25": bm25_baseline(task, CONFIRM_SPLIT, config.top_k_retriever),
                                 "pool": config.top_k_retriever}
        confirm = body["confirm"][task]
        confirm["delta"] = None if confirm["nDCG@10"] is None else float(confirm["nDCG@10"]) - confirm["bm25"]
        fe = confirm["false_evidence_rate"]
        confirm["within_budget"] = fe is not None and not math.isnan(fe) and feasible(fe, base.max_fe)
    atomic_write_text(output / LOTO_FILE, strict_json_dumps(body))
    return body


def summary(body: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    if body.get("best") is None:
        return f"leave-one-task-out: {body.get('reason', 'no selection')}"
    best = body["best"]
    lines = [f"leave-one-task-out: selected trial {best['number']} by the {body['select']} per-task delta to BM25 "
             f"({best['value']:+.4f}) on {', '.join(body['selection_tasks'])} ({body['split']}, FE <= "
             f"{body['max_fe']:g} on each)"]
    for task, c in body["confirm"].items():
        role = "held out" if c["held_out"] else "selection task, confirmed"
        delta = "-" if c["delta"] is None else f"{c['delta']:+.4f}"
        lines.append(f"  {task} {CONFIRM_SPLIT} ({role}): nDCG@10 {c['nDCG@10']:.4f} (BM25 at pool {c['pool']} "
                     f"{c['bm25']:.4f}, "
                     f"{delta}); FE {c['false_evidence_rate']}; within budget: {c['within_budget']}")
    return "\n".join(lines)
