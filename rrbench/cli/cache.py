"""``rrbench cache stats | clear | export | import``: inspect, empty and move the score store's contents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from rrbench.cli.output import echo_json
from rrbench.pipeline.score_bundle import export_bundle, import_bundle, read_bundle
from rrbench.pipeline.score_cache import open_store
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError

_CACHE_DIR = click.option("--cache-dir", default=None,
                          help="Cache directory or postgresql:// URL (default: $RRBENCH_CACHE or ~/.cache/rrbench).")


@click.group()
def cache() -> None:
    """Inspect, clear, export and import the score store ($RRBENCH_CACHE or ~/.cache/rrbench)."""


@cache.command("stats")
@_CACHE_DIR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(cache_dir: str | None, as_json: bool) -> None:
    """Stored scores per model fingerprint, fill units and workers, and the store's size."""

    with open_store(cache_dir) as store:
        info = store.stats()
    if as_json:
        echo_json(info)
        return
    click.echo(f"cache {info['path']}: {info['pair_scores']} pair scores, {info['list_groups']} listwise groups, "
               f"{info['size_bytes'] / 1e6:.1f} MB")
    for model in info["models"]:
        details = model["info"]
        click.echo(f"  {model['model_id']}  fingerprint {model['fingerprint'][:12]}  "
                   f"{model['pair_scores']} pairs, {model['list_groups']} groups  "
                   f"(dtype {details.get('dtype')}, max_length {details.get('max_length')})")
    if info["units"]:
        click.echo("fill units (done / leased / pending):")
        for row in info["units"]:
            click.echo(f"  {row['model_id']} {row['fingerprint'][:12]}  {row['task']} {row['split']}: "
                       f"{row['done']} / {row['leased']} / {row['pending']}")
    if info["workers"]:
        click.echo("workers (pairs scored, new, already stored; model time; throughput):")
        for row in info["workers"]:
            click.echo(_worker_line(row))


def _worker_line(row: dict[str, Any]) -> str:
    rate = f"{row['pairs_per_s']:.1f} pairs/s" if row["pairs_per_s"] else "-"
    seen = max(0.0, time.time() - row["last_seen"])
    return (f"  {row['worker']} [{row['label']}]  {row['units']} units, {row['pairs_scored']} scored, "
            f"{row['pairs_new']} new, {row['pairs_duplicate']} already stored; {row['seconds']:.1f}s; {rate}; "
            f"last seen {seen:.0f}s ago")


@cache.command("clear")
@_CACHE_DIR
@click.option("--model", default=None, help="Only this model id (or fingerprint prefix, see `cache stats`).")
def clear(cache_dir: str | None, model: str | None) -> None:
    """Delete cached scores: all of them, or one model's."""

    with open_store(cache_dir) as store:
        deleted = store.clear(model)
    click.echo(f"deleted {deleted} cached scores" + (f" of model {model}" if model else ""))


@cache.command("export")
@_CACHE_DIR
@click.option("--task", required=True, help="Task id or directory.")
@click.option("--split", required=True, help="Split whose scores go into the bundle.")
@click.option("--model", required=True, help="Model id or fingerprint prefix (see `cache stats`).")
@click.option("--context", default=0, show_default=True, type=int, help="Context window the scores were read with.")
@click.option("--output", required=True, help="Folder (the file is named by its content hash) or a .parquet path.")
def export_command(cache_dir: str | None, task: str, split: str, model: str, context: int, output: str) -> None:
    """Write one model's scores on a task split as a Parquet bundle named by its content hash."""

    loaded = get_task(task)
    loaded.split_queries(split)  # an unknown split fails here, naming the splits
    with open_store(cache_dir) as store:
        meta = export_bundle(store, loaded, split, model, Path(output), context)
    click.echo(f"wrote {meta['path']}: {meta['pairs']} scores of {meta['model_id']} ({meta['fingerprint'][:12]}) "
               f"on {loaded.id} {split}; content sha256 {meta['content_sha256']}")


@cache.command("import")
@_CACHE_DIR
@click.argument("bundle")
@click.option("--task", default=None, help="Task id or directory (default: the task the bundle names).")
def import_command(cache_dir: str | None, bundle: str, task: str | None) -> None:
    """Load a score bundle into the store, after checking its hash, fingerprint and task data."""

    path = Path(bundle)
    name = task or str((read_bundle(path).meta.get("task") or {}).get("id") or "")
    if not name:
        raise UsageError(f"score bundle {path} names no task; pass --task")
    try:
        loaded = get_task(name)
    except UsageError as exc:
        if task:
            raise
        raise UsageError(f"score bundle {path} is for task {name!r}, which is not found here ({exc}); pass --task "
                         f"ID_OR_DIR") from None
    with open_store(cache_dir) as store:
        done = import_bundle(store, path, loaded)
    click.echo(f"imported {done['pairs']} scores of {done['model_id']} ({done['fingerprint'][:12]}) on "
               f"{done['task']} {done['split']}: {done['new']} new, {done['already_stored']} already stored "
               f"(agreeing); bundle {done['content_sha256']}")
