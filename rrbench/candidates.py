"""First stage: candidate pools per query from a retriever (within a post, or over the whole task corpus)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.scoring import check_scores
from rrbench.tasks import Query, Task


def retrieve(task: Task, queries: Sequence[Query], retriever, top_k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate pools per query: ``(global ids in retriever order, retriever scores)``, at most ``top_k`` each."""
    if task.spec.scope == "post":
        posts = sorted({q.post_id for q in queries}, key=task.post_index.get)
        ids = np.concatenate([np.arange(*task.post_slice(p)) for p in posts])
    else:
        ids = np.arange(len(task.sentences))
    local = np.full(len(task.sentences), -1, dtype=np.int64)
    local[ids] = np.arange(len(ids))
    retriever.index([task.sentences[i] for i in ids])
    name = f"retriever {retriever.spec.id!r}"
    pools = []
    for query in queries:
        candidates = task.candidates(query)
        if task.spec.scope == "post":
            scores = check_scores(retriever.score(query.text, local[candidates]), len(candidates), name)
            order = np.lexsort((candidates, -scores))[:top_k]
            pools.append((candidates[order], scores[order]))
        else:
            top, scores = retriever.search(query.text, top_k)
            scores = check_scores(scores, len(top), name)
            pools.append((ids[np.asarray(top)], scores))
    return pools
