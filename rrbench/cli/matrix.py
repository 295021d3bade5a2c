"""``rrbench matrix plan|run|status|report``: the experiment matrix from one file (see docs/matrix.md).

Imports stay light at module level (click only); the plan needs the registry and the task, ``run`` needs torch.
"""

from __future__ import annotations

import json
from typing import Any

import click

from rrbench.cli.output import echo_json
from rrbench.hpo.matrix import build_plan, estimate_cost
from rrbench.hpo.matrix_report import render, write_report
from rrbench.hpo.matrix_run import matrix_status, run_matrix
from rrbench.util.errors import UsageError


def _hours(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _print_skipped(skipped: list[dict[str, Any]]) -> None:
    if not skipped:
        return
    click.echo(f"skipped ({len(skipped)}):")
    for item in skipped:
        combo = " ".join(f"{k}={v}" for k, v in item["combination"].items())
        click.echo(f"  {combo}: {item['reason']}")


@click.group("matrix")
def matrix() -> None:
    """The experiment matrix: plan, run (any number of workers) and follow a research program from one file."""


@matrix.command("plan")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output", default=None, help="Artifacts folder [default: the file's 'output:' or "
                                             "matrix-runs/NAME beside it].")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(file: str, output: str | None, as_json: bool) -> None:
    """Print the cells (keyed by config hash), what each needs first, skipped combinations and a cost estimate."""

    plan = build_plan(file)
    out = plan.output_dir(output)
    cost = estimate_cost(plan)
    skipped = [{"combination": s.combination, "reason": s.reason} for s in plan.skipped]
    if as_json:
        click.echo(json.dumps({"name": plan.spec.name, "output": str(out), "task_data_sha256": plan.task_hash,
                               "cells": [{**c.as_dict(), "estimated_s": cost["per_cell_s"][c.key]}
                                         for c in plan.ordered()],
                               "skipped": skipped, "cost": cost}, indent=2))
        return
    click.echo(f"matrix {plan.spec.name}: {len(plan.cells)} cells, {len(plan.skipped)} skipped; "
               f"task {plan.spec.task}; artifacts in {out}")
    click.echo(f"{'cell':16}  {'G':10} {'M':16} {'R':18} {'L':11} {'N':18} {'shape':12} {'est.':>7}  needs")
    for cell in plan.ordered():
        needs = ", ".join(cell.needs)
        click.echo(f"{cell.key:16}  {cell.G:10} {cell.M:16} {cell.R:18} {cell.L or '-':11} {cell.N or '-':18} "
                   f"{cell.shape:12} {_hours(cost['per_cell_s'][cell.key]):>7}  {needs}")
    _print_skipped(skipped)
    click.echo(f"after Tier B (exports, finalists' Tier A and Tier C, confirmation): "
               f"{_hours(cost['later_s'])}")
    click.echo(f"estimated cost: {_hours(cost['total_s'])} on one worker at {cost['pairs_per_s']:.1f} training "
               f"pairs/s ({cost['source']}); {cost['assumes']}")


@matrix.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--storage", default=None, help="Optuna storage URL shared by all workers "
                                              "[default: sqlite in OUTPUT/hpo/]; see docs/matrix.md.")
@click.option("--output", default=None, help="Artifacts folder shared by all workers.")
@click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE",
              help="Score store: this worker's cache folder, or a postgresql:// URL all workers share.")
@click.option("--no-eval", is_flag=True, help="Train and select only; skip the selection-split run records "
                                              "and everything after Tier B.")
@click.option("--stop-after", type=click.Choice(["tier-b", "report"]), default="report", show_default=True,
              help="tier-b: stop when every cell is trained and evaluated (exports, finalists, Tier A, Tier C, "
                   "transfer and the report are left for a later run).")
def run_command(file: str, storage: str | None, output: str | None, cache_dir: str | None,
                no_eval: bool, stop_after: str) -> None:
    """Work on the matrix until every cell is finished; start as many workers as you like."""

    plan = build_plan(file)
    status = run_matrix(plan, output, storage, evaluate=not no_eval, cache_dir=cache_dir,
                        log=lambda line: click.echo(line, err=True), later=stop_after != "tier-b")
    _print_status(status)


@matrix.command("report")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output", default=None, help="Artifacts folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report's data as JSON.")
@click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE",
              help="The score store the workers shared (a postgresql:// URL adds their scoring counts).")
def report_command(file: str, output: str | None, as_json: bool, cache_dir: str | None) -> None:
    """Write OUTPUT/report.md and report.json from the artifacts (no model is called) and print the report."""

    plan = build_plan(file)
    out = plan.output_dir(output)
    if not (out / "matrix.json").is_file():
        raise UsageError(f"{out} holds no matrix run (no matrix.json); run `rrbench matrix run {file}` first")
    data = write_report(plan, out, cache_dir)
    echo_json(data) if as_json else click.echo(render(data))


@matrix.command("status")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--storage", default=None, help="The storage URL the workers use.")
@click.option("--output", default=None, help="Artifacts folder.")
@click.option("--json", "as_json", is_flag=True)
def status_command(file: str, storage: str | None, output: str | None, as_json: bool) -> None:
    """Show each cell's state (done, running, failed, pending), trial counts and best dev_select nDCG@10."""

    status = matrix_status(build_plan(file), output, storage)
    if as_json:
        echo_json(status)
    else:
        _print_status(status)


def _print_status(status: dict[str, Any]) -> None:
    click.echo(f"matrix {status['name']} ({status['output']})")
    click.echo(f"{'cell':16}  {'R':18} {'L':11} {'N':18} {'state':8} {'complete':>8} {'pruned':>6} {'failed':>6} "
               f"{'best':>7}")
    for row in status["cells"]:
        t = row["trials"]
        best = f"{row['best']:.4f}" if isinstance(row.get("best"), float) else "-"
        click.echo(f"{row['key']:16}  {row['R']:18} {row['L'] or '-':11} {row['N'] or '-':18} {row['state']:8} "
                   f"{t.get('complete', 0):>8} {t.get('pruned', 0):>6} {t.get('fail', 0):>6} {best:>7}")
    for final in status.get("finalists", []):
        click.echo(f"finalist {final['key']}: Tier A {'done' if final['tier_a'] else 'pending'}, "
                   f"Tier C {'done' if final['tier_c'] else 'pending'}")
    if status.get("report"):
        click.echo(f"report: {status['output']}/report.md")
    _print_skipped(status["skipped"])
