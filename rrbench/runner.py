"""``rrbench run``: task -> candidates -> reranking -> decision -> metrics -> result record.

The runner only wires stages together; each stage lives in its own module. Everything that can change a score is
folded into the config hash, and the output folder is written atomically (an interrupted run leaves nothing).
"""

from __future__ import annotations

import datetime as _dt
import math
import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.errors import UsageError
from rrbench.io import atomic_dir, atomic_write_text, strict_json_dumps
from rrbench.manifest import peak_rss_mb
from rrbench.record_builder import build_record, task_identity, with_optional
from rrbench.metrics import RankedQuery, evaluate
from rrbench.specs import NATURAL_THRESHOLDS
from rrbench.tasks import Query, Task, get_task
from rrbench.candidates import GeneratorConfig, generate, hashed_generator
from rrbench.scoring import rerank
from rrbench.trec import final_ranking, qrels_lines, run_lines
from rrbench.records import checkpoint_info, hashed_reranker_id, run_config_dict

NO_RERANKER = "none"


@dataclass
class RunConfig:
    """Everything ``rrbench run`` accepts. Defaults make ``rrbench run --reranker X`` a complete command."""

    reranker: str = NO_RERANKER
    task: str = "scifact-evidence"
    split: str = "dev_select"
    #: one retriever id, or several (then ``fusion`` combines them; see rrbench.candidates)
    retriever: str | tuple[str, ...] = "bm25"
    top_k_retriever: int = 100
    top_k_rerank: int = 20
    max_length: int | None = None
    threshold: float | None = None
    batch_size: int = 32
    device: str | None = None
    dtype: str = "float32"
    #: inference runtime of pointwise cross-encoders: torch, onnx or openvino (rrbench.models.runtimes)
    runtime: str = "torch"
    model_path: str | None = None
    output: str | None = None
    seed: int = 13
    runs_dir: str = "runs"
    show_progress: bool | None = None
    reranker_options: dict[str, Any] = field(default_factory=dict)
    #: weights for the retriever's spec (``--model-path`` applies here when there is no reranker)
    retriever_model_path: str | None = None
    #: score cache location (None: ``$RRBENCH_CACHE`` or ``~/.cache/rrbench``); ``use_cache=False`` bypasses it
    cache_dir: str | None = None
    use_cache: bool = True
    fusion: str | None = None
    rrf_k: float = 60
    alpha: float = 0.5
    norm: str = "minmax"
    #: neighbouring sentences each side that the retriever and reranker read with a candidate
    context: int = 0
    #: instruction variant name or free text for instruction-aware rerankers (resolved text is in the fingerprint)
    instruction: str | None = None
    #: reranker OOM at batch size 1: "stop" (error) or "fallback" (retriever ranking, warned and recorded)
    on_oom: str = "stop"
    #: ``--retriever-option``: ``{KEY: VALUE}`` for one retriever, ``{"RETRIEVER:KEY": VALUE}`` with several
    retriever_options: dict[str, Any] = field(default_factory=dict)
    #: ``--fusion-option``: options of the fusion method, over its spec defaults and the --rrf-k/--alpha/--norm flags
    fusion_options: dict[str, Any] = field(default_factory=dict)

    def retriever_ids(self) -> tuple[str, ...]:
        return (self.retriever,) if isinstance(self.retriever, str) else tuple(self.retriever)

    def generator(self) -> GeneratorConfig:
        """The candidate generator; fusion options come only from the flags of the chosen method."""
        options: dict[str, Any] = {}
        if self.fusion in ("rrf", "reciprocal-rank-fusion"):
            options = {"k0": self.rrf_k}
        elif self.fusion in ("weighted", "linear", "convex"):
            options = {"alpha": self.alpha, "norm": self.norm}
        from rrbench.candidates import split_retriever_options

        return GeneratorConfig(self.retriever_ids(), self.fusion, {**options, **self.fusion_options}, self.context,
                               split_retriever_options(self.retriever_ids(), self.retriever_options))

    def validate(self) -> None:
        from rrbench.models.runtimes import check_runtime

        self.runtime = check_runtime(self.runtime)  # before any model loads: unknown name, missing package
        if self.on_oom not in ("stop", "fallback"):
            raise UsageError(f"--on-oom must be stop or fallback, got {self.on_oom!r}")
        if self.top_k_retriever < 1:
            raise UsageError(f"--top-k-retriever must be >= 1, got {self.top_k_retriever}")
        if self.top_k_rerank < 0:
            raise UsageError(f"--top-k-rerank must be >= 0, got {self.top_k_rerank}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise UsageError(f"--max-length must be >= 8, got {self.max_length}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise UsageError("--threshold must be a finite number")


@dataclass
class QueryResult:
    query: Query
    ranked: np.ndarray  # global sentence ids, final order
    scores: np.ndarray  # strictly decreasing, aligned with ranked
    decision_scores: np.ndarray | None  # scores the threshold applies to


def reproduce_command(config: RunConfig) -> str:
    parts = ["rrbench", "run", "--task", config.task, "--split", config.split,
             *(arg for r in config.retriever_ids() for arg in ("--retriever", r)),
             *(["--fusion", config.fusion] if config.fusion else []),
             *(["--rrf-k", repr(config.rrf_k)] if config.generator().fusion_options.get("k0") else []),
             *(["--alpha", repr(config.alpha), "--norm", config.norm]
               if "alpha" in config.generator().fusion_options else []),
             *(["--context", str(config.context)] if config.context else []),
             *(arg for k, v in config.retriever_options.items() for arg in ("--retriever-option", f"{k}={v}")),
             *(arg for k, v in config.fusion_options.items() for arg in ("--fusion-option", f"{k}={v}")),
             "--reranker", config.reranker, "--top-k-retriever", str(config.top_k_retriever),
             "--top-k-rerank", str(config.top_k_rerank)]
    if config.model_path:
        parts += ["--model-path", config.model_path]
    if config.retriever_model_path and config.retriever_model_path != config.model_path:
        parts += ["--retriever-model-path", config.retriever_model_path]
    if config.max_length:
        parts += ["--max-length", str(config.max_length)]
    if config.threshold is not None:
        parts += ["--threshold", repr(config.threshold)]
    if config.dtype != "float32":
        parts += ["--dtype", config.dtype]
    if config.runtime != "torch":
        parts += ["--runtime", config.runtime]
    if config.instruction is not None:
        parts += ["--instruction", config.instruction]
    knobs = dict(config.reranker_options)
    if knobs.pop("trust_remote_code", False):
        parts.append("--trust-remote-code")
    for key, value in knobs.items():
        parts += ["--reranker-option", f"{key}={_knob_text(value)}"]
    if config.on_oom != "stop":
        parts += ["--on-oom", config.on_oom]
    return shlex.join(parts)


def _knob_text(value: Any) -> str:
    """A KEY=VALUE value that ``parse_knobs`` (YAML) reads back as the same value and type."""
    import json

    import yaml

    if isinstance(value, str):
        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        return value if same else json.dumps(value)
    return json.dumps(value)


def decide_threshold(config: RunConfig, score_kind: str | None) -> tuple[float | None, str]:
    if config.threshold is not None:
        return float(config.threshold), "cli"
    if score_kind in NATURAL_THRESHOLDS:
        return NATURAL_THRESHOLDS[score_kind], f"natural boundary of {score_kind} scores"
    return None, f"none: {score_kind} scores have no natural decision boundary (pass --threshold)"


def execute(config: RunConfig) -> dict[str, Any]:
    """Run one evaluation and write its output folder; returns the result record."""
    from rrbench.models import load_reranker

    config.validate()
    started = time.perf_counter()
    task = get_task(config.task)
    queries = sorted(task.split_queries(config.split), key=lambda q: q.query_id)
    if not queries:
        raise UsageError(f"task {task.id!r} split {config.split!r} has no queries")

    reranker = None
    if config.reranker != NO_RERANKER:
        reranker = load_reranker(config.reranker, model_path=config.model_path, device=config.device,
                                 max_length=config.max_length, batch_size=config.batch_size, dtype=config.dtype,
                                 instruction=config.instruction, runtime=config.runtime, **config.reranker_options)
    retriever_model_path = config.retriever_model_path or (
        config.model_path if config.reranker == NO_RERANKER else None)
    generator = config.generator()
    from rrbench.cache import open_cache, wrap

    cache = open_cache(config.cache_dir, config.use_cache) if reranker is not None else None
    if cache is not None:
        reranker = wrap(reranker, cache)

    candidates = generate(task, config.split, queries, generator, config.top_k_retriever, device=config.device,
                          use_cache=config.use_cache, model_path=retriever_model_path)
    pools = candidates.pools
    rerank_started = time.perf_counter()
    from rrbench.engine import RerankerOOMError

    rerank_fallback = None
    try:
        rerank_scores = (rerank(task, queries, pools, reranker, config.top_k_rerank, config.show_progress,
                                context=config.context)
                         if reranker is not None and config.top_k_rerank > 0 else None)
    except RerankerOOMError as exc:
        if config.on_oom != "fallback":
            raise
        import warnings

        warnings.warn(f"rrbench: {exc}; --on-oom fallback: using the retriever's ranking instead", RuntimeWarning,
                      stacklevel=1)
        rerank_scores = None
        rerank_fallback = {"reason": str(exc), "used": "retriever ranking"}
    rerank_seconds = time.perf_counter() - rerank_started
    pairs = int(sum(len(s) for s in rerank_scores)) if rerank_scores is not None else 0

    results: list[QueryResult] = []
    for i, (query, (pool, retr_scores)) in enumerate(zip(queries, pools)):
        head_scores = rerank_scores[i] if rerank_scores is not None else None
        ranked, scores = final_ranking(pool, head_scores, retr_scores)
        decision = head_scores if head_scores is not None else retr_scores
        results.append(QueryResult(query, ranked, scores, decision))

    score_kind = (reranker.score_kind if reranker is not None and rerank_fallback is None
                  else candidates.score_kind)
    threshold, threshold_source = decide_threshold(config, score_kind)
    ranked_queries = []
    for r in results:
        judged = task.qrels.get(r.query.query_id, {})
        ranked_queries.append(RankedQuery(r.query.query_id, task.relevance(r.query, r.ranked),
                                          np.asarray(list(judged.values()), dtype=np.float64),
                                          r.decision_scores))
    metrics, per_query = evaluate(ranked_queries, pool_k=config.top_k_retriever, threshold=threshold)

    components = {"retriever": candidates.describe,
                  "reranker": reranker.describe() if reranker is not None else None}
    checkpoint = checkpoint_info(reranker.weights_path) if reranker is not None else None
    reranker_id, fingerprint = None, None
    if reranker is not None:
        fingerprint = _fingerprint(reranker)
        # a local path never enters the hash or the name: a checkpoint is identified by its weights' sha256
        reranker_id = hashed_reranker_id(reranker.spec.id, components["reranker"], checkpoint, fingerprint)
        if reranker_id != reranker.spec.id:
            components["reranker"] = {**components["reranker"], "id": reranker_id, "given_as": reranker.spec.id}
    hashed = {
        "task": task_identity(task),
        "split": config.split,
        "retriever": hashed_generator(components["retriever"]),
        "reranker": None if reranker is None else {
            # the fingerprint hashes the weight files' contents (not their path), so the hash is machine-independent
            "id": reranker_id, "revision": reranker.revision, "fingerprint": fingerprint,
            "max_length": config.max_length or reranker.spec.max_length, "dtype": config.dtype,
            "options": {k: v for k, v in reranker.options.extra.items()}},
        "top_k_retriever": config.top_k_retriever,
        "top_k_rerank": config.top_k_rerank,
        "threshold": threshold,
    }
    with_optional(hashed, context=config.context or None)  # absent when 0, so older hashes stay what they were
    wall = time.perf_counter() - started
    record = build_record(
        task=task, split=config.split, metrics=metrics, per_query=per_query, config=hashed,
        components=components, command=reproduce_command(config),
        manifest={
            "options": {"top_k_retriever": config.top_k_retriever, "top_k_rerank": config.top_k_rerank,
                        "max_length": config.max_length, "batch_size": config.batch_size,
                        "device": config.device, "dtype": config.dtype},
            "threshold": {"value": threshold, "source": threshold_source, "score_kind": score_kind},
            "seed": config.seed,
            "wall_time_s": round(wall, 3),
            "rerank_time_s": round(rerank_seconds, 3),
            "pairs_scored": pairs,
            "pairs_per_s": round(pairs / rerank_seconds, 2) if pairs and rerank_seconds > 0 else None,
            "peak_rss_mb": peak_rss_mb(),
            "candidate_cache": candidates.cache_summary(),
            "run_config": run_config_dict(config),
            "cache": _cache_manifest(reranker, cache),
            # set when --on-oom fallback replaced the reranker by the retriever ranking; publish refuses such records
            "reranker_fallback": rerank_fallback,
            "checkpoint": checkpoint,
        })
    config_hash = record["manifest"]["config_hash"]
    if cache is not None:
        _throughput_without_hits(record["manifest"], rerank_seconds)
        cache.close()
    out_dir = Path(config.output) if config.output else Path(config.runs_dir) / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{config_hash[:8]}")
    write_run_dir(out_dir, task, results, record, tag=_run_tag(config))
    record["output_dir"] = str(out_dir)
    return record


def _fingerprint(reranker: Any) -> str:
    from rrbench.cache import model_fingerprint

    return getattr(reranker, "fingerprint", None) or model_fingerprint(reranker)[0]


def _cache_manifest(reranker: Any, cache: Any) -> dict[str, Any]:
    """Cache hits/misses of this run: a re-run of a finished configuration shows zero misses."""
    stats = getattr(reranker, "cache_stats", None)
    if cache is None or stats is None:
        reason = "no reranker" if reranker is None else ("disabled" if cache is None else "model not pinned")
        return {"enabled": False, "reason": reason}
    return {"enabled": True, "path": str(cache.path), "fingerprint": reranker.fingerprint, **stats.as_dict()}


def _throughput_without_hits(manifest: dict[str, Any], seconds: float) -> None:
    """pairs/s must measure the model, not cache look-ups: count only pairs the model scored (None if none)."""
    cache = manifest["cache"]
    if cache.get("enabled") and cache["hits"]:
        computed = cache["computed"]
        manifest["pairs_per_s"] = round(computed / seconds, 2) if computed and seconds > 0 else None
        manifest["pairs_per_s_note"] = f"{cache['hits']} of {manifest['pairs_scored']} scores came from the cache"


def _run_tag(config: RunConfig) -> str:
    name = config.reranker if config.reranker != NO_RERANKER else (
        (f"{config.fusion}-" if config.fusion else "") + "+".join(config.retriever_ids()))
    return "rrbench-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]


def write_run_dir(out_dir: Path, task: Task, results: Sequence[QueryResult], record: dict[str, Any],
                  tag: str) -> None:
    run_text, qrels_text = [], []
    for r in results:
        run_text += run_lines(r.query.query_id, (task.docno(int(i)) for i in r.ranked), r.scores, tag)
        qrels_text += qrels_lines(r.query.query_id, {
            task.docno(g): grade for g, grade in sorted(task.judged(r.query).items())})
    body = strict_json_dumps(record)
    with atomic_dir(out_dir) as tmp:
        atomic_write_text(tmp / "run.trec", "\n".join(run_text) + "\n")
        atomic_write_text(tmp / "qrels.trec", "\n".join(qrels_text) + ("\n" if qrels_text else ""))
        atomic_write_text(tmp / "results.json", body)


def config_as_dict(config: RunConfig) -> dict[str, Any]:
    return asdict(config)
