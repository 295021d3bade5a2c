"""The matrix after Tier B: score exports, finalists, Tier A per finalist, Tier C (seeds, folds), confirmation and
transfer.

Tier B ranks training configurations on the selection split; what a user finally deploys is a trained model *and*
its inference settings, confirmed on a split nothing was selected on. So once every cell is finished, a worker
carries on here:

1. **exports**: every cell's model scores the splits listed under ``exports:`` (``reranker_scores/CELL/SPLIT/``, an
   ordinary run record whose ``run.trec`` holds the scores), because scores travel between machines only as files;
2. **finalists**: the ``tier_c.finalists`` best cells by selection-split nDCG@10 (ties: the cell key);
3. **Tier A**: an ``rrbench sweep`` per finalist over its cached scores (``hpo/tier-a/CELL/``; its study lives in the
   shared storage when one is given), whose best feasible configuration becomes the finalist's *selected
   configuration* (``train_runs/CELL/selected.json``);
4. **Tier C**: the finalist's best Tier B parameters retrained with every further seed and, with ``folds: K``, on
   each grouped fold's remainder of the training split. These trainings are trials of one Optuna study per
   finalist (``NAME:tier-c:CELL``, parameter sets enqueued), so any number of workers share them with heartbeats
   and retries exactly as in Tier B;
5. **confirmation**: each seed's model with the selected configuration on the selection and confirmation splits,
   each fold's model on its held-out fold, and the baselines on the confirmation split;
6. **transfer**: each finalist's model and settings, unchanged (same checkpoint, same configuration; the decision
   is refitted on the target's dev_select as the configuration prescribes), on every transfer task, beside BM25
   there; and the decision itself transferred: fitted on the matrix task's dev_select and applied on the transfer
   split (:mod:`rrbench.hpo.transfer`: FE with Wilson bounds, answer rate, shift warnings).

Every step writes its result atomically and last, and is skipped when that result exists: a re-run, or another
worker, continues where the work stopped. No step reads another worker's score cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrbench.hpo.matrix_tier_b import NotEnqueued, _system_attrs, run_study, train_options
from rrbench.hpo.space import parse_space
from rrbench.hpo.sweep import (
    CROSS_FIT_FOLDS,
    ScoreSource,
    SweepSetup,
    objective_factory,
    open_study,
    run_trials,
    shortfall_note,
)
from rrbench.hpo.sweep_report import best_config_file, write_reports
from rrbench.hpo.transfer import load_splits, transfer_table
from rrbench.measures.significance import mean_std
from rrbench.pipeline.runner import RunConfig, execute
from rrbench.tasks.resolve import fold_split
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, canonical_hash, read_json, strict_json_dumps
from rrbench.util.text import slug

if TYPE_CHECKING:
    import optuna

    from rrbench.hpo.matrix import Cell, Plan, TransferTask
    from rrbench.hpo.matrix_tier_b import Trainer
    from rrbench.pipeline.runner import RunConfig

CELL_FILE = "cell.json"
SELECTED_FILE = "selected.json"
TIER_C_FILE = "tier_c.json"


def _read_json(path: Path) -> dict[str, Any]:
    return read_json(path)


def cell_info(output: Path, cell: Cell) -> dict[str, Any] | None:
    path = output / "train_runs" / cell.key / CELL_FILE
    return _read_json(path) if path.is_file() else None


def cell_model(output: Path, cell: Cell) -> str:
    """The checkpoint a finished cell stands for (its base model when it trains nothing)."""
    model = output / "train_runs" / cell.key / "model"
    return str(model) if model.is_dir() else cell.M


def generator_options(generator: str) -> dict[str, Any]:
    """``rrbench run`` options of a generator factor value (``a+b`` fuses with RRF)."""
    parts = generator.split("+")
    if len(parts) == 1:
        return {"retriever": parts[0], "fusion": None}
    return {"retriever": tuple(parts), "fusion": "rrf"}


def run_record(config: RunConfig, target: Path) -> dict[str, Any]:
    """``rrbench run`` into ``target`` once; later calls (any worker) read the record already there."""

    if (target / "results.json").is_file():
        return _read_json(target / "results.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return execute(replace(config, output=str(target)))  # progress bars in a terminal only
    except UsageError:
        if (target / "results.json").is_file():  # another worker wrote it first
            return _read_json(target / "results.json")
        raise


# -- 1. exports ------------------------------------------------------------------------------------------------------
def export_scores(plan: Plan, cell: Cell, output: Path, cache_dir: str | None,
                  splits: Sequence[str] | None = None) -> None:
    """Each finished cell's scores on the ``exports:`` splits, as run records under ``reranker_scores/``."""

    model = cell_model(output, cell)
    for split in plan.spec.exports if splits is None else splits:
        config = RunConfig(task=plan.spec.task, split=split, reranker=model, top_k_retriever=1000,
                           top_k_rerank=1000, cache_dir=cache_dir, seed=plan.spec.seeds[0],
                           **generator_options(cell.G))
        run_record(config, output / "reranker_scores" / cell.key / split)


# -- 2. finalists ----------------------------------------------------------------------------------------------------
def ranked_cells(plan: Plan, output: Path) -> list[tuple[Cell, dict[str, Any]]]:
    """Finished cells with a selection-split result, best first (nDCG@10, then the key, so every worker agrees)."""
    rows = []
    for cell in plan.cells:
        info = cell_info(output, cell)
        value = (info or {}).get("dev_select", {}) or {}
        if isinstance(value.get("nDCG@10"), float) and math.isfinite(value["nDCG@10"]):
            rows.append((cell, info or {}))
    return sorted(rows, key=lambda row: (-row[1]["dev_select"]["nDCG@10"], row[0].key))


def finalists(plan: Plan, output: Path) -> list[Cell]:
    return [cell for cell, _ in ranked_cells(plan, output)[:plan.spec.budgets.tier_c.finalists]]


# -- 3. Tier A -------------------------------------------------------------------------------------------------------
def plain_configuration(plan: Plan, cell: Cell, model: str) -> dict[str, Any]:
    """The configuration a finalist has without a Tier A sweep: its generator, its model, the natural decision."""

    config = RunConfig(task=plan.spec.task, reranker=model, top_k_retriever=100, top_k_rerank=100,
                       seed=plan.spec.seeds[0], **generator_options(cell.G))
    return config.to_file_dict()


def tier_a(plan: Plan, cell: Cell, output: Path, storage_url: str | None, cache_dir: str | None,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Sweep the finalist's inference settings on the selection split; returns (and stores) its selected
    configuration. Without a Tier A budget, or when no trial meets the false-evidence budget, it is the plain
    configuration, and ``selected.json`` says why."""
    target = output / "train_runs" / cell.key / SELECTED_FILE
    if target.is_file():
        return _read_json(target)
    model = cell_model(output, cell)
    budget = plan.spec.budgets.tier_a
    body: dict[str, Any] = {"cell": cell.key, "model": model, "tier_a": None}
    config = plain_configuration(plan, cell, model)
    if budget.trials:
        generators = tuple(cell.G.split("+"))
        setup = SweepSetup(task=plan.spec.task, split="dev_select", retrievers=generators, rerankers=(model,),
                           max_fe=budget.max_fe if budget.max_fe is not None else SweepSetup.max_fe,
                           seed=plan.spec.seeds[0], cache_dir=cache_dir, show_progress=False)
        setup.validate()
        space = parse_space(budget.space, [model], where=f"{plan.path}: budgets.tier_a.space")
        source = ScoreSource(setup, space)
        log(f"tier A {cell.key}: scoring what the sweep needs (through the score store)")
        source.fill(progress=None)
        sweep_dir = output / "hpo" / "tier-a" / cell.key
        # the matrix's own storage (never a per-folder default, which assumes a single process)
        url = storage_url or f"sqlite:///{(output / 'hpo' / 'studies.sqlite').resolve()}"
        study = open_study(setup, space, sweep_dir, url, budget.sampler)
        missing = run_trials(study, objective_factory(setup, space, source), budget.trials, False, shared=True)
        note = shortfall_note(study, missing)
        if note:
            log(f"tier A {cell.key}: {note}")
        report = write_reports(study, setup, space, source, sweep_dir, 0.0)
        best = report["best"]
        body["tier_a"] = {"folder": str(sweep_dir), "trials": budget.trials, "max_fe": setup.max_fe,
                          "feasible": best["feasible"], "best": best}
        if best["feasible"]:
            config = best_config_file(best["config"], "dev_select")
        else:
            body["note"] = f"Tier A found no feasible configuration ({best['reason']}); the plain one is kept"
        log(f"tier A {cell.key}: " + report["summary"].splitlines()[-2 if best["feasible"] else -1])
    config.pop("output", None)
    config.pop("split", None)
    body["config"] = config
    atomic_write_text(target, strict_json_dumps(body))
    return body


def selected_run(plan: Plan, selected: dict[str, Any], split: str, model: str | None = None,
                 cache_dir: str | None = None, task: str | None = None, **changes: Any) -> RunConfig:
    """The finalist's selected configuration on another split (and, for Tier C and transfer, another model/task).
    A fit on the evaluation split itself becomes the sweep's cross-fit, as Tier A measured it."""

    values = dict(selected["config"])
    values.update(split=split, cache_dir=cache_dir, show_progress=None)
    if model is not None:
        values["reranker"] = model
    if task is not None:
        values["task"] = task
    values.update(changes)
    if values.get("calibrate_on") == split:
        # Tier A fitted its calibrator/threshold on dev_select by cross-fitting; evaluating there again must do the
        # same, or the fit would see the very queries it is scored on (refused by the decision stage)

        measured = ((selected.get("tier_a") or {}).get("best") or {}).get("config") or {}
        values.update(calibrate_on=None, cross_fit=measured.get("cross_fit") or CROSS_FIT_FOLDS)
    return RunConfig.from_mapping(values, f"{plan.path}: selected configuration")


# -- 4. Tier C -------------------------------------------------------------------------------------------------------
def tier_c_units(plan: Plan) -> list[str]:
    """What each finalist is retrained as: ``seed-S`` for every further seed, ``fold-I-of-K`` per fold."""
    units = [f"seed-{s}" for s in plan.spec.seeds[1:]]
    k = plan.spec.budgets.tier_c.folds
    units += [f"fold-{i}-of-{k}" for i in range(1, k + 1)] if k else []
    return units


def _unit_options(plan: Plan, cell: Cell, unit: str, params: dict[str, Any], folder: Path) -> dict[str, Any]:
    values = train_options(cell, plan.spec, params, folder)
    values["regime"] = cell.R
    kind, _, rest = unit.partition("-")
    if kind == "seed":
        values["seed"] = int(rest)
    else:
        index, _, k = rest.partition("-of-")
        values["train_split"] = fold_split("train", "rest", int(index), int(k))
        values["eval_split"] = fold_split("train", "fold", int(index), int(k))
    return values


def unit_model(output: Path, cell: Cell, unit: str) -> Path:
    return output / "hpo" / "tier-c" / cell.key / unit


def tier_c_study(plan: Plan, cell: Cell, storage: Any, storage_label: str) -> optuna.Study:
    """One study per finalist whose enqueued trials are its retrainings (shared by all workers)."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    name = f"{plan.spec.name}:tier-c:{cell.key}"
    identity = canonical_hash({"units": tier_c_units(plan), "seeds": plan.spec.seeds})[:16]
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    pruner=optuna.pruners.NopPruner())
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=name, pruner=optuna.pruners.NopPruner())
        stored = study.user_attrs.get("units")
        if stored is not None and stored != identity:
            raise UsageError(f"study {name!r} in {storage_label} was made for other seeds or folds; rename the "
                             f"matrix ('name:') or pass another --storage/--output") from None
        return study
    for unit in tier_c_units(plan):
        study.enqueue_trial({"unit": unit})
    study.set_user_attr("units", identity)
    return study


def tier_c_objective(plan: Plan, cell: Cell, params: dict[str, Any], output: Path,
                     trainer: Trainer) -> Callable[[optuna.Trial], float]:
    units = tier_c_units(plan)

    def objective(trial: optuna.Trial) -> float:
        if "fixed_params" not in _system_attrs(trial):
            raise NotEnqueued("every Tier C retraining is taken")
        unit = trial.suggest_categorical("unit", units)
        folder = unit_model(output, cell, unit)
        summary = trainer(_unit_options(plan, cell, unit, params, folder), lambda value: None)
        value = summary["eval"]["nDCG@10"]
        if value is None or not math.isfinite(float(value)):
            raise UsageError(f"cell {cell.key}: Tier C {unit} produced no finite nDCG@10")
        trial.set_user_attr("output", str(folder))
        trial.set_user_attr("eval", summary["eval"])
        return float(value)

    return objective


def tier_c(plan: Plan, cell: Cell, output: Path, storage: Any, storage_label: str, trainer: Trainer,
           selected: dict[str, Any], cache_dir: str | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Retrain the finalist per seed and fold, then evaluate every model with the selected configuration."""

    target = output / "train_runs" / cell.key / TIER_C_FILE
    if target.is_file():
        return _read_json(target)
    info = cell_info(output, cell) or {}
    units = tier_c_units(plan) if cell.shape != "none" else []
    if units:
        study = tier_c_study(plan, cell, storage, storage_label)
        log(f"tier C {cell.key}: {len(units)} retrainings ({', '.join(units)})")
        run_study(study, tier_c_objective(plan, cell, dict(info.get("best_params") or {}), output, trainer),
                  len(units), sample=False)
        trained = {t.params["unit"]: t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
        missing = [u for u in units if u not in trained]
        if missing:
            raise UsageError(f"cell {cell.key}: Tier C retrainings {', '.join(missing)} failed; see "
                             f"`rrbench matrix status` and run again")
    confirm = plan.spec.budgets.tier_c.confirm_on
    base_model = cell_model(output, cell)
    seeds: dict[str, dict[str, Any]] = {}
    for seed, model in [(plan.spec.seeds[0], base_model)] + [
            (int(u[5:]), str(unit_model(output, cell, u))) for u in units if u.startswith("seed-")]:
        row = {}
        for split in ("dev_select", confirm):
            record = run_record(selected_run(plan, selected, split, model, cache_dir),
                                output / "leaderboards" / cell.key / f"seed-{seed}" / split)
            row[split] = headline(record)
        seeds[str(seed)] = row
    if selected.get("tier_a"):  # the Tier A lever: the same model with the plain configuration
        plain = {"config": plain_configuration(plan, cell, base_model)}
        run_record(selected_run(plan, plain, confirm, cache_dir=cache_dir),
                   output / "leaderboards" / cell.key / "plain" / confirm)
    folds: dict[str, dict[str, Any]] = {}
    for unit in (u for u in units if u.startswith("fold-")):
        index, _, k = unit[5:].partition("-of-")
        held_out = fold_split("train", "fold", int(index), int(k))
        record = run_record(selected_run(plan, selected, held_out, str(unit_model(output, cell, unit)), cache_dir),
                            output / "leaderboards" / cell.key / unit)
        folds[unit] = headline(record)
    body: dict[str, Any] = {"cell": cell.key, "confirm_on": confirm, "seeds": seeds, "folds": folds}
    for split in ("dev_select", confirm):
        values = [row[split]["nDCG@10"] for row in seeds.values()]
        body[f"{split}_nDCG@10_mean_std"] = list(mean_std(values))
    if folds:
        body["folds_nDCG@10_mean_std"] = list(mean_std([row["nDCG@10"] for row in folds.values()]))
    atomic_write_text(target, strict_json_dumps(body))
    return body


def headline(record: dict[str, Any]) -> dict[str, Any]:
    """The metrics a matrix shows of a run record."""
    metrics = record["metrics"]
    return {k: metrics.get(k) for k in ("nDCG@10", "RR@10", "R@10", "false_evidence_rate",
                                         "answer_rate_has_evidence")}


# -- 5. baselines and 6. transfer ------------------------------------------------------------------------------------
TRANSFER_FIT_SPLIT = "dev_select"
DECISION_TRANSFER_FILE = "decision_transfer.json"


def baselines(plan: Plan, output: Path, cache_dir: str | None) -> dict[str, dict[str, Any]]:
    """Each baseline on the confirmation split (``leaderboards/baselines/NAME/SPLIT``)."""

    confirm = plan.spec.budgets.tier_c.confirm_on
    out = {}
    for name, options in plan.spec.baseline_configs().items():
        config = RunConfig.from_mapping({**options, "task": plan.spec.task, "split": confirm,
                                         "cache_dir": cache_dir, "seed": plan.spec.seeds[0]},
                                        f"{plan.path}: baselines.{name}")
        out[name] = headline(run_record(config, output / "leaderboards" / "baselines" / slug(name) / confirm))
    return out


def transfer(plan: Plan, cell: Cell, selected: dict[str, Any], output: Path, target: TransferTask,
             cache_dir: str | None) -> dict[str, Any]:
    """The finalist unchanged on another task (its own generator there if given), and BM25 there."""

    folder = output / "leaderboards" / "transfer" / slug(target.task)
    changes: dict[str, Any] = {"top_k_retriever": target.top_k, "top_k_rerank": target.top_k}
    if target.G:
        changes.update(generator_options(target.G))
    system = run_record(selected_run(plan, selected, target.split, cache_dir=cache_dir, task=target.task,
                                     **changes), folder / cell.key / target.split)
    bm25 = run_record(RunConfig(task=target.task, split=target.split, retriever="bm25",
                                top_k_retriever=target.top_k, cache_dir=cache_dir),
                      folder / "bm25" / target.split)
    decision = decision_transfer(plan, cell, selected, folder / cell.key / target.split, target, changes, cache_dir)
    return {"task": target.task, "split": target.split, "G": target.G or cell.G, "system": headline(system),
            "bm25": headline(bm25), "decision": decision}


def decision_transfer(plan: Plan, cell: Cell, selected: dict[str, Any], folder: Path, target: TransferTask,
                      changes: dict[str, Any], cache_dir: str | None) -> dict[str, Any] | None:
    """The finalist's decision fitted on the matrix task's dev_select and applied on the transfer split (and the
    target's own dev_select fit as the reference), with the shift warning and the target's label curve (how many
    of its own labelled queries a refit needs), written once to ``decision_transfer.json`` beside its record.
    Skipped when the transfer split is dev_select itself (a fit there would decide the queries it saw)."""
    if target.split == TRANSFER_FIT_SPLIT:
        return None
    file = folder / DECISION_TRANSFER_FILE
    if file.is_file():
        return read_json(file)
    config = selected_run(plan, selected, target.split, cache_dir=cache_dir, task=target.task, **changes)
    budget = plan.spec.budgets.tier_a.max_fe
    tasks = list(dict.fromkeys([plan.spec.task, target.task]))
    splits = load_splits(config, tasks, TRANSFER_FIT_SPLIT, target.split)
    table = transfer_table(config, splits, ("fit", "max-fe"), budget if budget is not None else SweepSetup.max_fe,
                           TRANSFER_FIT_SPLIT, target.split)
    wanted = list(splits)[-1]
    table["cells"] = [c for c in table["cells"] if c["target"] == wanted]
    table["shift"] = [s for s in table["shift"] if s["target"] == wanted]
    table["label_curve"] = {k: v for k, v in table["label_curve"].items() if k.split("|", 1)[1] == wanted}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(file, strict_json_dumps(table))
    return table


def later_tiers(plan: Plan, output: Path, storage: Any, storage_url: str | None, storage_label: str,
                trainer: Trainer, cache_dir: str | None, log: Callable[[str], None],
                resolve_teacher: Callable[[Cell], None] = lambda cell: None) -> None:
    """Steps 1-6 of this module's docstring, each skipped when its result exists. ``storage`` holds the Tier C
    studies; ``storage_url`` (None: a SQLite file per sweep folder) the Tier A ones."""
    for cell in plan.ordered():
        if cell_info(output, cell) is not None:
            export_scores(plan, cell, output, cache_dir)
    chosen = finalists(plan, output)
    if not chosen:
        log("no cell has a selection-split result: no finalists")
        return
    selected = {}
    for cell in chosen:
        log(f"finalist {cell.key} ({cell.label})")
        resolve_teacher(cell)
        selected[cell.key] = tier_a(plan, cell, output, storage_url, cache_dir, log)
        tier_c(plan, cell, output, storage, storage_label, trainer, selected[cell.key], cache_dir, log)
    baselines(plan, output, cache_dir)
    for target in plan.spec.transfers():  # last: on a corpus-scope task it may mean encoding a whole corpus
        log(f"transfer to {target.task} ({target.split})")
        for cell in chosen:
            transfer(plan, cell, selected[cell.key], output, target, cache_dir)
