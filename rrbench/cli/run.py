"""``rrbench run``: evaluate one configuration on a task split and write its result record."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from rrbench.models.knobs import parse_knobs
from rrbench.pipeline.runner import (
    THRESHOLD_WORDS,
    RunConfig,
    execute,
    execute_tasks,
    for_tasks,
    load_config_file,
)
from rrbench.util.errors import UsageError
from rrbench.util.progress import set_quiet
from rrbench.util.text import fmt_number


@click.command()
@click.option("--task", default="scifact-evidence", show_default=True, help="Task id or path to a task directory.")
@click.option("--tasks", "tasks_text", default=None,
              help="Comma-separated tasks (A,B): one record per task with a shared run id; per-task settings come "
                   "from the --config file's per_task map. No 'all': name them.")
@click.option("--split", default="dev_select", show_default=True)
@click.option("--retriever", default=("bm25",), show_default=True, multiple=True,
              help="Candidate generator id; repeat it and add --fusion to fuse several retrievers.")
@click.option("--fusion", default=None, help="Fusion method for several --retriever: rrf or weighted.")
@click.option("--rrf-k", "rrf_k", default=60.0, show_default=True, type=float, help="RRF constant k0 (> 0).")
@click.option("--alpha", default=0.5, show_default=True, type=float,
              help="Weighted fusion: weight of the first --retriever (the others share 1-alpha).")
@click.option("--norm", default="minmax", show_default=True, type=click.Choice(["minmax", "zscore", "rank"]),
              help="Weighted fusion: per-query score normalisation.")
@click.option("--context", default=0, show_default=True, type=int,
              help="Neighbouring sentences each side read with a candidate (the ranked unit stays the sentence).")
@click.option("--reranker", default=("none",), show_default=True, multiple=True,
              help="Reranker id/alias, hub id or local checkpoint; 'none' evaluates the retriever alone. Repeat it "
                   "for a score-level ensemble (see --ensemble-weight).")
@click.option("--model-path", default=None, help="Local weights to use with the --reranker spec's template and options.")
@click.option("--top-k-retriever", "top_k_retriever", default=100, show_default=True, type=int,
              help="Candidate pool size K (capped at the candidates in scope).")
@click.option("--top-k-rerank", "top_k_rerank", default=20, show_default=True, type=int,
              help="How many of the pool's best candidates the reranker scores.")
@click.option("--max-length", default=None, type=int, help="Token limit per pair (default: the model's spec).")
@click.option("--threshold", default=None,
              help="Decision threshold: a number (on the calibrated probability when --calibrator is set), "
                   "'checkpoint' (the one a trained checkpoint carries), 'fit' (best balanced accuracy on "
                   "--calibrate-on) or 'max-fe' (the lowest one whose FE rate on --calibrate-on is within "
                   "--threshold-max-fe). Default: 0.5 for probabilities, 0 for logits, none for cosine/BM25.")
@click.option("--threshold-max-fe", "threshold_max_fe", default=None, type=float,
              help="--threshold max-fe: the false-evidence budget the threshold is fitted to.")
@click.option("--calibrator", default="none", show_default=True,
              help="Calibrator of the decision (`rrbench list calibrators`): platt, temperature, isotonic, none.")
@click.option("--calibrate-on", "calibrate_on", default=None,
              help="Split the calibrator / fitted threshold is fitted on (never the evaluated split, except with "
                   "--cross-fit).")
@click.option("--calibrate-task", "calibrate_task", default=None,
              help="Task whose --calibrate-on split the decision is fitted on (default: --task); the record and "
                   "the system name say so.")
@click.option("--cross-fit", "cross_fit", default=None, type=int,
              help="Fit calibrator/threshold on the evaluated split itself by grouped K-fold cross-fitting.")
@click.option("--abstain", default="max", show_default=True, type=click.Choice(["max", "margin"]),
              help="Abstention policy: the best score, or its margin over the second best, against the threshold.")
@click.option("--ensemble-weight", "ensemble_weights", multiple=True, type=float,
              help="One weight per --reranker for an ensemble (default: equal weights).")
@click.option("--ensemble-norm", "ensemble_norm", default="minmax", show_default=True,
              type=click.Choice(["minmax", "zscore"]), help="Per-query normalisation of ensemble members for ranking.")
@click.option("--interpolate", default=0.0, show_default=True, type=float,
              help="Weight beta of the retriever score mixed into the reranker score (0: rerank only).")
@click.option("--interpolate-norm", "interpolate_norm", default="minmax", show_default=True,
              type=click.Choice(["minmax", "zscore"]), help="Per-query normalisation used by --interpolate.")
@click.option("--seed", default=13, show_default=True, type=int, help="Seed of the grouped --cross-fit folds.")
@click.option("--config", "config_file", default=None,
              help="YAML/JSON file of run options (e.g. a sweep's best.yaml); flags given here override it.")
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--device", default=None, help="cpu, cuda, cuda:1, mps (default: cuda if available).")
@click.option("--dtype", default="float32", show_default=True,
              type=click.Choice(["float32", "bfloat16", "float16", "int8", "auto"]),
              help="auto: bf16 where native (AVX512_BF16/AMX CPU, GPU), fp16 on GPUs without bf16, else fp32.")
@click.option("--runtime", default="torch", show_default=True,
              help="Cross-encoder inference runtime: torch, onnx (ONNX Runtime) or openvino; exports are cached.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model repositories to run their own code.")
@click.option("--instruction", default=None,
              help="Instruction-aware rerankers: a named variant (see docs/rerankers.md) or free text.")
@click.option("--reranker-option", "reranker_option", multiple=True, metavar="KEY=VALUE",
              help="Backend knob, repeatable: group_size=64, packing=strided, cutoff_layers=28, "
                   "implementation=flag, template='...{query}...{document}'.")
@click.option("--retriever-option", "retriever_option", multiple=True, metavar="KEY=VALUE",
              help="Retriever option declared by its spec, repeatable: k1=1.2; with several --retriever, "
                   "RETRIEVER:KEY=VALUE (see `rrbench list retrievers --json` for the declared options).")
@click.option("--fusion-option", "fusion_option", multiple=True, metavar="KEY=VALUE",
              help="Option of the --fusion method, repeatable (e.g. k0=20); overrides --rrf-k/--alpha/--norm.")
@click.option("--on-oom", "on_oom", default="stop", show_default=True, type=click.Choice(["stop", "fallback"]),
              help="Reranker out of memory at batch size 1: stop, or fall back to the retriever ranking "
                   "(warned, recorded in the manifest).")
@click.option("--output", default=None, help="Output directory (default: runs/<timestamp>-<hash>).")
@click.option("--retriever-model-path", default=None,
              help="Local weights for the --retriever spec (--model-path does this when --reranker is none).")
@click.option("--cache-dir", default=None, envvar="RRBENCH_CACHE",
              help="Score cache directory (default: $RRBENCH_CACHE or ~/.cache/rrbench).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the score cache.")
@click.option("--quiet", is_flag=True, help="No progress bars (nor, off a terminal, progress lines).")
@click.option("--final", is_flag=True,
              help="Allow --split test: the one-time confirmation of a configuration selected on the dev splits "
                   "(recorded in leaderboard/test-ledger.jsonl; a second use is refused).")
def run(quiet: bool, trust_remote_code: bool, no_cache: bool, reranker_option: tuple[str, ...],
        retriever_option: tuple[str, ...], fusion_option: tuple[str, ...], config_file: str | None,
        tasks_text: str | None, **options: Any) -> None:
    """Evaluate a retriever (+ optional rerankers) on a task split and write results.json, run.trec, qrels.trec."""

    ctx = click.get_current_context()
    for name, given, flag, colon in (("retriever_options", retriever_option, "--retriever-option", True),
                                     ("fusion_options", fusion_option, "--fusion-option", False)):
        if given:  # only when given, so a --config file's value stays otherwise
            options[name] = parse_knobs(given, flag, keep_colon=colon)
    if tasks_text is not None and ctx.get_parameter_source("task") not in (ParameterSource.DEFAULT, None):
        raise UsageError("give --task or --tasks, not both")
    config = run_config_from_cli(ctx, options, config_file, quiet, trust_remote_code, no_cache, reranker_option)
    if tasks_text is None:
        if config.per_task:
            raise UsageError(f"{config_file}: per_task applies to rrbench run --tasks only")
        _print_summary(execute(config))
        return
    configs = for_tasks(config, [t.strip() for t in tasks_text.split(",") if t.strip()])
    for record in execute_tasks(configs):
        _print_summary(record)


def _parse_threshold(value: Any) -> float | str | None:
    if value is None or isinstance(value, float):
        return value
    text = str(value).strip()
    if text in THRESHOLD_WORDS:
        return text
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--threshold must be a number, 'checkpoint', 'fit' or 'max-fe', got {value!r}") from None


def run_config_from_cli(ctx: click.Context, options: dict[str, Any], config_file: str | None, quiet: bool,
                        trust_remote_code: bool, no_cache: bool, reranker_option: tuple[str, ...]) -> Any:
    """A RunConfig from ``rrbench run`` flags, on top of a ``--config`` file when given (explicit flags win)."""

    if quiet:
        set_quiet()
    extra = {"trust_remote_code": True} if trust_remote_code else {}
    extra.update(parse_knobs(reranker_option))
    if (options.get("cache_dir") or "").strip().lower() in {"off", "0", "none", "false", "no"}:
        options["cache_dir"], no_cache = None, True  # RRBENCH_CACHE=off
    given = {name for name in options if name.endswith("_options") or
             ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)}
    retrievers = tuple(options.pop("retriever"))
    rerankers = tuple(options.pop("reranker"))
    options["threshold"] = _parse_threshold(options.get("threshold"))
    from_file = {str(k).replace("-", "_"): v for k, v in (load_config_file(config_file) if config_file else {}).items()}
    flags = {**options, "retriever": retrievers, "reranker": rerankers}
    values = {name: (value if name in given or name not in from_file else from_file[name])
              for name, value in flags.items()}
    values.update({k: v for k, v in from_file.items() if k not in flags})  # options with no flag (selected_on...)
    values["threshold"] = _parse_threshold(values.get("threshold"))
    values["reranker_options"] = {**dict(values.get("reranker_options") or {}), **extra}
    values["show_progress"] = False if quiet else None
    values["use_cache"] = not no_cache
    values["final"] = bool(options.get("final"))  # only the flag: a configuration file cannot unlock the test split
    config = RunConfig.from_mapping(values, config_file or "rrbench run")
    config.validate(explicit=given)
    return config


def _throughput(provenance: dict[str, Any]) -> str:
    """The model's speed as the record measured it: model-scored pairs over model time, never cache look-ups."""
    rate, pairs = provenance.get("pairs_per_s"), provenance.get("pairs_scored")
    cache = provenance.get("cache") or {}
    if not pairs:
        return ""
    if not rate:
        return " (all from the score cache)" if cache.get("enabled") and cache.get("hits") else ""
    if cache.get("enabled") and cache.get("hits"):
        return f" ({cache.get('computed')} by the model at {rate:.1f} pairs/s, the rest from the score cache)"
    return f" at {rate:.1f} pairs/s"


def _print_summary(record: dict[str, Any]) -> None:
    claims, metrics, provenance = record["config"], record["metrics"], record["provenance"]
    click.echo(f"task {claims['task']['id']}@{claims['task']['version']}  split {claims['split']}  "
               f"{record['system']}")
    keys = [k for k in metrics if k.startswith(("nDCG", "RR", "R@"))] + ["false_evidence_rate"]
    header = " | ".join(f"{k:>11}" for k in keys)
    click.echo(header)
    click.echo(" | ".join(f"{fmt_number(metrics.get(k)):>11}" for k in keys))
    decision = record["decision"]
    click.echo(f"queries: {metrics['queries_has_evidence']} with evidence, {metrics['queries_no_evidence']} without;"
               f" threshold {fmt_number(decision['threshold'])} ({decision['source']})")
    click.echo(f"pairs scored {provenance['pairs_scored']}{_throughput(provenance)}; "
               f"wall {provenance['wall_time_s']:.1f}s; results in {record['output_dir']}")
    cache = provenance.get("cache") or {}
    if cache.get("enabled"):
        click.echo(f"score cache: {cache['hits']} hits, {cache['misses']} misses, "
                   f"{cache['model_calls']} model calls")
