"""Second stage: score each query's candidate head with a reranker, validating what the plugin returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ListwiseReranker
from rrbench.components.calls import component_label, running
from rrbench.components.score_checks import check_scores
from rrbench.pipeline.score_cache import CachedPointwiseReranker
from rrbench.tasks.resolve import Query, Task, candidate_text
from rrbench.util.progress import progress


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    return progress(total, desc, enabled, unit="pair")


def rerank(task: Task, queries: Sequence[Query], pools: list[tuple[np.ndarray, np.ndarray]], reranker: Any,
           top_k: int, progress: bool | None, context: int = 0, split: str = "") -> list[np.ndarray]:
    """Scores for the first ``top_k`` candidates of each pool (each read with ``context`` neighbours a side).

    A reranker cached in a shared store first fills its missing pairs through the store's fill queue
    (:meth:`rrbench.pipeline.score_cache.CachedPointwiseReranker.prefill`; ``split`` labels the units)."""

    name = component_label(reranker)
    heads = [pool[:top_k] for pool, _ in pools]
    if isinstance(reranker, ListwiseReranker):
        out = []
        with _progress(sum(len(h) for h in heads), f"reranking ({reranker.spec.id})", progress) as bar:
            for query, head in zip(queries, heads, strict=True):
                docs = [candidate_text(task, int(i), context) for i in head]
                with running(name, "score_list()"):
                    raw = reranker.score_list(query.text, docs)
                out.append(check_scores(raw, len(head), name))
                bar.update(len(head))
        return out
    q_texts = [q.text for q, head in zip(queries, heads, strict=True) for _ in head]
    d_texts = [candidate_text(task, int(i), context) for head in heads for i in head]
    prefill = getattr(reranker, "prefill", None) if isinstance(reranker, CachedPointwiseReranker) else None
    if prefill is not None:
        bounds = np.cumsum([0] + [len(h) for h in heads])
        groups = [list(zip(q_texts[bounds[i]:bounds[i + 1]], d_texts[bounds[i]:bounds[i + 1]], strict=True))
                  for i in range(len(heads))]
        with running(name, "score_pairs()"):
            prefill(groups, task.id, split, progress)
    scores = np.empty(len(q_texts), dtype=np.float64)
    chunk = max(256, reranker.options.batch_size * 8)
    with _progress(len(q_texts), f"reranking ({reranker.spec.id})", progress) as bar:
        for start in range(0, len(q_texts), chunk):
            stop = min(start + chunk, len(q_texts))
            with running(name, "score_pairs()"):
                raw = reranker.score_pairs(q_texts[start:stop], d_texts[start:stop])
            scores[start:stop] = check_scores(raw, stop - start, name)
            bar.update(stop - start)
    bounds = np.cumsum([0] + [len(h) for h in heads])
    return [scores[bounds[i]:bounds[i + 1]] for i in range(len(heads))]
