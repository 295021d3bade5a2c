"""``rrbench sweep`` (Tier A over cached scores), ``rrbench sweep fill`` and ``rrbench plot reliability``."""

from __future__ import annotations

import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import click

from rrbench.hpo.fill_workers import cpu_cores, plan_workers, resolve_devices, run_workers
from rrbench.hpo.plots import reliability_png
from rrbench.hpo.space import load_space
from rrbench.hpo.sweep import (
    FE_CONFIDENCE,
    ScoreSource,
    SweepSetup,
    completed_rows,
    objective_factory,
    open_study,
    run_trials,
    shortfall_note,
)
from rrbench.hpo.sweep_report import write_reports
from rrbench.hpo.sweep_tasks import run_loto
from rrbench.hpo.sweep_tasks import summary as loto_summary
from rrbench.pipeline.fill_queue import DEFAULT_UNIT_PAIRS
from rrbench.pipeline.score_cache import set_worker_label
from rrbench.records.record import load_record
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.progress import set_quiet


def sweep_options(command: Any, search: bool = True) -> Any:
    """The options ``sweep`` and ``sweep fill`` share (fill must see exactly the space the sweep will ask for);
    ``search``: also the budget and the seed, which only the search reads."""
    options = [
        click.option("--task", default="scifact-evidence", show_default=True, help="Task id or directory."),
        click.option("--split", default="dev_select", show_default=True, help="Split the trials are scored on."),
        click.option("--retriever", "retrievers", multiple=True, default=("bm25",), show_default=True,
                     help="Retriever; repeat for fusion dimensions."),
        click.option("--reranker", "rerankers", multiple=True,
                     help="Reranker (id, hub id or local checkpoint); repeat for ensembles."),
        click.option("--space", "space_file", default=None, help="space.yaml (default: every dimension, "
                                                                  "documented in docs/sweep.md)."),
        click.option("--context", "contexts", multiple=True, type=int, help="Context windows (default 0)."),
        *([click.option("--max-fe", "max_fe", default=0.1, show_default=True, type=float,
                        help="False-evidence budget: the constraint FE rate <= max-fe."),
           click.option("--fe-confidence", "fe_confidence", default=FE_CONFIDENCE, show_default=True, type=float,
                        help="Judge the budget on the upper end of the FE rate's Wilson interval at this confidence "
                             "(0: the rate itself)."),
           click.option("--seed", default=13, show_default=True, type=int, help="Sampler seed and cross-fit folds.")]
          if search else []),
        click.option("--batch-size", default=32, show_default=True, type=int),
        click.option("--device", default=None),
        click.option("--dtype", default="float32", show_default=True,
                     type=click.Choice(["float32", "bfloat16", "float16", "int8"])),
        click.option("--trust-remote-code", is_flag=True),
        click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE",
                     help="Score store: a cache folder, or a postgresql:// URL shared by many machines."),
        click.option("--quiet", is_flag=True, help="No progress bars (nor, off a terminal, progress lines)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def fill_options(command: Any) -> Any:
    """``sweep fill``'s options: the space and its components, not the budget or the sampler's seed."""
    return sweep_options(command, search=False)


def _setup(task: str, split: str, retrievers: tuple[str, ...], rerankers: tuple[str, ...], space_file: str | None,
           contexts: tuple[int, ...], batch_size: int, device: str | None, dtype: str, trust_remote_code: bool,
           cache_dir: str | None, quiet: bool, max_fe: float = SweepSetup.max_fe,
           fe_confidence: float = FE_CONFIDENCE, seed: int = SweepSetup.seed) -> Any:
    if quiet:
        set_quiet()

    setup = SweepSetup(task=task, split=split, retrievers=tuple(retrievers), rerankers=tuple(rerankers),
                       max_fe=max_fe, fe_confidence=fe_confidence, seed=seed, context=tuple(contexts) or (0,), batch_size=batch_size,
                       device=device, dtype=dtype, cache_dir=cache_dir,
                       reranker_options={"trust_remote_code": True} if trust_remote_code else {},
                       show_progress=False if quiet else None)
    setup.validate()
    space = load_space(space_file, list(rerankers))
    return setup, space


def _fill_command(args: dict[str, Any]) -> str:
    parts = ["rrbench", "sweep", "fill", "--task", args["task"], "--split", args["split"]]
    for r in args["retrievers"]:
        parts += ["--retriever", r]
    for r in args["rerankers"]:
        parts += ["--reranker", r]
    if args.get("space_file"):
        parts += ["--space", args["space_file"]]
    for c in args.get("contexts") or ():
        parts += ["--context", str(c)]
    return shlex.join(parts)


@click.group("sweep", invoke_without_command=True)
@sweep_options
@click.option("--trials", default=200, show_default=True, type=int,
              help="Completed trials in total (re-running resumes and counts what the study has).")
@click.option("--sampler", default="tpe", show_default=True, type=click.Choice(["tpe", "nsga2", "random"]))
@click.option("--storage", default=None, help="Optuna storage URL (default: sqlite:///OUTPUT/study.sqlite).")
@click.option("--output", default=None, help="Folder for study.sqlite, best.json, best.yaml, pareto.png.")
@click.option("--tasks", "tasks_text", default=None,
              help="Leave-one-task-out: comma-separated tasks A,B,C (with --holdout-task; replaces --task).")
@click.option("--holdout-task", "holdout", default=None, help="The task of --tasks the selection never sees.")
@click.option("--select", default="worst", show_default=True, type=click.Choice(["worst", "mean"]),
              help="Leave-one-task-out: score a trial by its worst per-task delta to BM25, or the mean.")
@click.pass_context
def sweep(ctx: click.Context, trials: int, sampler: str, storage: str | None, output: str | None,
          tasks_text: str | None, holdout: str | None, select: str, **args: Any) -> None:
    """Tier A: search inference settings over cached scores (no model call), nDCG@10 s.t. FE <= --max-fe."""
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        raise UsageError("--output DIR is required (the study and its reports live there)")
    if trials < 1:
        raise UsageError(f"--trials must be >= 1, got {trials}")
    if (tasks_text is None) != (holdout is None):
        raise UsageError("--tasks and --holdout-task go together (leave-one-task-out selection)")
    if tasks_text is not None:
        setup, space = _setup(**args)
        body = run_loto([t.strip() for t in tasks_text.split(",") if t.strip()], str(holdout), select, setup,
                        space, Path(output), trials, sampler, storage,
                        lambda task: _fill_command({**args, "task": task}))
        click.echo(loto_summary(body))
        return

    setup, space = _setup(**args)
    source = ScoreSource(setup, space)
    missing = source.missing()
    if missing:
        name, variant, lacking, needed = missing[0]
        setting = f"max_length={variant[0]}" if variant[0] else "default settings"
        raise UsageError(f"reranker {name!r} ({setting}) lacks {lacking} of the {needed} cached scores this "
                         f"space needs; fill them first: {_fill_command(args)}")
    started = time.perf_counter()
    folder = Path(output)
    fresh = not folder.exists()
    study = None
    try:
        study = open_study(setup, space, folder, storage, sampler)
        short = run_trials(study, objective_factory(setup, space, source), trials,
                           None if not args["quiet"] else False, shared=storage is not None)
    except BaseException:
        # before its first completed trial a sweep has nothing a resume needs: leave no folder behind
        if fresh and (study is None or not completed_rows(study)):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    report = write_reports(study, setup, space, source, Path(output), time.perf_counter() - started)
    click.echo(report["summary"])
    note = shortfall_note(study, short)
    if note:
        click.echo(f"warning: {note}", err=True)


@sweep.command("fill")
@fill_options
@click.option("--workers", default=1, show_default=True, type=int,
              help="Worker processes on this machine sharing the store's fill queue (CPU: cores split between them).")
@click.option("--devices", default=None,
              help="One worker process per device: cuda:0,cuda:1,... or auto (every visible GPU).")
@click.option("--threads", default=None, type=int, help="Torch threads of each worker (default: cores / workers).")
@click.option("--unit-pairs", default=None, type=int,
              help=f"Pairs per fill unit: the grain workers share, and what a killed worker can lose "
                   f"[default: {DEFAULT_UNIT_PAIRS}, or $RRBENCH_FILL_UNIT_PAIRS].")
@click.option("--queue/--no-queue", default=None, hidden=True,
              help="Fill through the store's queue (default: when the store is shared; workers always do).")
def fill(workers: int, devices: str | None, threads: int | None, unit_pairs: int | None, queue: bool | None,
         **args: Any) -> None:
    """Score, once, exactly the (query, candidate) pairs a sweep's space needs (progress bar; resumable)."""

    set_worker_label("sweep fill")

    names = resolve_devices(devices)
    if workers > 1 or names:
        plans = plan_workers(workers, names, threads, cpu_cores())
        _setup(**args)  # a bad option fails here, once, not in every worker
        argv = _fill_argv(args, unit_pairs)
        click.echo(f"starting {len(plans)} fill workers ({plans[0].threads} thread(s) each)"
                   + (f" on {', '.join(names)}" if names else f" on {cpu_cores()} cores"))
        code = run_workers(plans, argv)
        if code:
            error = UsageError if code == 2 else RRBenchError
            raise error(f"a fill worker failed (exit {code}); its message is above; start `rrbench sweep fill` "
                        f"again to finish: done units are kept")
        return
    if threads is not None:
        if threads < 1:
            raise UsageError(f"--threads must be >= 1, got {threads}")
        import torch  # lazy: setting the thread count needs torch, which the CLI imports only when a command needs it

        torch.set_num_threads(threads)
    setup, space = _setup(**args)
    source = ScoreSource(setup, space)
    done = source.fill(progress=False if args["quiet"] else None, queue=queue, unit_pairs=unit_pairs)
    for name, count in done.items():
        click.echo(f"{name}: {count} pairs scored" + (" (all were cached)" if count == 0 else ""))


def _fill_argv(args: dict[str, Any], unit_pairs: int | None) -> list[str]:
    """The command line of one fill worker (``--threads`` and ``--device`` are added per worker)."""
    argv = ["sweep", "fill", "--task", args["task"], "--split", args["split"], "--batch-size",
            str(args["batch_size"]), "--dtype", args["dtype"], "--queue", "--quiet"]
    if unit_pairs is not None:
        argv += ["--unit-pairs", str(unit_pairs)]
    for flag, values in (("--retriever", args["retrievers"]), ("--reranker", args["rerankers"]),
                         ("--context", [str(c) for c in args.get("contexts") or ()])):
        for value in values:
            argv += [flag, value]
    if args.get("space_file"):
        argv += ["--space", args["space_file"]]
    if args.get("device"):
        argv += ["--device", args["device"]]
    if args.get("trust_remote_code"):
        argv.append("--trust-remote-code")
    if args.get("cache_dir"):
        argv += ["--cache-dir", args["cache_dir"]]
    return argv


@click.group("plot")
def plot() -> None:
    """Figures from result records."""


@plot.command("reliability")
@click.argument("run_dir")
@click.option("--output", default=None, help="PNG path (default: RUN_DIR/reliability.png).")
def reliability(run_dir: str, output: str | None) -> None:
    """Reliability diagram of a run whose decision has probabilities (a calibrator, or probability scores)."""

    record = load_record(run_dir)
    decision = record.decision
    bins = decision.reliability if decision is not None else None
    if not bins:
        raise UsageError(f"{run_dir}: the record has no probabilities (pass --calibrator, or use a reranker "
                         f"with probability scores)")
    target = Path(output) if output else Path(run_dir) / "reliability.png"
    claims = record.run_claims
    calibrator = claims.decision.calibrator.id if claims.decision.calibrator else "none"
    title = f"{record.system} on {claims.task.id} {claims.split}; calibrator {calibrator}"
    reliability_png(target, bins, title, record.metrics.get("ece"))
    click.echo(f"wrote {target}")
