"""``rrbench matrix run``: a worker that takes cells and trials from the shared study storage until none are left.

Nothing but the study storage and the artifacts folder is shared between workers, so any number of them, on any
machines, can run the same command: each cell's Tier B study hands out trials (Optuna's storage is the queue), a
finished cell is marked by its ``train_runs/<cell>/cell.json`` and never recomputed, and a cell whose dependency
(an R5 teacher cell) is not finished yet is left for a later pass. The score cache is each worker's own unless
``--cache-dir`` names a shared store (PostgreSQL): then every worker reads and writes it, and scores it needs inline
go through the store's fill queue, so no two workers score the same pairs (the report counts them).

Artifact layout under the output folder (the research plan's section 13):

- ``hpo/``: the default SQLite study storage (``studies.sqlite``) and one folder per cell with its trials' runs;
- ``train_runs/<cell>/``: ``cell.json`` (cell, best parameters, value, trial counts) and ``model/`` (best checkpoint);
- ``leaderboards/<cell>/``: the ``rrbench run`` record of the cell's model on the selection split with its generator
  (config, per-query values, run.trec);
- ``reranker_scores/<cell>/<split>/``: each cell's scores on the ``exports:`` splits (run records);
- ``hpo/tier-a/<cell>/``, ``hpo/tier-c/<cell>/``: a finalist's sweep and retrainings; ``train_runs/<cell>/``
  ``selected.json`` and ``tier_c.json``; ``leaderboards/<cell>/seed-S/``, ``leaderboards/baselines/``,
  ``leaderboards/transfer/``: their records (see :mod:`rrbench.hpo.matrix_tiers`);
- ``report.md``, ``report.json``, ``plots/``: the summary (:mod:`rrbench.hpo.matrix_report`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rrbench.hpo.matrix import LAYOUT, Cell, Plan
from rrbench.hpo.matrix_report import worker_label, write_report
from rrbench.hpo.matrix_tier_b import (
    Trainer,
    best_trial,
    cell_counts,
    cell_space,
    objective_for,
    open_cell_study,
    real_trainer,
    run_study,
    study_name,
    tier_b_budget,
)
from rrbench.hpo.matrix_tiers import SELECTED_FILE, TIER_C_FILE, export_scores, finalists, later_tiers
from rrbench.pipeline.runner import RunConfig, execute
from rrbench.pipeline.score_cache import set_worker_label
from rrbench.records.record import load_record
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, atomic_write_text, read_json_object, strict_json_dumps
from rrbench.util.storage import normalise_url, open_storage, redact_url

CELL_FILE = "cell.json"
STORAGE_FILE = "studies.sqlite"


def storage_for(plan: Plan, output: Path, url: str | None, heartbeat: bool = True) -> Any:
    default = output / "hpo" / STORAGE_FILE
    return open_storage(url, default, heartbeat=heartbeat), redact_url(normalise_url(url, default))


def cell_done(output: Path, cell: Cell) -> bool:
    return (output / "train_runs" / cell.key / CELL_FILE).is_file()


def _write_plan(plan: Plan, output: Path) -> None:
    """The plan beside its artifacts; a different matrix in the same folder is refused."""
    summary = {"name": plan.spec.name, "matrix": plan.spec.model_dump(mode="json"),
               "cells": [c.as_dict() for c in plan.cells],
               "skipped": [{"combination": s.combination, "reason": s.reason} for s in plan.skipped]}
    path = output / "matrix.json"
    if path.is_file():
        stored = read_json_object(path)
        if stored.get("name") != plan.spec.name:
            raise UsageError(f"{output} holds matrix {stored.get('name')!r}, not {plan.spec.name!r}; "
                             f"use another --output")
    atomic_write_text(path, strict_json_dumps(summary))


def _evaluate(plan: Plan, cell: Cell, model: str, output: Path, cache_dir: str | None) -> dict[str, Any]:
    """The cell's model with its generator on the selection split, as an ordinary ``rrbench run`` record."""

    target = output / "leaderboards" / cell.key
    if (target / "results.json").is_file():
        return load_record(target).as_json()
    generators = tuple(cell.G.split("+"))
    config = RunConfig(task=plan.spec.task, split="dev_select", retriever=generators[0] if len(generators) == 1
                       else generators, fusion="rrf" if len(generators) > 1 else None, reranker=model,
                       top_k_retriever=100, top_k_rerank=100, output=str(target), show_progress=False,
                       cache_dir=cache_dir, seed=plan.spec.seeds[0])
    try:
        return execute(config)
    except UsageError:
        if (target / "results.json").is_file():  # another worker evaluated the same cell at the same time
            return load_record(target).as_json()
        raise


def teacher_scores(plan: Plan, cell: Cell, teacher_key: str, output: Path, cache_dir: str | None) -> str:
    """An R5 teacher cell's scores on the training split, as the file its student distils from.

    Scores travel between workers only as files (each score cache stays local), so the teacher is the cell's
    ``reranker_scores/<teacher cell>/train`` export, written once by whichever worker gets there first; the student
    reads that record's ``run.trec`` (see :func:`rrbench.training.teacher.recorded_teacher`).
    """

    export_scores(plan, plan.cell(teacher_key), output, cache_dir, splits=("train",))
    return str(output / "reranker_scores" / teacher_key / "train")


def _finish_cell(plan: Plan, cell: Cell, study: Any, output: Path, evaluate: bool, cache_dir: str | None) -> None:
    """Copy the best trial's checkpoint to train_runs/<cell>/model, evaluate it, and write cell.json last."""
    final = output / "train_runs" / cell.key
    best = best_trial(study) if study is not None else None
    info: dict[str, Any] = {"cell": cell.as_dict(), "study": study.study_name if study is not None else None,
                            "trials": cell_counts(study) if study is not None else {}}
    model = cell.M
    if best is not None:
        source = Path(best.user_attrs.get("output", ""))
        info.update(best_trial=best.number, best_value=best.value, best_params=best.params,
                    best_eval=best.user_attrs.get("eval"))
        if source.is_dir() and not (final / "model").is_dir():
            final.mkdir(parents=True, exist_ok=True)
            try:
                with atomic_dir(final / "model") as tmp:
                    shutil.copytree(source, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".checkpoints"))
            except OSError:
                if not (final / "model").is_dir():  # another worker finished it first: fine; else a real error
                    raise
        model = str(final / "model")
    elif study is not None:
        info["note"] = "no trial completed (all pruned or failed)"
    if evaluate and (best is not None or cell.shape == "none"):
        record = _evaluate(plan, cell, model, output, cache_dir)
        info["dev_select"] = {k: record["metrics"].get(k) for k in ("nDCG@10", "RR@10", "R@10",
                                                                    "false_evidence_rate")}
    final.mkdir(parents=True, exist_ok=True)
    atomic_write_text(final / CELL_FILE, strict_json_dumps(info))


def run_matrix(plan: Plan, output: str | Path | None = None, storage_url: str | None = None,
               trainer: Trainer | None = None, evaluate: bool = True, cache_dir: str | None = None,
               poll_s: float = 2.0, log: Callable[[str], None] = print, later: bool = True) -> dict[str, Any]:
    """Work on the matrix until every cell is finished (or blocked), then on the later tiers
    (:mod:`rrbench.hpo.matrix_tiers`, unless ``later`` is false) and the report; returns a status summary."""
    out = plan.output_dir(output)
    for name in LAYOUT:
        (out / name).mkdir(parents=True, exist_ok=True)
    _write_plan(plan, out)
    set_worker_label(worker_label(plan))
    storage, label = storage_for(plan, out, storage_url)
    tier_b = plan.spec.budgets.tier_b
    trainer = trainer or real_trainer(tier_b.evaluations, cache_dir=cache_dir)
    pending = plan.ordered()
    while pending:
        progressed = False
        for cell in list(pending):
            if cell_done(out, cell):
                pending.remove(cell)
                continue
            if any(not cell_done(out, plan.cell(n)) for n in cell.needs if not n.startswith("candidates:")):
                continue  # its teacher is still being trained (here or by another worker)
            log(f"cell {cell.key} ({cell.label})")
            if cell.shape == "none":
                _finish_cell(plan, cell, None, out, evaluate, cache_dir)
            else:
                space = cell_space(cell, plan.spec)
                study = open_cell_study(cell, plan.spec, storage, space, label)
                if cell.teacher and cell.teacher.startswith("cell:"):
                    cell.teacher = teacher_scores(plan, cell, cell.teacher[5:], out, cache_dir)
                objective = objective_for(cell, plan.spec, space, out / "hpo" / cell.key, trainer)
                counts = run_study(study, objective, *tier_b_budget(plan.spec), poll_s=poll_s)
                log(f"cell {cell.key}: {counts['complete']} complete, {counts['pruned']} pruned, "
                    f"{counts['fail']} failed")
                if not cell_done(out, cell):
                    _finish_cell(plan, cell, study, out, evaluate, cache_dir)
            pending.remove(cell)
            progressed = True
        if pending and not progressed:
            time.sleep(poll_s)  # waiting for another worker to finish a dependency
    if evaluate and later:
        def resolve_teacher(cell: Cell) -> None:
            if cell.teacher and cell.teacher.startswith("cell:"):
                cell.teacher = teacher_scores(plan, cell, cell.teacher[5:], out, cache_dir)

        later_tiers(plan, out, storage, storage_url, label, trainer, cache_dir, log, resolve_teacher)
        write_report(plan, out, cache_dir)
    return matrix_status(plan, out, storage_url)


def matrix_status(plan: Plan, output: str | Path | None = None, storage_url: str | None = None) -> dict[str, Any]:
    """Per cell: done / running / failed / pending, trial counts and the best value so far."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    out = plan.output_dir(output)
    default = out / "hpo" / STORAGE_FILE
    storage = None
    if storage_url or default.is_file():
        storage, _ = storage_for(plan, out, storage_url, heartbeat=False)
    rows = []
    for cell in plan.ordered():
        row: dict[str, Any] = {**cell.as_dict(), "state": "pending", "trials": {}, "best": None}
        if storage is not None and cell.shape != "none":
            try:
                study = optuna.load_study(study_name=study_name(plan.spec, cell), storage=storage)
            except KeyError:
                study = None
            if study is not None:
                counts = cell_counts(study)
                row["trials"] = counts
                best = best_trial(study)
                row["best"] = best.value if best is not None else None
                if counts["running"] or counts["waiting"]:
                    row["state"] = "running"
                elif counts["fail"] and not (counts["complete"] or counts["pruned"]):
                    row["state"] = "failed"
                elif counts["complete"] or counts["pruned"]:
                    row["state"] = "running"
        if cell_done(out, cell):
            info = read_json_object(out / "train_runs" / cell.key / CELL_FILE)
            row["state"] = "done"
            row["dev_select"] = info.get("dev_select")
            row["best"] = info.get("best_value", row["best"])
        rows.append(row)

    later = [{"key": c.key, "tier_a": (out / "train_runs" / c.key / SELECTED_FILE).is_file(),
              "tier_c": (out / "train_runs" / c.key / TIER_C_FILE).is_file()} for c in finalists(plan, out)
             ] if all(cell_done(out, c) for c in plan.cells) else []  # finalists exist once Tier B is over
    return {"name": plan.spec.name, "output": str(out), "cells": rows, "finalists": later,
            "report": (out / "report.md").is_file(),
            "skipped": [{"combination": s.combination, "reason": s.reason} for s in plan.skipped]}
