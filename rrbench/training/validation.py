"""In-training evaluation on the selection split, and decision-threshold calibration on no-evidence queries.

During training the selection split is evaluated through the same path as ``rrbench run`` with its default
generator (BM25, pool of 100: within a post, the whole post) and every pool candidate reranked: the same candidate
pools (:func:`rrbench.pipeline.candidates.generate`), texts and scoring loop (:func:`rrbench.pipeline.rerank.rerank`, here with the
in-memory model), final ranking and tie-breaking (:func:`rrbench.measures.trec.final_ranking`) and metrics
(:func:`rrbench.measures.metrics.evaluate`). So the nDCG@10 that selects a checkpoint, and that Tier B's pruners see, is
the one ``rrbench run --reranker CHECKPOINT --top-k-rerank 100`` reports. The evaluator appends one JSON line per evaluation to ``train_metrics.jsonl`` so
a run's learning curve survives a crash.

Calibration: a query is *answered* when its best sentence scores at or above the threshold. No-evidence queries
should not be answered (false evidence), has-evidence queries should. The threshold is the one that maximises the
balanced accuracy of that decision on the evaluation split; its false-evidence rate and answer rate are recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from rrbench.measures.metrics import RankedQuery, evaluate, safe_float
from rrbench.measures.names import RANK_METRICS
from rrbench.measures.trec import final_ranking
from rrbench.pipeline.candidates import GeneratorConfig, generate
from rrbench.pipeline.decide import fit_threshold
from rrbench.pipeline.rerank import rerank
from rrbench.tasks.resolve import Query, Task

#: The candidate generator and pool of ``rrbench run``'s defaults: within a post the pool is the whole post, ordered by
#: BM25 (which then only breaks ties), and every candidate of it is reranked.
EVAL_RETRIEVER = "bm25"
EVAL_POOL = 100


class _InMemoryReranker:
    """The model being trained, seen through the pointwise reranker interface that :func:`rrbench.pipeline.rerank.rerank`
    calls, so in-training evaluation builds texts, pools, rankings and metrics exactly as ``rrbench run`` does."""

    def __init__(self, model: Any, instruction: str | None, batch_size: int) -> None:
        self.model, self.instruction = model, instruction
        self.spec = SimpleNamespace(id="model in training")
        self.options = SimpleNamespace(batch_size=batch_size)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        import torch  # lazy: torch costs seconds at start-up

        pairs = [(self._query(q), d) for q, d in zip(queries, documents, strict=True)]
        flat = np.asarray(self.model.predict(pairs, batch_size=self.options.batch_size,
                                             activation_fn=torch.nn.Identity(), show_progress_bar=False,
                                             convert_to_numpy=True), dtype=np.float64)
        return flat.reshape(len(pairs), -1)[:, -1] if flat.ndim > 1 else flat

    def _query(self, text: str) -> str:
        if not self.instruction:
            return text
        return self.instruction.replace("{query}", text) if "{query}" in self.instruction else \
            f"{self.instruction} {text}"


def eval_pools(task: Task, split: str, queries: Sequence[Query], context_window: int = 0) -> Any:
    """``rrbench run``'s default candidate pools for ``queries`` (computed once per evaluator, cached on disk)."""

    return generate(task, split, queries, GeneratorConfig((EVAL_RETRIEVER,), context=context_window), EVAL_POOL,
                    device="cpu").pools


def score_split(model: Any, task: Task, queries: Sequence[Query], instruction: str | None, context_window: int,
                batch_size: int, pools: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per query: ``(pool ids in retriever order, retriever scores, raw model scores of the pool)``.

    Raw means no activation (logits/log-odds). Scored through :func:`rrbench.pipeline.rerank.rerank`, the same code (texts,
    context) that ``rrbench run`` uses.
    """

    was_training = model.training
    model.eval()
    try:
        import torch  # lazy: torch costs seconds at start-up

        with torch.inference_mode():
            heads = rerank(task, queries, pools, _InMemoryReranker(model, instruction, batch_size), EVAL_POOL, False,
                           context=context_window)
    finally:
        if was_training:
            model.train()
    return [(pool, retr, head) for (pool, retr), head in zip(pools, heads, strict=True)]


def ranked_queries(task: Task, queries: Sequence[Query],
                   scored: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[RankedQuery]:
    """Rankings as ``rrbench run`` makes them (:func:`rrbench.measures.trec.final_ranking`); decisions use the raw scores."""

    out = []
    for query, (pool, retr, head) in zip(queries, scored, strict=True):
        ranked, _ = final_ranking(pool, head, retr)
        judged = task.qrels.get(query.query_id, {})
        out.append(RankedQuery(query.query_id, task.relevance(query, ranked),
                               np.asarray(list(judged.values()), dtype=np.float64), head))
    return out


def calibrate_threshold(rows: Sequence[RankedQuery]) -> dict[str, Any]:
    """The decision threshold with the best balanced accuracy of answer/abstain (rrbench.pipeline.decide.fit_threshold, the
    one implementation ``rrbench run --threshold fit`` uses too), over the best score of each query."""

    best = np.asarray([float(np.max(r.decision_scores)) if r.decision_scores is not None and len(r.decision_scores)
                       else -np.inf for r in rows])
    return fit_threshold(best, np.asarray([r.has_evidence for r in rows]))


def evaluate_model(model: Any, task: Task, split: str, instruction: str | None = None, context_window: int = 0,
                   batch_size: int = 64, calibrate: bool = False, pools: Any = None) -> dict[str, Any]:
    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    pools = pools if pools is not None else eval_pools(task, split, queries, context_window)
    rows = ranked_queries(task, queries, score_split(model, task, queries, instruction, context_window, batch_size,
                                                     pools))
    metrics, _ = evaluate(rows, pool_k=EVAL_POOL)
    out: dict[str, Any] = {k: safe_float(v) if isinstance(v, float) else v for k, v in metrics.items()
                           if k in ("nDCG@10", "RR@10", "R@10", "queries", "queries_has_evidence",
                                    "queries_no_evidence")}
    if calibrate:
        out["calibration"] = calibrate_threshold(rows)
    return out


def make_evaluator(task: Task, split: str, log_path: Path, instruction: str | None, context_window: int,
                   batch_size: int = 64) -> Any:
    """A sentence-transformers evaluator reporting nDCG@10 on ``split`` (primary metric for early stopping)."""
    from sentence_transformers.base.evaluation import BaseEvaluator  # lazy: heavy: pulls in torch

    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    pools = eval_pools(task, split, queries, context_window)

    class SplitEvaluator(BaseEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.greater_is_better = True
            self.primary_metric = "nDCG@10"

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
            started = time.perf_counter()
            result = evaluate_model(model, task, split, instruction, context_window, batch_size, pools=pools)
            # the record's own names (rrbench.measures.names); the Trainer logs them as eval_nDCG@10 ...
            metrics = {name: result[name] or 0.0 for name in RANK_METRICS}
            line = {"split": split, "epoch": epoch, "step": steps, **result,
                    "eval_time_s": round(time.perf_counter() - started, 2)}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, allow_nan=False) + "\n")
            return metrics

    return SplitEvaluator()
