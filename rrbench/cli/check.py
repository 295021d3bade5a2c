"""``rrbench check NAME [--kind KIND]`` and ``rrbench check --task ID``: conformance runs on the built-in mini task (rrbench.checks), for zoo models
and third-party plugins. Exit 0: every check passed; 1: a check failed or the component failed while running; 2: it
cannot be built."""

from __future__ import annotations

from typing import Any

import click

from rrbench.checks.conformance import check_component
from rrbench.cli.output import echo_json
from rrbench.models.knobs import parse_knobs
from rrbench.util.errors import PluginError, UsageError

CHECKABLE = ("rerankers", "retrievers", "fusers", "miners", "losses", "regimes", "calibrators", "tasks")


@click.command("check")
@click.argument("name", required=False)
@click.option("--kind", default="rerankers", show_default=True, type=click.Choice(CHECKABLE),
              help="What NAME is: a reranker, or a retriever, fuser, miner or loss (see rrbench.checks.conformance).")
@click.option("--task", "task_id", default=None,
              help="Check a registered task (id or alias) instead: hashes, splits, evidence (`validate-task DIR` "
                   "checks a folder).")
@click.option("--model-path", default=None, help="Local weights to use with the RERANKER spec.")
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--device", default=None)
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "bfloat16", "float16", "int8"]))
@click.option("--max-length", default=None, type=int)
@click.option("--instruction", default=None)
@click.option("--trust-remote-code", is_flag=True)
@click.option("--reranker-option", "reranker_option", multiple=True, metavar="KEY=VALUE")
@click.option("--option", "component_option", multiple=True, metavar="KEY=VALUE",
              help="Option of a retriever, fuser, miner or loss, validated against its declared schema.")
@click.option("--tolerance", default=1e-4, show_default=True, type=float,
              help="Largest absolute score difference accepted by the invariance checks.")
@click.option("--json", "as_json", is_flag=True)
def check(name: str | None, kind: str, task_id: str | None, reranker_option: tuple[str, ...],
          component_option: tuple[str, ...], tolerance: float, as_json: bool, trust_remote_code: bool,
          **options: Any) -> None:
    """Conformance checks of a component on the built-in mini task (finite, deterministic, invariant).

    Exit 0: every check passed; 1: a check failed or the component failed while running; 2: it cannot be built.
    """

    if task_id is not None:
        if name is not None:
            raise UsageError(f"pass either NAME ({name!r}) or --task {task_id}, not both")
        name, kind = task_id, "tasks"
    if name is None:
        raise UsageError("name the component to check (rrbench check NAME [--kind KIND]) or pass --task ID")
    if tolerance < 0:
        raise UsageError(f"--tolerance must be >= 0, got {tolerance}")
    if options["batch_size"] < 1:
        raise UsageError(f"--batch-size must be >= 1, got {options['batch_size']}")
    if kind == "rerankers":
        knobs = parse_knobs(reranker_option)
        if trust_remote_code:
            knobs["trust_remote_code"] = True
        report = check_component(kind, name, tolerance=tolerance, **options, **knobs)
        title = report["reranker"]
    elif kind == "tasks":
        report = check_component(kind, name)
        title = f"task {name}"
    else:
        given = parse_knobs(component_option, "--option")
        extra = {"tolerance": tolerance} if kind in ("retrievers", "fusers") else {}
        report = check_component(kind, name, **extra, **given)
        title = f"{kind[:-1] if kind != 'losses' else 'loss'} {report['component']}"
    if as_json:
        echo_json(report)
    else:
        click.echo(f"rrbench check {title}" + (f" (tolerance {tolerance:g})" if kind != "tasks" else ""))
        for c in report["checks"]:
            diff = "" if c["max_abs_diff"] is None else f"  max |diff| {c['max_abs_diff']:.3g}"
            click.echo(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['detail']}{diff}")
    if not report["ok"]:
        bad = [c for c in report["checks"] if not c["ok"]]
        raise PluginError(f"{title} failed conformance: {', '.join(c['check'] for c in bad)} (first: "
                          f"{bad[0]['detail']})")
