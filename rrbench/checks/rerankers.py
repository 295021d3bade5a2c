"""Conformance of a reranker (``rrbench check NAME``) on the built-in mini task, for zoo models and plugins.

What rrbench relies on when it scores, caches and compares rerankers, checked on real forward passes:

1. one finite score per candidate (no NaN/inf, no missing or extra scores);
2. determinism: scoring the same input twice gives the same scores;
3. batch-size invariance (pointwise): batch size 1 gives the scores of the configured batch size;
4. order invariance (pointwise): scoring the pairs in reverse order gives the same score per pair.

3 and 4 matter because the engine batches pairs of many queries, sorted by length, and the score cache reuses a pair's
score in any later batch. Listwise models legitimately depend on their neighbours, so 3 and 4 do not apply to them.
Differences are reported against a tolerance (default 1e-4 absolute, loose enough for bf16/fp16 kernels that pick
different algorithms per batch shape); ``rrbench check`` exits 1 when a check fails.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker
from rrbench.components.calls import component_label, running
from rrbench.components.score_checks import check_scores
from rrbench.models.factory import load_reranker
from rrbench.tasks.mini import make_mini_task
from rrbench.tasks.resolve import load_task_dir
from rrbench.util.errors import RRBenchError


def _pairs(task: Any) -> list[tuple[str, list[str]]]:
    out = []
    for query in sorted(task.queries.values(), key=lambda q: q.query_id):
        out.append((query.text, [task.sentences[int(i)] for i in task.candidates(query)]))
    return out


def _score(reranker: Any, groups: list[tuple[str, list[str]]], reverse: bool = False) -> list[Any]:
    """Every group's scores, through the guarded call: an exception or a bad score is one line naming the plugin."""
    name = component_label(reranker)
    if isinstance(reranker, ListwiseReranker):
        out = []
        for q, docs in groups:
            with running(name, "score_list()"):
                raw = reranker.score_list(q, docs)
            out.append(check_scores(raw, len(docs), name))
        return out
    qs = [q for q, docs in groups for _ in docs]
    ds = [d for _, docs in groups for d in docs]
    order = np.arange(len(qs))[::-1] if reverse else np.arange(len(qs))
    scores = np.empty(len(qs), dtype=np.float64)
    with running(name, "score_pairs()"):
        raw = reranker.score_pairs([qs[i] for i in order], [ds[i] for i in order])
    scores[order] = check_scores(raw, len(qs), name)
    bounds = np.cumsum([0] + [len(docs) for _, docs in groups])
    return [scores[bounds[i]:bounds[i + 1]] for i in range(len(groups))]


def _max_diff(a: list[Any], b: list[Any]) -> float:
    return float(max((np.abs(x - y).max() for x, y in zip(a, b, strict=True) if len(x)), default=0.0))


def check_reranker(name: str, tolerance: float = 1e-4, **load_options: Any) -> dict[str, Any]:
    """Run the checks; returns a JSON-ready report (``ok`` is the overall verdict)."""

    with tempfile.TemporaryDirectory(prefix="rrbench-check-") as tmp:
        task = load_task_dir(make_mini_task(Path(tmp) / "mini-task"))
    groups = _pairs(task)
    reranker = load_reranker(name, **load_options)
    checks: list[dict[str, Any]] = []

    def record(check: str, ok: bool, detail: str, diff: float | None = None) -> None:
        checks.append({"check": check, "ok": bool(ok), "detail": detail, "max_abs_diff": diff})

    try:
        first = _score(reranker, groups)
    except RRBenchError as exc:
        record("one finite score per candidate", False, str(exc))
        return {"reranker": reranker.spec.id, "ok": False, "tolerance": tolerance, "checks": checks}
    n = sum(len(docs) for _, docs in groups)
    record("one finite score per candidate", True, f"{n} candidates over {len(groups)} queries")
    diff = _max_diff(first, _score(reranker, groups))
    record("deterministic", diff <= tolerance, "same input scored twice", diff)
    if isinstance(reranker, ListwiseReranker):
        record("batch-size invariant", True, "n/a: listwise scores depend on the candidate list")
        record("candidate-order invariant", True, "n/a: listwise scores depend on the candidate list")
    else:
        diff = _max_diff(first, _score(reranker, groups, reverse=True))
        record("candidate-order invariant", diff <= tolerance, "pairs scored in reverse order", diff)
        single = load_reranker(name, **{**load_options, "batch_size": 1})
        diff = _max_diff(first, _score(single, groups))
        record("batch-size invariant", diff <= tolerance,
               f"batch size 1 vs {reranker.options.batch_size}", diff)
    return {"reranker": reranker.spec.id, "interaction": reranker.interaction, "score_kind": reranker.score_kind,
            "ok": all(c["ok"] for c in checks), "tolerance": tolerance, "checks": checks}
