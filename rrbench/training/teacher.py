"""R5 distillation: a teacher's scores come from the score cache, never from a fresh forward pass.

Why only cached scores: the teacher is usually the largest model in the sweep, and its scores on the training split
were already computed (and fingerprinted by weights) when it was evaluated. Distilling from the cache keeps the
student's run cheap and guarantees the student learns exactly the scores that were measured. A missing score is a
one-line usage error that says how to produce it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.errors import UsageError
from rrbench.tasks import Task


def cached_teacher(name: str, task: Task, split: str, cache_dir: str | None = None):
    """A ``(query ids, global sentence ids) -> scores`` function reading ``name``'s cached pair scores."""
    from rrbench.cache import ScoreCache, model_fingerprint, pair_key
    from rrbench.models import load_reranker

    cache = ScoreCache(cache_dir)
    try:
        reranker = load_reranker(name)
    except UsageError as exc:
        raise UsageError(f"teacher {name!r}: {exc}") from None
    fingerprint, _ = model_fingerprint(reranker, cache)
    hint = (f"score the {split} split with it first: rrbench run --task {task.id} --split {split} "
            f"--reranker {name} --top-k-rerank 1000")
    row = cache._db.execute("SELECT mid FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()
    if row is None:
        raise UsageError(f"teacher {name!r} has no cached scores in {cache.directory}; {hint}")
    mid = int(row[0])
    texts = {q.query_id: q.text for q in task.queries.values()}

    def scores(query_ids: Sequence[str], indices: Sequence[int]) -> np.ndarray:
        keys = [pair_key(texts[q], task.sentences[int(i)]) for q, i in zip(query_ids, indices)]
        found = cache.get_pairs(mid, keys)
        missing = sum(1 for k in keys if k not in found)
        if missing:
            raise UsageError(f"teacher {name!r} lacks cached scores for {missing} of {len(keys)} training pairs; "
                             f"{hint}")
        return np.asarray([found[k] for k in keys], dtype=np.float64)

    return scores
