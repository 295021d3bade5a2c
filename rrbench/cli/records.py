"""Result records: ``evaluate`` (outside runs), ``reproduce``, ``publish`` and ``leaderboard build``."""

from __future__ import annotations

from typing import Any

import click

from rrbench.cli.output import echo_json
from rrbench.leaderboard.board import build, check, collect, publish
from rrbench.leaderboard.changes import changed_record_folders
from rrbench.leaderboard.compare import (
    aggregate,
    comparable_metric,
    describe_pair,
    direction_word,
    metric_values,
    settings_line,
)
from rrbench.leaderboard.gate import (
    CandidateRunError,
    RegressionFound,
    check_gate_parameters,
    gate,
    load_pair,
    table,
    write_summaries,
)
from rrbench.leaderboard.html import write_site
from rrbench.leaderboard.outside_runs import evaluate_run
from rrbench.leaderboard.reproduce import reproduce
from rrbench.leaderboard.rescore import ModelPool, rescore
from rrbench.leaderboard.timing import time_leaderboard
from rrbench.leaderboard.verify import verify_record
from rrbench.measures.names import higher_is_better
from rrbench.measures.significance import compare_pair
from rrbench.util.errors import MissingWeightsError, RRBenchError
from rrbench.util.text import fmt_number


def _comparable_metric(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--metric`` of compare and gate (one set, from the one name table): any accepted spelling, resolved to the
    record's name before anything loads."""

    return comparable_metric(value)


@click.command("evaluate")
@click.option("--task", default="scifact-evidence", show_default=True, help="Task id or task directory.")
@click.option("--split", default="dev_select", show_default=True)
@click.option("--run", "run_file", required=True, help="TREC run file; docnos are '<post_id>:<sentence index>'.")
@click.option("--threshold", default=None, type=float,
              help="Decision threshold on the run's scores (false-evidence rate is null without it).")
@click.option("--output", default=None, help="Output directory (default: runs/<timestamp>-eval-<hash>).")
@click.option("--final", is_flag=True, help="Required for --split test: the one-time final evaluation (recorded in "
                                            "the test ledger; a second use is refused).")
def evaluate_cmd(task: str, split: str, run_file: str, threshold: float | None, output: str | None,
                 final: bool) -> None:
    """Score a TREC run made by any system with rrbench's metrics and record format."""

    record = evaluate_run(task=task, split=split, run=run_file, threshold=threshold, output=output, final=final)
    claims, metrics = record["config"], record["metrics"]
    click.echo(f"task {claims['task']['id']}@{claims['task']['version']}  split {claims['split']}  "
               f"run {run_file} ({', '.join(claims['run']['tags']) or 'no tag'})")
    keys = [k for k in metrics if k.startswith(("nDCG", "RR", "R@"))] + ["false_evidence_rate"]
    click.echo(" | ".join(f"{k:>11}" for k in keys))
    click.echo(" | ".join(f"{fmt_number(metrics.get(k)):>11}" for k in keys))
    click.echo(f"queries: {metrics['queries_has_evidence']} with evidence, {metrics['queries_no_evidence']} "
               f"without; threshold {fmt_number(claims['threshold'])}")
    click.echo(f"results in {record['output_dir']}")



@click.command("reproduce")
@click.argument("record_dir")
@click.option("--output", default=None, help="Keep the re-run's output here (default: a temporary folder).")
@click.option("--tolerance", default=1e-9, show_default=True, type=float,
              help="Largest accepted metric difference (raise it when re-scoring on other hardware).")
@click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE", help="Score cache directory.")
@click.option("--no-cache", is_flag=True, help="Recompute every score.")
@click.option("--quiet", is_flag=True, help="No progress bars (nor, off a terminal, progress lines).")
@click.option("--weights", "weights", multiple=True, help="Folder to search for a record's local weights (by hash).")
@click.option("--task-dir", default=None, help="Verify and re-run against this task folder (an unregistered task).")
@click.option("--allow-remote-code", is_flag=True,
              help="Run Python code from a model repository the record names (trust_remote_code). Read that code "
                   "first: whoever wrote the record chose it.")
@click.option("--skip-unavailable", is_flag=True,
              help="A record whose model weights are not on this machine is reported as not reproduced (exit 0) "
                   "instead of an error: for a leaderboard's CI, which re-scores what it can.")
def reproduce_cmd(record_dir: str, output: str | None, tolerance: float, cache_dir: str | None, no_cache: bool,
                  quiet: bool, weights: tuple[str, ...], task_dir: str | None, allow_remote_code: bool,
                  skip_unavailable: bool) -> None:
    """Re-run the configuration of a result record and compare its metrics (exit 1 if they differ)."""

    if (cache_dir or "").strip().lower() in {"off", "0", "none", "false", "no"}:
        cache_dir, no_cache = None, True
    try:
        result = reproduce(record_dir, output=output, tolerance=tolerance, cache_dir=cache_dir,
                           use_cache=not no_cache, show_progress=False if quiet else None,
                           allow_remote_code=allow_remote_code, weights=weights, task_dir=task_dir)
    except MissingWeightsError as exc:
        if not skip_unavailable:
            raise
        click.echo(f"not reproduced: {exc}")
        return
    click.echo(f"{'metric':<24}{'recorded':>14}{'reproduced':>14}{'delta':>12}")
    for row in result["comparison"]:
        delta = "-" if row["delta"] is None else f"{row['delta']:.2e}"
        click.echo(f"{row['metric']:<24}{fmt_number(row['recorded'], 6):>14}{fmt_number(row['reproduced'], 6):>14}{delta:>12}"
                   + ("" if row["ok"] else "  MISMATCH"))
    cache = result["record"]["provenance"].get("cache") or {}
    if cache.get("enabled"):
        click.echo(f"score cache: {cache['hits']} hits, {cache['misses']} misses, "
                   f"{cache['model_calls']} model calls")
    for row in result["fields"]:
        click.echo(f"{row['field']:<24}{row['recorded']!s:>30}  {row['reproduced']!s:>30}  "
                   f"{'same' if row['ok'] else 'MISMATCH'}")
    if not result["ok"]:
        failed = ", ".join([r["metric"] for r in result["comparison"] if not r["ok"]] +
                           [f["field"] for f in result["fields"] if not f["ok"]])
        raise RRBenchError(f"{record_dir}: the reproduction differs from the record in {failed} "
                           f"(tolerance {tolerance:g})")
    click.echo("reproduced: all metrics and per-query values match")



@click.command("publish")
@click.argument("record_dir")
@click.option("--to", "--leaderboard-dir", "leaderboard_dir", default="leaderboard", show_default=True,
              help="Leaderboard folder to file the record in.")
@click.option("--replace", is_flag=True, help="Overwrite an already published record of the same configuration.")
@click.option("--task-dir", default=None, help="Verify against this task folder instead of the registered task.")
def publish_cmd(record_dir: str, leaderboard_dir: str, replace: bool, task_dir: str | None) -> None:
    """Verify a result record and file it under <task>@<version>/<split>/<system>-<hash>/ (with SHA256SUMS)."""

    target = publish(record_dir, leaderboard_dir, replace=replace, task_dir=task_dir)
    click.echo(f"published {target} (run `rrbench leaderboard build` to update the README)")



@click.command("compare")
@click.argument("record_a")
@click.argument("record_b")
@click.option("--metric", default="nDCG@10", show_default=True, callback=_comparable_metric,
              help="Any metric a record holds: nDCG@10, RR@10, R@k, false_evidence_rate (lower is better), "
                   "answer_rate_has_evidence, ece, brier; MRR@10, recall@10, fer ... are accepted.")
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance level of the verdict.")
@click.option("--samples", default=100_000, show_default=True, type=click.IntRange(min=100))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_cmd(record_a: str, record_b: str, metric: str, alpha: float, samples: int, seed: int,
                as_json: bool) -> None:
    """Paired randomisation test of A against B over the queries both scored (is A really better?)."""

    records = [verify_record(path) for path in (record_a, record_b)]
    pair = describe_pair(records[0], records[1])
    values = [metric_values(r, metric) for r in records]
    better = higher_is_better(metric)
    head = {"metric": metric, "direction": direction_word(metric), "a": {"path": record_a, "system": pair["a"]},
            "b": {"path": record_b, "system": pair["b"]},
            "differences": [{"setting": k, "a": va, "b": vb} for k, va, vb in pair["differences"]], "alpha": alpha}
    if values[0] is None or values[1] is None:  # an aggregate (ECE, Brier): both values, no query-level test
        means = [aggregate(r, metric) for r in records]
        verdict = f"no test: {metric} is an aggregate without per-query values"
        if as_json:
            echo_json({**head, "mean_a": means[0], "mean_b": means[1], "verdict": verdict})
            return
        _echo_systems(record_a, record_b, pair)
        click.echo(f"{metric} ({direction_word(metric)}): A {fmt_number(means[0])}  B {fmt_number(means[1])}")
        click.echo(f"verdict: {verdict}")
        return
    result = compare_pair(values[0], values[1], metric, samples=samples, seed=seed, higher_is_better=better)
    if result.p_value < alpha:
        a_better = (result.mean_diff > 0) == better
        verdict = (f"{'A' if a_better else 'B'} is better than {'B' if a_better else 'A'} on {metric} "
                   f"(p = {result.p_value:.4g} < alpha {alpha:g})")
    else:
        verdict = f"no significant difference on {metric} at alpha {alpha:g} (p = {result.p_value:.4g})"
    if as_json:
        echo_json({**head, **result.as_dict(), "verdict": verdict})
        return
    _echo_systems(record_a, record_b, pair)
    click.echo(f"{metric} ({direction_word(metric)}) over {result.queries} queries: A {result.mean_a:.4f}  "
               f"B {result.mean_b:.4f}  A-B {result.mean_diff:+.4f}  95% CI [{result.ci_diff[0]:+.4f}, "
               f"{result.ci_diff[1]:+.4f}]")
    click.echo(f"A better on {result.wins} queries, B better on {result.losses}, ties {result.ties}; "
               f"p = {result.p_value:.4g} ({result.test})")
    click.echo(f"verdict: {verdict}")


def _echo_systems(record_a: str, record_b: str, pair: dict[str, Any]) -> None:
    click.echo(f"A: {pair['a']}  ({record_a})")
    click.echo(f"B: {pair['b']}  ({record_b})")
    click.echo(settings_line(pair["differences"]))



@click.command("gate")
@click.option("--baseline", required=True,
              help="Baseline record folder, or leaderboard:<task>@<version>/<split>/<system>.")
@click.option("--candidate", required=True, help="Candidate run folder, or a run configuration file to run first.")
@click.option("--metric", default="nDCG@10", show_default=True, callback=_comparable_metric,
              help="Metric whose move in its bad direction fails the gate: nDCG@10, RR@10, R@k (a drop), "
                   "false_evidence_rate (a rise), answer_rate_has_evidence; the names compare accepts.")
@click.option("--max-drop", default=0.005, show_default=True, type=float,
              help="Tolerated drop of the metric's mean (the test's null-hypothesis margin).")
@click.option("--alpha", default=0.05, show_default=True, type=float)
@click.option("--max-fe-increase", default=None, type=float,
              help="Also fail when the false-evidence rate rises by more than this.")
@click.option("--samples", default=10_000, show_default=True, type=click.IntRange(min=100))
@click.option("--leaderboard-dir", default="leaderboard", show_default=True)
@click.option("--summary", default=None, help="Write the Markdown summary (a pull-request comment) here.")
@click.option("--candidate-output", default=None, help="Output folder of a candidate given as a configuration.")
def gate_cmd(baseline: str, candidate: str, metric: str, max_drop: float, alpha: float,
             max_fe_increase: float | None, samples: int, leaderboard_dir: str, summary: str | None,
             candidate_output: str | None) -> None:
    """Fail (exit 1) only on a significant regression of the candidate against the baseline.

    Exit codes: 0 pass; 1 regression (one-sided paired sign-flip test of H0 mean(candidate - baseline) >=
    -max_drop rejected at alpha, or false-evidence rate up by more than --max-fe-increase); 2 unusable input
    (other task version or split, no common queries, unreadable record); 3 the candidate configuration failed
    to run. A crash is never reported as a regression.
    """

    check_gate_parameters(max_drop, alpha, max_fe_increase, samples)
    try:
        base, cand = load_pair(baseline, candidate, leaderboard_dir, candidate_output,
                               announce=lambda line: click.echo(line, err=True))
        result = gate(base, cand, metric=metric, max_drop=max_drop, alpha=alpha,
                      max_fe_increase=max_fe_increase, samples=samples)
    except RRBenchError:
        raise
    except Exception as exc:
        raise CandidateRunError(f"gate failed unexpectedly: {type(exc).__name__}: {exc}") from None
    click.echo(table(result))
    for path in write_summaries(result, summary):
        click.echo(f"summary written to {path}")
    if result.exit_code:
        raise RegressionFound(f"gate failed: {'; '.join(result.reasons)}")


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Build and check the leaderboard from published records."""


@leaderboard_group.command("build")
@click.option("--leaderboard-dir", default="leaderboard", show_default=True)
@click.option("--method", default=None, type=click.Choice(["holm", "tukey"]),
              help="Multiple-comparison correction of the tests against the leader; saved in LEADERBOARD_DIR/board.yaml "
                   "(default: what it holds, else holm).")
@click.option("--margin", default=None, type=click.FloatRange(0.0, 1.0),
              help="Non-inferiority margin on the main score for the Across tasks view's 'holds everywhere'; saved in "
                   "LEADERBOARD_DIR/board.yaml (default: what it holds, else 0.01).")
@click.option("--html", "html_dir", default=None, help="Also write a static HTML board (works from file://).")
@click.option("--timings", default=None,
              help="Verifier timings for the HTML board (default: LEADERBOARD_DIR/verifier-timings.json if present).")
def build_cmd(leaderboard_dir: str, method: str | None, margin: float | None, html_dir: str | None,
              timings: str | None) -> None:
    """Regenerate leaderboard/README.md from the records alone (and optionally an HTML board)."""

    groups = collect(leaderboard_dir)
    path = build(leaderboard_dir, method=method, margin=margin)
    total = sum(len(g.verified) + len(g.claimed) + len(g.archived) for g in groups.values())
    click.echo(f"wrote {path}: {total} records in {len(groups)} boards")
    if html_dir:
        index = write_site(leaderboard_dir, html_dir, timings=timings)
        click.echo(f"wrote HTML board {index}")


@leaderboard_group.command("check")
@click.option("--leaderboard-dir", default="leaderboard", show_default=True)
@click.option("--base", default=None, help="Git revision the change is based on: refuse a test ledger whose earlier "
                                           "lines were edited or removed since then.")
@click.option("--task-dir", default=None, help="Verify against this task folder instead of the registered task.")
@click.option("--rescore", "rescore_n", default=0, show_default=True, type=click.IntRange(min=0),
              help="Re-score N pairs per reranker and N queries' pools per record with the claimed models "
                   "(seeded by each record's hash); with --base, only the records changed since that revision.")
@click.option("--weights", "weights", multiple=True,
              help="Folder to search for records' local weights (by hash), for --rescore and --time.")
@click.option("--time", "measure_time", is_flag=True,
              help="Also re-measure each record's reranker pairs/s on this machine (a replica where the weights do not "
                   "load); written to the timings file the HTML board reads, never to README.md.")
@click.option("--time-pairs", default=64, show_default=True, type=click.IntRange(min=1),
              help="Pairs of the record's split timed per reranker.")
@click.option("--timings", default=None, help="Timings file (default: LEADERBOARD_DIR/verifier-timings.json).")
@click.option("--device", default=None, help="Device for --time (default: cuda if available, else cpu).")
def check_cmd(leaderboard_dir: str, base: str | None, task_dir: str | None, rescore_n: int,
              weights: tuple[str, ...], measure_time: bool, time_pairs: int, timings: str | None,
              device: str | None) -> None:
    """Verify every published record and that README.md is what `leaderboard build` makes (leaderboard CI)."""

    groups = check(leaderboard_dir, base=base, task_dir=task_dir)
    counts = {status: sum(len(getattr(g, status)) for g in groups.values())
              for status in ("verified", "claimed", "archived")}
    click.echo(f"ok: {counts['verified']} records verified, {counts['claimed']} claimed (outside runs), "
               f"{counts['archived']} archived; README.md is up to date")
    if rescore_n:
        models = ModelPool(weights)
        changed = None if base is None else changed_record_folders(leaderboard_dir, base)
        if changed is not None:
            click.echo(f"re-scoring the {len(changed)} record(s) changed since {base}")
        for group in groups.values():
            for entry in group.verified:
                if changed is not None and entry.path.parent.resolve() not in changed:
                    continue
                outcome = rescore(entry.verified, rescore_n, models)
                detail = (f"{outcome.pairs} pairs, {outcome.queries} pools" if outcome.status == "re-scored"
                          else "; ".join(outcome.reasons))
                click.echo(f"{outcome.status}: {entry.identity} ({detail})")
    if measure_time:
        path, entries, skipped = time_leaderboard(leaderboard_dir, pairs=time_pairs, device=device, path=timings,
                                                  weights=weights, task_dir=task_dir)
        for e in entries:
            claimed = "-" if e["claimed_pairs_per_s"] is None else f"{float(e['claimed_pairs_per_s']):.1f}"
            click.echo(f"  {e['record']}: claimed {claimed} pairs/s, measured {e['measured_pairs_per_s']:.1f} "
                       f"({e['kind']}{', speed only' if e['speed_only'] else ''}) on {e['machine']}")
        for line in skipped:
            click.echo(f"  {line}")
        click.echo(f"timings of {len(entries)} records written to {path} (the HTML board reads it; README.md never)")
