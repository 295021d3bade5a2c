"""``rrbench cache stats`` and ``rrbench cache clear [--model ID]``: inspect and empty the score cache."""

from __future__ import annotations

import click

from rrbench.cli.output import echo_json
from rrbench.pipeline.score_cache import ScoreCache


@click.group()
def cache() -> None:
    """Inspect or clear the score cache ($RRBENCH_CACHE or ~/.cache/rrbench)."""


@cache.command("stats")
@click.option("--cache-dir", default=None, help="Cache directory (default: $RRBENCH_CACHE or ~/.cache/rrbench).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(cache_dir: str | None, as_json: bool) -> None:
    """Stored scores per model fingerprint, and the cache's size on disk."""

    with ScoreCache(cache_dir) as store:
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


@cache.command("clear")
@click.option("--cache-dir", default=None, help="Cache directory (default: $RRBENCH_CACHE or ~/.cache/rrbench).")
@click.option("--model", default=None, help="Only this model id (or fingerprint prefix, see `cache stats`).")
def clear(cache_dir: str | None, model: str | None) -> None:
    """Delete cached scores: all of them, or one model's."""

    with ScoreCache(cache_dir) as store:
        deleted = store.clear(model)
    click.echo(f"deleted {deleted} cached scores" + (f" of model {model}" if model else ""))
