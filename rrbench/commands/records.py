"""Result records: ``evaluate`` (outside runs), ``reproduce``, ``publish`` and ``leaderboard build``."""

from __future__ import annotations

from typing import Any

import click


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def _fmt4(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def register(cli: Any) -> None:
    @cli.command("evaluate")
    @click.option("--task", default="scifact-evidence", show_default=True, help="Task id or task directory.")
    @click.option("--split", default="dev_select", show_default=True)
    @click.option("--run", "run_file", required=True, help="TREC run file; docnos are '<post_id>:<sentence index>'.")
    @click.option("--threshold", default=None, type=float,
                  help="Decision threshold on the run's scores (false-evidence rate is null without it).")
    @click.option("--output", default=None, help="Output directory (default: runs/<timestamp>-eval-<hash>).")
    def evaluate_cmd(task: str, split: str, run_file: str, threshold: float | None, output: str | None) -> None:
        """Score a TREC run made by any system with rrbench's metrics and record format."""
        from rrbench.evaluation import evaluate_run

        record = evaluate_run(task=task, split=split, run=run_file, threshold=threshold, output=output)
        manifest, metrics = record["manifest"], record["metrics"]
        run = manifest["components"]["run"]
        click.echo(f"task {manifest['task']['id']}@{manifest['task']['version']}  split {manifest['split']}  "
                   f"run {run_file} ({', '.join(run['tags']) or 'no tag'})")
        keys = [k for k in metrics if k.startswith(("nDCG", "RR", "R@"))] + ["false_evidence_rate"]
        click.echo(" | ".join(f"{k:>11}" for k in keys))
        click.echo(" | ".join(f"{_fmt4(metrics.get(k)):>11}" for k in keys))
        click.echo(f"queries: {metrics['queries_has_evidence']} with evidence, {metrics['queries_no_evidence']} "
                   f"without; {run['queries_missing']} of the split missing from the run; "
                   f"threshold {_fmt4(manifest['threshold']['value'])}")
        click.echo(f"results in {record['output_dir']}")

    @cli.command("reproduce")
    @click.argument("record_dir")
    @click.option("--output", default=None, help="Keep the re-run's output here (default: a temporary folder).")
    @click.option("--tolerance", default=1e-9, show_default=True, type=float,
                  help="Largest accepted metric difference (raise it when re-scoring on other hardware).")
    @click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE", help="Score cache directory.")
    @click.option("--no-cache", is_flag=True, help="Recompute every score.")
    @click.option("--quiet", is_flag=True, help="No progress bars.")
    def reproduce_cmd(record_dir: str, output: str | None, tolerance: float, cache_dir: str | None, no_cache: bool,
                      quiet: bool) -> None:
        """Re-run the configuration of a result record and compare its metrics (exit 1 if they differ)."""
        from rrbench.errors import RRBenchError
        from rrbench.records import reproduce

        if (cache_dir or "").strip().lower() in {"off", "0", "none", "false", "no"}:
            cache_dir, no_cache = None, True
        result = reproduce(record_dir, output=output, tolerance=tolerance, cache_dir=cache_dir,
                           use_cache=not no_cache, show_progress=False if quiet else None)
        click.echo(f"{'metric':<24}{'recorded':>14}{'reproduced':>14}{'delta':>12}")
        for row in result["comparison"]:
            delta = "-" if row["delta"] is None else f"{row['delta']:.2e}"
            click.echo(f"{row['metric']:<24}{_fmt(row['recorded']):>14}{_fmt(row['reproduced']):>14}{delta:>12}"
                       + ("" if row["ok"] else "  MISMATCH"))
        cache = result["record"]["manifest"].get("cache") or {}
        if cache.get("enabled"):
            click.echo(f"score cache: {cache['hits']} hits, {cache['misses']} misses, "
                       f"{cache['model_calls']} model calls")
        if not result["config_hash_matches"]:
            click.echo("note: the configuration hash differs (other weights, options or rrbench version)")
        if not result["ok"]:
            raise RRBenchError(f"{record_dir}: reproduced metrics differ from the record "
                               f"(tolerance {tolerance:g})")
        click.echo("reproduced: all metrics match")

    @cli.command("publish")
    @click.argument("record_dir")
    @click.option("--leaderboard-dir", default="leaderboard", show_default=True)
    @click.option("--replace", is_flag=True, help="Overwrite an already published record of the same configuration.")
    def publish_cmd(record_dir: str, leaderboard_dir: str, replace: bool) -> None:
        """Check a result record and add it to leaderboard/<task>@<version>/<split>/."""
        from rrbench.leaderboard import publish

        target = publish(record_dir, leaderboard_dir, replace=replace)
        click.echo(f"published {target} (run `rrbench leaderboard build` to update the README)")

    @cli.group("leaderboard")
    def leaderboard_group() -> None:
        """Build the leaderboard from published records."""

    @leaderboard_group.command("build")
    @click.option("--leaderboard-dir", default="leaderboard", show_default=True)
    def build_cmd(leaderboard_dir: str) -> None:
        """Regenerate leaderboard/README.md from the records alone."""
        from rrbench.leaderboard import build, collect

        groups = collect(leaderboard_dir)
        path = build(leaderboard_dir)
        total = sum(len(v) for v in groups.values())
        click.echo(f"wrote {path}: {total} records in {len(groups)} tables")
