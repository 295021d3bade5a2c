"""Negative miners N0-N3 (section 6 of the research plan), each deterministic given a seed.

A miner returns, per query, up to ``k`` *global* sentence indices of non-evidence sentences from the query's own
post, best (hardest) first. Evidence sentences (grade >= 1) are never returned: a mislabelled negative teaches the
model the opposite of the truth. Random draws use one generator per query, seeded from ``(seed, query_id)``, so a
query's negatives do not change when other queries are added or removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import Miner, non_evidence
from rrbench.components.calls import build
from rrbench.components.registry import resolve
from rrbench.models.factory import load_reranker
from rrbench.pipeline.candidates import retrieve
from rrbench.pipeline.rerank import rerank
from rrbench.retrievers.factory import load_retriever
from rrbench.tasks.resolve import Query, Task
from rrbench.util.errors import UsageError


def query_rng(seed: int, query_id: str, salt: str = "") -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x00{salt}\x00{query_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class RandomMiner(Miner):
    """N0: a uniform sample without replacement of the post's non-evidence sentences."""

    def mine(self, task: Task, queries: Sequence[Query], k: int) -> dict[str, np.ndarray]:
        out = {}
        for query in queries:
            pool = non_evidence(task, query)
            rng = query_rng(self.seed, query.query_id, "n0")
            out[query.query_id] = rng.permutation(pool)[:k]
        return out


class _ScoredMiner(Miner):
    """Hard miners: rank the post's sentences by some model's score, keep the top non-evidence ones."""

    def post_scores(self, task: Task, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query: ``(global ids, scores)`` of its candidate sentences."""
        raise NotImplementedError

    def mine(self, task: Task, queries: Sequence[Query], k: int) -> dict[str, np.ndarray]:
        out = {}
        for query, (ids, scores) in zip(queries, self.post_scores(task, queries), strict=True):
            allowed = set(non_evidence(task, query).tolist())
            order = np.lexsort((ids, -np.asarray(scores, dtype=np.float64)))  # ties: post order, deterministic
            out[query.query_id] = np.asarray([int(i) for i in ids[order] if int(i) in allowed][:k], dtype=np.int64)
        return out


class RetrieverHardMiner(_ScoredMiner):
    """N1: the top-ranked non-evidence sentences of a registered retriever (bm25 by default)."""

    def post_scores(self, task: Task, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray]]:
        retriever = load_retriever(str(self.options["retriever"]))
        depth = int(np.max(np.diff(task.post_offsets))) if task.spec.scope == "post" else 1000
        return retrieve(task, queries, retriever, depth)


class RerankerHardMiner(_ScoredMiner):
    """N2: the top-scoring false positives of a reranker checkpoint (iterate: train, mine, retrain)."""

    def post_scores(self, task: Task, queries: Sequence[Query]) -> list[tuple[np.ndarray, np.ndarray]]:
        checkpoint = self.options.get("checkpoint")
        if not checkpoint:
            raise UsageError(f"miner {self.spec.id} needs a reranker: --miner-option checkpoint=DIR_OR_ID")
        reranker = load_reranker(str(checkpoint), batch_size=int(self.options.get("batch_size") or 64))
        pools = [(task.candidates(q), np.zeros(len(task.candidates(q)))) for q in queries]
        scores = rerank(task, queries, pools, reranker, top_k=max(len(p) for p, _ in pools), progress=False)
        return [(pool, s) for (pool, _), s in zip(pools, scores, strict=True)]


class MixedMiner(Miner):
    """N3: ``round(k * hard_fraction)`` hard negatives (N2 with a checkpoint, else N1) plus random ones.

    Only-hard negatives can make a cross-encoder overly strict on large candidate pools; mixing in random ones keeps
    easy negatives in view. When the hard side runs short, random ones fill the gap, so k is reached whenever the
    post has k non-evidence sentences.
    """

    def mine(self, task: Task, queries: Sequence[Query], k: int) -> dict[str, np.ndarray]:
        fraction = float(self.options["hard_fraction"])
        if not 0.0 <= fraction <= 1.0:
            raise UsageError(f"miner {self.spec.id}: hard_fraction must be in [0, 1], got {fraction}")
        if self.options.get("checkpoint"):
            hard_id, hard_options = "n2-iterative-hard", {"checkpoint": self.options["checkpoint"]}
        else:
            hard_id, hard_options = "n1-retriever-hard", {"retriever": self.options["retriever"]}
        hard_spec = resolve("miners", hard_id).spec
        hard = hard_spec.load()(hard_spec, seed=self.seed, **hard_options).mine(task, queries, k)
        out = {}
        n_hard = round(k * fraction)
        for query in queries:
            ranked_hard = [int(i) for i in hard[query.query_id]]
            chosen = ranked_hard[:n_hard]
            rest = [int(i) for i in query_rng(self.seed, query.query_id, "n3").permutation(non_evidence(task, query))
                    if int(i) not in chosen]
            chosen += rest[:k - len(chosen)]  # random ones, and they fill in when hard ones run short
            out[query.query_id] = np.asarray(chosen, dtype=np.int64)
        return out


def load_miner(name: str, seed: int = 13, **options: Any) -> Miner:
    """Instantiate a registered miner by id or alias."""

    spec = resolve("miners", name).spec
    return build("miners", spec, spec, seed=seed, **options)
