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

from rrbench import __version__
from rrbench.errors import PluginError, UsageError
from rrbench.io import atomic_dir, atomic_write_text, canonical_hash, strict_json_dumps
from rrbench.manifest import hardware, package_versions, peak_rss_mb
from rrbench.metrics import RankedQuery, evaluate
from rrbench.specs import NATURAL_THRESHOLDS
from rrbench.tasks import Query, Task, get_task
from rrbench.candidates import retrieve
from rrbench.scoring import rerank
from rrbench.trec import final_ranking, qrels_lines, run_lines

SCHEMA_VERSION = 1
NO_RERANKER = "none"


@dataclass
class RunConfig:
    """Everything ``rrbench run`` accepts. Defaults make ``rrbench run --reranker X`` a complete command."""

    reranker: str = NO_RERANKER
    task: str = "scifact-evidence"
    split: str = "dev_select"
    retriever: str = "bm25"
    top_k_retriever: int = 100
    top_k_rerank: int = 20
    max_length: int | None = None
    threshold: float | None = None
    batch_size: int = 32
    device: str | None = None
    dtype: str = "float32"
    model_path: str | None = None
    output: str | None = None
    seed: int = 13
    runs_dir: str = "runs"
    show_progress: bool | None = None
    reranker_options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
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
    parts = ["rrbench", "run", "--task", config.task, "--split", config.split, "--retriever", config.retriever,
             "--reranker", config.reranker, "--top-k-retriever", str(config.top_k_retriever),
             "--top-k-rerank", str(config.top_k_rerank)]
    if config.model_path:
        parts += ["--model-path", config.model_path]
    if config.max_length:
        parts += ["--max-length", str(config.max_length)]
    if config.threshold is not None:
        parts += ["--threshold", repr(config.threshold)]
    if config.dtype != "float32":
        parts += ["--dtype", config.dtype]
    return shlex.join(parts)


def decide_threshold(config: RunConfig, score_kind: str | None) -> tuple[float | None, str]:
    if config.threshold is not None:
        return float(config.threshold), "cli"
    if score_kind in NATURAL_THRESHOLDS:
        return NATURAL_THRESHOLDS[score_kind], f"natural boundary of {score_kind} scores"
    return None, f"none: {score_kind} scores have no natural decision boundary (pass --threshold)"


def execute(config: RunConfig) -> dict[str, Any]:
    """Run one evaluation and write its output folder; returns the result record."""
    from rrbench.models import load_reranker
    from rrbench.retrievers import load_retriever

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
                                 **config.reranker_options)
    retriever = load_retriever(config.retriever, device=config.device)

    pools = retrieve(task, queries, retriever, config.top_k_retriever)
    rerank_started = time.perf_counter()
    rerank_scores = (rerank(task, queries, pools, reranker, config.top_k_rerank, config.show_progress)
                     if reranker is not None and config.top_k_rerank > 0 else None)
    rerank_seconds = time.perf_counter() - rerank_started
    pairs = int(sum(len(s) for s in rerank_scores)) if rerank_scores is not None else 0

    results: list[QueryResult] = []
    for i, (query, (pool, retr_scores)) in enumerate(zip(queries, pools)):
        head_scores = rerank_scores[i] if rerank_scores is not None else None
        ranked, scores = final_ranking(pool, head_scores, retr_scores)
        decision = head_scores if head_scores is not None else retr_scores
        results.append(QueryResult(query, ranked, scores, decision))

    score_kind = reranker.score_kind if reranker is not None else retriever.score_kind
    threshold, threshold_source = decide_threshold(config, score_kind)
    ranked_queries = []
    for r in results:
        judged = task.qrels.get(r.query.query_id, {})
        ranked_queries.append(RankedQuery(r.query.query_id, task.relevance(r.query, r.ranked),
                                          np.asarray(list(judged.values()), dtype=np.float64),
                                          r.decision_scores))
    metrics, per_query = evaluate(ranked_queries, pool_k=config.top_k_retriever, threshold=threshold)

    components = {"retriever": retriever.describe(),
                  "reranker": reranker.describe() if reranker is not None else None}
    hashed = {
        "task": {"id": task.id, "version": task.version, "data_sha256": task.data_sha256},
        "split": config.split,
        "retriever": {k: components["retriever"][k] for k in ("id", "revision", "options")},
        "reranker": None if reranker is None else {
            "id": reranker.spec.id, "revision": reranker.revision, "weights_path": reranker.weights_path,
            "max_length": config.max_length or reranker.spec.max_length, "dtype": config.dtype,
            "options": {k: v for k, v in reranker.options.extra.items()}},
        "top_k_retriever": config.top_k_retriever,
        "top_k_rerank": config.top_k_rerank,
        "threshold": threshold,
    }
    config_hash = canonical_hash(hashed)
    wall = time.perf_counter() - started
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "metrics": metrics,
        "per_query": per_query,
        "manifest": {
            "rrbench_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "task": {"id": task.id, "version": task.version, "data_sha256": task.data_sha256,
                     "scope": task.spec.scope, "main_score": task.spec.main_score},
            "split": config.split,
            "components": components,
            "options": {"top_k_retriever": config.top_k_retriever, "top_k_rerank": config.top_k_rerank,
                        "max_length": config.max_length, "batch_size": config.batch_size,
                        "device": config.device, "dtype": config.dtype},
            "threshold": {"value": threshold, "source": threshold_source, "score_kind": score_kind},
            "metric_notes": "rank metrics (nDCG@10, RR@10, R@k) average over has-evidence queries; "
                            "false_evidence_rate over no-evidence queries",
            "config": hashed,
            "config_hash": config_hash,
            "seed": config.seed,
            "packages": package_versions(),
            "hardware": hardware(),
            "wall_time_s": round(wall, 3),
            "rerank_time_s": round(rerank_seconds, 3),
            "pairs_scored": pairs,
            "pairs_per_s": round(pairs / rerank_seconds, 2) if pairs and rerank_seconds > 0 else None,
            "peak_rss_mb": peak_rss_mb(),
            "command": reproduce_command(config),
        },
    }
    out_dir = Path(config.output) if config.output else Path(config.runs_dir) / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{config_hash[:8]}")
    write_run_dir(out_dir, task, results, record, tag=_run_tag(config))
    record["output_dir"] = str(out_dir)
    return record


def _run_tag(config: RunConfig) -> str:
    name = config.reranker if config.reranker != NO_RERANKER else config.retriever
    return "rrbench-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]


def write_run_dir(out_dir: Path, task: Task, results: Sequence[QueryResult], record: dict[str, Any],
                  tag: str) -> None:
    run_text, qrels_text = [], []
    for r in results:
        run_text += run_lines(r.query.query_id, (task.docno(int(i)) for i in r.ranked), r.scores, tag)
        judged = task.qrels.get(r.query.query_id, {})
        qrels_text += qrels_lines(r.query.query_id, {
            task.docno(task.global_index(r.query.post_id, s)): g for s, g in sorted(judged.items())})
    body = strict_json_dumps(record)
    with atomic_dir(out_dir) as tmp:
        atomic_write_text(tmp / "run.trec", "\n".join(run_text) + "\n")
        atomic_write_text(tmp / "qrels.trec", "\n".join(qrels_text) + ("\n" if qrels_text else ""))
        atomic_write_text(tmp / "results.json", body)


def config_as_dict(config: RunConfig) -> dict[str, Any]:
    return asdict(config)
