"""pyserini-bm25 end to end: entry-point registration, hand-computed Lucene BM25, and rrbench runs on small indexes.

The JVM starts once for this module (~8 s); every test reuses it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rrbench
from rrbench.plugin import ModelOptions
from rrbench.testing import (
    MINI_POSTS,
    MINI_QRELS,
    MINI_QUERIES,
    make_mini_task,
    reset_registry,
    write_task,
)
from rrbench.testing import resolve_component as resolve


@pytest.fixture(scope="module", autouse=True)
def isolated(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RRBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("RRBENCH_TASKS_DIR", str(tmp_path_factory.mktemp("user-tasks")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        reset_registry()
        yield
    reset_registry()


@pytest.fixture(scope="module")
def retriever():
    entry = resolve("retrievers", "pyserini-bm25")
    return entry.spec.load()(entry.spec, ModelOptions())


def test_registered_through_the_entry_point():
    entry = resolve("retrievers", "lucene-bm25")
    assert entry.spec.id == "pyserini-bm25"
    assert entry.plugin == "pyserini" and entry.distribution == "rrbench-pyserini"
    assert entry.spec.options == {"k1": 0.9, "b": 0.4}


def _lucene_bm25(tf: int, df: int, n_docs: int, dl: int, avgdl: float, k1: float = 0.9, b: float = 0.4) -> float:
    """Lucene's BM25 (no (k1+1) factor since Lucene 8): idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))."""
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))


def test_scores_match_a_hand_computed_lucene_bm25(retriever):
    # Analysed: [aspirin reduc heart attack] (4 terms), [coffe sleep] (2), [heart heart diseas] (3); avgdl 3.
    retriever.index(["Aspirin reduces heart attack", "Coffee and sleep", "Heart heart disease"])
    ids, scores = retriever.search("heart attack", 10)
    assert ids.tolist() == [0, 2]  # document 1 shares no term: Lucene does not return it
    doc0 = _lucene_bm25(1, 2, 3, 4, 3.0) + _lucene_bm25(1, 1, 3, 4, 3.0)
    doc2 = _lucene_bm25(2, 2, 3, 3, 3.0)
    assert scores == pytest.approx([doc0, doc2], rel=1e-3)
    assert retriever.score_all("heart attack") == pytest.approx([doc0, 0.0, doc2], rel=1e-3)
    assert retriever.score("heart attack", np.array([2, 1])) == pytest.approx([doc2, 0.0], rel=1e-3)


def test_corpus_scope_run_end_to_end(tmp_path, retriever):
    post_of = {q["query_id"]: q["post_id"] for q in MINI_QUERIES}
    task_dir = write_task(tmp_path / "open", MINI_POSTS, [{"query_id": q["query_id"], "text": q["text"]}
                                                           for q in MINI_QUERIES],
                          [{**r, "post_id": post_of[r["query_id"]]} for r in MINI_QRELS], scope="corpus")
    record = rrbench.run(task=str(task_dir), retriever="pyserini-bm25", top_k_retriever=5,
                         output=str(tmp_path / "run"), show_progress=False)
    assert record["config"]["generator"]["retrievers"][0]["id"] == "pyserini-bm25"
    lines = [line.split() for line in (tmp_path / "run" / "run.trec").read_text().splitlines()]
    top = {}
    for qid, _, docno, rank, *_ in lines:
        top.setdefault(qid, docno)
    assert top["q1"] in {"p1:0", "p1:3"} and top["q5"] == "p4:0"
    assert 0.0 < record["metrics"]["R@5"] <= 1.0


def test_post_scope_and_fusion_with_bm25s(tmp_path, retriever):
    task_dir = str(make_mini_task(tmp_path / "mini"))
    task = rrbench.get_task(task_dir)
    queries = sorted(task.split_queries("dev_select"), key=lambda q: q.query_id)
    alone = rrbench.get_candidates(task_dir, "dev_select", "pyserini-bm25")
    for query, (ids, scores) in zip(queries, alone.pools):
        assert sorted(ids.tolist()) == task.candidates(query).tolist()  # the whole post, capped at its size
        assert np.all(np.diff(scores) <= 0)
    fused = rrbench.get_candidates(task_dir, "dev_select", ("bm25", "pyserini-bm25"), fusion="rrf")
    assert fused.describe["id"] == "rrf(bm25+pyserini-bm25)"
    assert [len(ids) for ids, _ in fused.pools] == [len(ids) for ids, _ in alone.pools]
