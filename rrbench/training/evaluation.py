"""In-training evaluation on the selection split, and decision-threshold calibration on no-evidence queries.

During training every sentence of each evaluation query's post is scored (posts are short, so this is the
reranking the final model will do on a full candidate pool) and scored with :func:`rrbench.metrics.evaluate`, the
same metric code as ``rrbench run``. The evaluator appends one JSON line per evaluation to ``train_metrics.jsonl`` so
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
from typing import Any

import numpy as np

from rrbench.metrics import RankedQuery, evaluate, safe_float
from rrbench.tasks import Query, Task
from rrbench.training.data import doc_text, query_text


def score_split(model, task: Task, queries: Sequence[Query], instruction: str | None, context_window: int,
                batch_size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query: ``(global ids of its post, raw scores)``; raw means no activation (logits/log-odds)."""
    import torch

    pools = [task.candidates(q) for q in queries]
    pairs = [(query_text(q, instruction), doc_text(task, int(i), context_window)) for q, pool in zip(queries, pools)
             for i in pool]
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        flat = np.asarray(model.predict(pairs, batch_size=batch_size, activation_fn=torch.nn.Identity(),
                                        show_progress_bar=False, convert_to_numpy=True), dtype=np.float64)
    if was_training:
        model.train()
    flat = flat.reshape(len(pairs), -1)[:, -1] if flat.ndim > 1 else flat
    bounds = np.cumsum([0] + [len(p) for p in pools])
    return [(pool, flat[bounds[i]:bounds[i + 1]]) for i, pool in enumerate(pools)]


def ranked_queries(task: Task, queries: Sequence[Query], scored: Sequence[tuple[np.ndarray, np.ndarray]]
                   ) -> list[RankedQuery]:
    out = []
    for query, (ids, scores) in zip(queries, scored):
        order = np.lexsort((ids, -scores))
        judged = task.qrels.get(query.query_id, {})
        out.append(RankedQuery(query.query_id, task.relevance(query, ids[order]),
                               np.asarray(list(judged.values()), dtype=np.float64), scores[order]))
    return out


def calibrate_threshold(rows: Sequence[RankedQuery]) -> dict[str, Any]:
    """The threshold maximising balanced accuracy of answer / abstain over has- and no-evidence queries."""
    best = np.asarray([float(np.max(r.decision_scores)) if r.decision_scores is not None and len(r.decision_scores)
                       else -np.inf for r in rows])
    has = np.asarray([r.has_evidence for r in rows])
    if has.all() or (~has).all():
        return {"threshold": None, "reason": "the evaluation split needs both has- and no-evidence queries"}
    candidates = np.unique(best[np.isfinite(best)])
    candidates = np.concatenate([candidates, [candidates[-1] + 1.0]])  # also "never answer"
    answer_rate = np.asarray([(best[has] >= t).mean() for t in candidates])
    fer = np.asarray([(best[~has] >= t).mean() for t in candidates])
    balanced = (answer_rate + (1.0 - fer)) / 2.0
    j = int(np.argmax(balanced))
    # Midpoint to the next lower candidate: the same decisions on this split, more robust on the next one.
    lower = candidates[j - 1] if j > 0 else candidates[j] - 1.0
    threshold = float((candidates[j] + lower) / 2.0)
    return {"threshold": threshold, "false_evidence_rate": float(fer[j]),
            "answer_rate_has_evidence": float(answer_rate[j]), "balanced_accuracy": float(balanced[j]),
            "queries_has_evidence": int(has.sum()), "queries_no_evidence": int((~has).sum()),
            "rule": "max balanced accuracy of answer/abstain; midpoint below the chosen score"}


def evaluate_model(model, task: Task, split: str, instruction: str | None = None, context_window: int = 0,
                   batch_size: int = 64, calibrate: bool = False) -> dict[str, Any]:
    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    rows = ranked_queries(task, queries, score_split(model, task, queries, instruction, context_window, batch_size))
    metrics, _ = evaluate(rows)
    out: dict[str, Any] = {k: safe_float(v) if isinstance(v, float) else v for k, v in metrics.items()
                           if k in ("nDCG@10", "RR@10", "R@10", "queries", "queries_has_evidence",
                                    "queries_no_evidence")}
    if calibrate:
        out["calibration"] = calibrate_threshold(rows)
    return out


def make_evaluator(task: Task, split: str, log_path: Path, instruction: str | None, context_window: int,
                   batch_size: int = 64):
    """A sentence-transformers evaluator reporting nDCG@10 on ``split`` (primary metric for early stopping)."""
    from sentence_transformers.base.evaluation import BaseEvaluator

    class SplitEvaluator(BaseEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.greater_is_better = True
            self.primary_metric = "ndcg@10"

        def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
            started = time.perf_counter()
            result = evaluate_model(model, task, split, instruction, context_window, batch_size)
            metrics = {"ndcg@10": result["nDCG@10"] or 0.0, "rr@10": result["RR@10"] or 0.0,
                       "r@10": result["R@10"] or 0.0}
            line = {"split": split, "epoch": epoch, "step": steps, **result,
                    "eval_time_s": round(time.perf_counter() - started, 2)}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, allow_nan=False) + "\n")
            return metrics

    return SplitEvaluator()
