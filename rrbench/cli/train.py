"""``rrbench train``: fine-tune a reranker on a task's training split (imports torch only when it runs).

Every option defaults to "not given" so that a regime/recipe can fill it in and an explicit flag always wins.
"""

from __future__ import annotations

from typing import Any

import click

from rrbench.cli.output import echo_json
from rrbench.models.knobs import parse_knobs
from rrbench.models.loading import pick_device, resolve_bf16_training
from rrbench.training.regimes import resolve_config
from rrbench.training.trainer import train
from rrbench.util.errors import UsageError


@click.command("train")
@click.option("--task", default=None, help="Task id or directory [default: scifact-evidence].")
@click.option("--base", default=None, help="Base model: registered id, hub id or local folder [default: minilm-l6].")
@click.option("--loss", default=None, help="Loss id (`rrbench list losses`) [default: bce].")
@click.option("--miner", default=None, help="Negative miner id (`rrbench list miners`) [default: n3-mixed].")
@click.option("--regime", default=None, help="Named regime R0-R5 (`rrbench list regimes`); flags override it.")
@click.option("--recipe", default=None, help="A documented recipe (a regime that also sets model and "
                                             "hyper-parameters), e.g. minilm-scifact.")
@click.option("--epochs", type=float, default=None, help="[default: 1]")
@click.option("--max-steps", type=int, default=None, help="Stop after this many optimiser steps.")
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 2e-5].")
@click.option("--warmup", type=float, default=None, help="Warm-up: fraction of steps (<1) or steps (>=1).")
@click.option("--batch-size", type=int, default=None, help="Rows per step [default: 16].")
@click.option("--max-length", type=int, default=None, help="Tokens per (query, sentence) pair [default: 256].")
@click.option("--seed", type=int, default=None, help="Seeds data order, head init, dropout and miners.")
@click.option("--negatives", type=int, default=None, help="Mined negatives per query/row [default: 4].")
@click.option("--group-size", type=int, default=None, help="Listwise group size cap (positives + negatives).")
@click.option("--instruction", default=None, help="Prefix for the query text ({query} placeholder allowed).")
@click.option("--context", "context_window", type=int, default=None,
              help="Neighbouring sentences added to each side (as in `rrbench run`).")
@click.option("--context-window", "old_context_window", type=int, default=None, hidden=True,
              help="Deprecated: the old name of --context.")
@click.option("--no-evidence-rows/--no-no-evidence-rows", "include_no_evidence", default=None,
              help="Also train on the sentences of no-evidence queries, all as negatives [default: on; recipe minilm-scifact: off].")
@click.option("--graded-labels/--binary-labels", "graded_labels", default=None,
              help="Pointwise labels as grade / max grade instead of 0/1 (listwise groups always keep grades).")
@click.option("--train-split", default=None, help="[default: train]")
@click.option("--eval-split", default=None, help="Selection split for early stopping [default: dev_select].")
@click.option("--eval-steps", type=int, default=None, help="Evaluate every N steps [default: once per epoch].")
@click.option("--patience", type=int, default=None, help="Early stopping: evaluations without improvement.")
@click.option("--select-best/--no-select-best", default=None,
              help="Keep the best checkpoint on the eval split (default) or the last one.")
@click.option("--head", type=click.Choice(["cls", "mean"]), default=None,
              help="Score head for encoder bases: [CLS] classifier (default) or linear on mean-pooled tokens.")
@click.option("--teacher", default=None, help="R5: teacher reranker whose cached scores are distilled.")
@click.option("--loss-option", "loss_option", multiple=True, help="key=value for the loss (repeatable).")
@click.option("--miner-option", "miner_option", multiple=True, help="key=value for the miner (repeatable).")
@click.option("--bf16", type=click.Choice(["auto", "on", "off", "force"]), default=None, is_flag=False,
              flag_value="on", help="bf16 autocast: auto (where native: AVX512_BF16/AMX CPU, bf16 GPU; else fp32 "
                                    "with a warning), on (native only), off (default), force (even emulated).")
@click.option("--no-bf16", "no_bf16", is_flag=True, hidden=True, help="Same as --bf16 off.")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads (fewer than cores helps on a shared machine).")
@click.option("--cache-dir", default=None,
              help="Score store holding the teacher's scores: a cache folder or a postgresql:// URL.")
@click.option("--keep-checkpoints", is_flag=True, default=None, help="Keep intermediate Trainer checkpoints.")
@click.option("--overwrite", is_flag=True, help="Delete DIR first instead of resuming the run in it.")
@click.option("--output", required=True, help="Output folder; rerunning the same command resumes there.")
@click.option("--quiet", is_flag=True, help="No progress bars (nor, off a terminal, progress lines).")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON.")
def train_command(regime: str | None, recipe: str | None, loss_option: tuple[str, ...],
                  miner_option: tuple[str, ...], overwrite: bool, quiet: bool, as_json: bool,
                  cache_dir: str | None, max_length: int | None, **flags: Any) -> None:
    """Fine-tune a reranker; writes a checkpoint that `rrbench run --reranker DIR` evaluates."""
    if regime and recipe:
        raise UsageError("pass either --regime or --recipe, not both")

    bf16_mode = "off" if flags.pop("no_bf16") else flags.pop("bf16")
    old_context = flags.pop("old_context_window")
    if old_context is not None:
        if flags["context_window"] is not None and flags["context_window"] != old_context:
            raise UsageError(f"--context {flags['context_window']} and --context-window {old_context} disagree; "
                             f"pass --context only (--context-window is its deprecated old name)")
        click.echo("--context-window is deprecated; use --context", err=True)
        flags["context_window"] = old_context
    explicit = {k: v for k, v in flags.items() if v is not None}
    if bf16_mode is not None:
        explicit["bf16"] = resolve_bf16_training(bf16_mode, pick_device(None))
    if max_length is not None:
        explicit["max_length"] = max_length
    explicit["loss_options"] = parse_knobs(loss_option, "--loss-option")
    explicit["miner_options"] = parse_knobs(miner_option, "--miner-option")
    config = resolve_config(explicit, regime or recipe)
    if not config.train:
        click.echo(f"regime {config.regime}: no training; evaluating and calibrating the base model only")
    summary = train(config, overwrite=overwrite, show_progress=not quiet, cache_dir=cache_dir)
    if as_json:
        echo_json(summary)
        return
    _print(config.output, summary)


def _print(output: str, summary: dict[str, Any]) -> None:
    ev = summary["eval"]
    cal = summary["threshold_calibration"]
    if summary.get("resumed") == "already complete":
        click.echo(f"{output} already holds a finished run with this configuration (use --overwrite to retrain)")
    for phase in summary["phases"]:
        click.echo(f"phase {phase['phase']}: loss {phase['loss']} ({phase['input_format']}), {phase['rows']} rows, "
                   f"{phase['steps']} steps, best step {phase['best_checkpoint_step']}, {phase['seconds']:.0f}s")
    nd = ev.get("nDCG@10")
    click.echo(f"{summary['eval_split']}: nDCG@10 {nd:.4f}" if nd is not None else "no rank metrics")
    if cal.get("threshold") is not None:
        click.echo(f"threshold {cal['threshold']:.4f}: false-evidence rate {cal['false_evidence_rate']:.3f}, "
                   f"answer rate {cal['answer_rate_has_evidence']:.3f} (calibrated on {summary['eval_split']})")
    click.echo(f"trained in {summary['train_seconds']:.0f}s; checkpoint: {output} "
               f"(evaluate: rrbench run --reranker {output} --split dev_final)")
