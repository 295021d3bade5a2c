"""``rrbench bench speed``: a reranker's pairs/s, tokens per pair and peak memory on a task's real pairs.

With ``--replica`` the zoo model is built from its real architecture with random weights (rrbench.models.replica):
speed and memory only, never quality; the output says so on every row.
"""

from __future__ import annotations

import json
from typing import Any

import click

from rrbench.components.registry import get_registry
from rrbench.models.factory import load_reranker
from rrbench.models.knobs import parse_knobs
from rrbench.models.replica import (
    DEFAULT_CHARS_PER_TOKEN,
    SPEED_ONLY,
    architecture_for,
    count_parameters,
    load_replica,
    replica_info,
)
from rrbench.models.speed import current_rss_bytes, describe_machine, machine, measure, task_pairs
from rrbench.util.errors import UsageError


@click.group("bench")
def bench() -> None:
    """Measure rerankers: speed and memory on a task's real pairs (real weights or architecture replicas)."""


@bench.command("speed")
@click.option("--reranker", "name", required=True, help="Reranker id or alias (a zoo model for --replica).")
@click.option("--replica", is_flag=True,
              help="Build the model from its real architecture with random weights (speed and memory only).")
@click.option("--task", default="scifact-evidence", show_default=True)
@click.option("--split", default="dev_select", show_default=True)
@click.option("--pairs", default=64, show_default=True, type=click.IntRange(min=1),
              help="How many (query, sentence) pairs to score, queries in id order.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "bfloat16", "float16", "int8"]))
@click.option("--device", default=None)
@click.option("--max-length", default=None, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch CPU threads (default: torch's).")
@click.option("--chars-per-token", default=DEFAULT_CHARS_PER_TOKEN, show_default=True, type=click.IntRange(min=1),
              help="Replica length tokenizer: word characters per token (7 gives bert-base-uncased's count on "
                   "scifact-evidence).")
@click.option("--model-path", default=None, help="Local weights (without --replica).")
@click.option("--reranker-option", "reranker_option", multiple=True, metavar="KEY=VALUE",
              help="Backend knob, e.g. runtime=onnx or engine=false.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def speed(name: str, replica: bool, task: str, split: str, pairs: int, batch_size: int, dtype: str,
          device: str | None, max_length: int | None, threads: int | None, chars_per_token: int,
          model_path: str | None, reranker_option: tuple[str, ...], as_json: bool) -> None:
    """Pairs/s, tokens per pair and peak memory of one reranker on a task's real pairs."""

    import torch  # lazy: torch costs seconds at start-up

    if threads:
        torch.set_num_threads(threads)
    knobs = parse_knobs(reranker_option)
    sample = task_pairs(task, split, pairs)
    if not len(sample):
        raise UsageError(f"task {task} split {split} has no pairs to score")
    options: dict[str, Any] = {"batch_size": batch_size, "dtype": dtype, "device": device, "max_length": max_length,
                               **knobs}
    spec = get_registry().get("rerankers", name).spec
    baseline = current_rss_bytes()
    if replica:
        if model_path:
            raise UsageError("--model-path and --replica exclude each other (a replica has random weights)")
        arch = architecture_for(spec)
        params = count_parameters(arch)  # on the meta device, before anything is allocated
        reranker = load_replica(name, chars_per_token=chars_per_token, texts=sample.texts(), **options)
    else:
        arch, params = None, None
        reranker = load_reranker(name, model_path=model_path, **options)
    result = measure(reranker, sample)
    info = machine()
    row = {"reranker": spec.id, "kind": "replica" if replica else "weights",
           "quality": "speed only" if replica else None, "params": params, "task": task, "split": split,
           "dtype": dtype, "runtime": knobs.get("runtime", "torch"), "batch_size": batch_size,
           **result.as_dict(), "rss_increase_mb": round(result.peak_rss_mb - baseline / 2 ** 20, 1),
           "machine": info}
    if arch is not None:
        row.update({"architecture": arch["class"], "stand_in": arch.get("stand_in"),
                    "tokens": _tokens_note(reranker)})
    if as_json:
        click.echo(json.dumps(row, indent=2, default=str))
        return
    label = f"{spec.id} ({SPEED_ONLY if replica else 'real weights'})"
    click.echo(label)
    if params:
        click.echo(f"  parameters {params:,} ({arch['class'] if arch else ''}"
                   f"{'; stand-in: ' + arch['stand_in'] if arch and arch.get('stand_in') else ''})")
    tokens = "?" if result.tokens_per_pair is None else f"{result.tokens_per_pair:.1f}"
    click.echo(f"  {result.pairs} pairs of {task}/{split}, {tokens} tokens/pair"
               + (f" ({row['tokens']})" if row.get("tokens") else ""))
    click.echo(f"  {result.pairs_per_s:.2f} pairs/s ({result.seconds:.1f} s) at {dtype}, runtime {row['runtime']}, "
               f"batch {batch_size}; peak RSS {result.peak_rss_mb:,.0f} MiB (+{row['rss_increase_mb']:,.0f} MiB since "
               f"before the model and its libraries were loaded)")
    click.echo(f"  measured on {describe_machine(info, device or 'cpu')}")


def _tokens_note(reranker: Any) -> str | None:
    """How a replica's token lengths were obtained (its folder's replica.json)."""
    path = getattr(reranker, "weights_path", None)
    try:
        return str(replica_info(path)["tokens"]) if path else None
    except (OSError, KeyError, ValueError):
        return None
