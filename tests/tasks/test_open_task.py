"""The built-in corpus-wide task scifact-evidence-open: counts, split mirroring, rebuild determinism, a real run."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from rrbench.tasks.resolve import get_task

ROOT = Path(__file__).resolve().parents[2]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"


@pytest.fixture(scope="module")
def open_task():
    return get_task("scifact-evidence-open")


def test_counts_and_scope(open_task):
    assert open_task.spec.scope == "corpus"
    assert len(open_task.post_ids) == 5183 and len(open_task.sentences) == 45952
    assert len(open_task.queries) == 1109
    assert Counter(open_task.split_of.values()) == {"train": 662, "dev_select": 147, "dev_final": 144, "test": 156}
    query = open_task.queries["263"]  # the README's example claim: evidence in two abstracts
    docnos = {open_task.docno(i) for i in open_task.judged(query)}
    assert docnos == {"11328820:7", "11328820:9", "30041340:0", "30041340:1", "30041340:11"}
    assert len(open_task.candidates(query)) == 45952


def test_claims_keep_their_split_from_the_post_scope_task(open_task):
    post_task = get_task("scifact-evidence")
    for query in post_task.queries.values():
        assert open_task.split_of[query.criterion_id] == post_task.split_of[query.query_id]
    # Same evidence, seen from the two scopes.
    for query in post_task.queries.values():
        post_gold = {post_task.docno(i) for i, g in post_task.judged(query).items() if g >= 1}
        open_gold = {open_task.docno(i) for i in open_task.judged(open_task.queries[query.criterion_id])}
        assert post_gold <= open_gold


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").is_file(), reason="needs the SciFact release in ../shared/data")
def test_the_build_script_reproduces_the_shipped_files(tmp_path):
    spec = importlib.util.spec_from_file_location("build_scifact_tasks", ROOT / "scripts" / "build_scifact_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_open(SCIFACT, tmp_path / "open")
    shipped = ROOT / "tasks" / "scifact-evidence-open"
    for name in ("task.yaml", "posts.jsonl.gz", "queries.jsonl.gz", "qrels.jsonl.gz", "splits.jsonl.gz"):
        assert (tmp_path / "open" / name).read_bytes() == (shipped / name).read_bytes(), name


def test_bm25_run_on_the_open_task_agrees_with_the_candidates_table(tmp_path, open_task):
    from rrbench.pipeline.candidates import rankings, recall_at
    from rrbench.pipeline.runner import RunConfig, execute

    record = execute(RunConfig(task="scifact-evidence-open", split="dev_select", retriever="bm25",
                               top_k_retriever=50, output=str(tmp_path / "run"), show_progress=False))
    queries = sorted(open_task.split_queries("dev_select"), key=lambda q: q.query_id)
    cached = rankings(open_task, "dev_select", queries, "bm25", 50)
    assert cached.cached  # the run filled the candidate cache
    assert record["metrics"]["R@50"] == pytest.approx(recall_at(open_task, queries, cached.pools, 50))
    assert record["metrics"]["queries_has_evidence"] == 95
    qrels = (tmp_path / "run" / "qrels.trec").read_text().splitlines()
    assert len(qrels) == 181 and all(":" in line.split()[2] for line in qrels)
