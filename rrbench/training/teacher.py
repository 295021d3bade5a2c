"""R5 distillation: a teacher's scores come from the score cache or an exported run record, never from a fresh
forward pass.

Why only cached scores: the teacher is usually the largest model in the sweep, and its scores on the training split
were already computed (and fingerprinted by weights) when it was evaluated. Distilling from the cache keeps the
student's run cheap and guarantees the student learns exactly the scores that were measured. A missing score is a
one-line usage error that says how to produce it.

A teacher may also be a run record folder (``results.json`` + ``run.trec``, e.g. a matrix cell's
``reranker_scores/CELL/train`` export): that is how scores travel between machines, since each worker's score cache
stays local. Only a plain record qualifies (one reranker, no interpolation, calibration or ensemble), because only
then are its ``run.trec`` scores the teacher's own scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.identity import model_fingerprint
from rrbench.models.factory import load_reranker
from rrbench.pipeline.score_cache import open_store, pair_key
from rrbench.records.evidence import read_evidence
from rrbench.records.record import load_record
from rrbench.records.schema import RESULTS_FILE, SCORES_FILE
from rrbench.tasks.resolve import Task
from rrbench.util.errors import UsageError


def cached_teacher(name: str, task: Task, split: str, cache_dir: str | None = None) -> Any:
    """A ``(query ids, global sentence ids) -> scores`` function reading ``name``'s cached pair scores."""

    cache = open_store(cache_dir)
    try:
        reranker = load_reranker(name)
    except UsageError as exc:
        raise UsageError(f"teacher {name!r}: {exc}") from None
    fingerprint, _ = model_fingerprint(reranker, cache)
    hint = (f"score the {split} split with it first: rrbench run --task {task.id} --split {split} "
            f"--reranker {name} --top-k-rerank 1000")
    found_model = cache.find_model(fingerprint)
    if found_model is None:
        raise UsageError(f"teacher {name!r} has no cached scores in {cache.location}; {hint}")
    mid = found_model[0]
    texts = {q.query_id: q.text for q in task.queries.values()}

    def scores(query_ids: Sequence[str], indices: Sequence[int]) -> np.ndarray:
        keys = [pair_key(texts[q], task.sentences[int(i)]) for q, i in zip(query_ids, indices, strict=True)]
        found = cache.get_pairs(mid, keys)
        missing = sum(1 for k in keys if k not in found)
        if missing:
            raise UsageError(f"teacher {name!r} lacks cached scores for {missing} of {len(keys)} training pairs; "
                             f"{hint}")
        return np.asarray([found[k] for k in keys], dtype=np.float64)

    return scores


def is_record_folder(name: str) -> bool:
    folder = Path(name)
    return folder.is_dir() and (folder / RESULTS_FILE).is_file() and (folder / SCORES_FILE).is_file()


def recorded_teacher(folder: str | Path, task: Task, split: str) -> Any:
    """A ``(query ids, global sentence ids) -> scores`` function reading a plain run record's raw reranker scores
    (its evidence file: exactly the scores the teacher gave, not run.trec's rounded ones)."""
    folder = Path(folder)
    try:
        record = load_record(folder)
    except UsageError as exc:
        raise UsageError(f"teacher {folder}: not a readable rrbench record ({exc})") from None
    if record.kind != "run":
        raise UsageError(f"teacher {folder}: an outside run has no reranker scores")
    claims = record.run_claims
    if claims.task.data_sha256 != task.data_sha256:
        raise UsageError(f"teacher {folder}: recorded on other task data ({claims.task.data_sha256[:12]}, not "
                         f"{task.data_sha256[:12]})")
    if len(claims.rerankers) != 1 or claims.combination.beta or claims.decision.calibrator is not None:
        raise UsageError(f"teacher {folder}: only a plain record of one reranker holds the teacher's own scores "
                         f"(no interpolation, calibration or ensemble)")
    evidence = read_evidence(folder / SCORES_FILE)
    found: dict[tuple[str, int], float] = {}
    for row in evidence.queries:
        for docno, score in zip(row.pool, row.heads[0], strict=False):  # the head: the reranked prefix of the pool
            index = task.index_of(docno)
            if index is not None:
                found[(row.query_id, index)] = score

    def scores(query_ids: Sequence[str], indices: Sequence[int]) -> np.ndarray:
        keys = [(q, int(i)) for q, i in zip(query_ids, indices, strict=True)]
        missing = [k for k in keys if k not in found]
        if missing:
            raise UsageError(f"teacher {folder} has no score for {len(missing)} of {len(keys)} {split} training "
                             f"pairs (first: query {missing[0][0]}, sentence {task.docno(missing[0][1])}); export "
                             f"the whole split (--top-k-rerank 1000)")
        return np.asarray([found[k] for k in keys], dtype=np.float64)

    return scores
