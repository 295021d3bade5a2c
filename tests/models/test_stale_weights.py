"""Issue 14, defects 1, 7 and 8: retriever weights changed in place never serve stale pools or share a config hash;
BM25 statistics do not depend on the split; a split without a single BM25 token is one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import rrbench
from rrbench.pipeline.candidates import GeneratorConfig, generate
from rrbench.tasks.resolve import load_task_dir
from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, make_tiny_bi_encoder, write_task
from rrbench.util.errors import UsageError

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _replace_weights(target: Path, seed: int, scratch: Path) -> None:
    """Overwrite a bi-encoder folder in place with a differently initialised one (same file names)."""
    other = make_tiny_bi_encoder(scratch / f"seed-{seed}", seed=seed)
    for file in other.rglob("*"):
        if file.is_file():
            dest = target / file.relative_to(other)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, dest)


def test_retriever_weights_changed_in_place_give_fresh_pools_and_a_new_config_hash(mini_task, tmp_path):
    weights = make_tiny_bi_encoder(tmp_path / "weights" / "bi", seed=0)
    common = dict(task=str(mini_task), retriever="minilm-l6", retriever_model_path=str(weights), show_progress=False,
                  top_k_retriever=3)
    first = rrbench.run(output=str(tmp_path / "a"), **common)
    _replace_weights(weights, seed=5, scratch=tmp_path / "scratch")
    cached = rrbench.run(output=str(tmp_path / "b"), **common)
    fresh = rrbench.run(output=str(tmp_path / "c"), use_cache=False, **common)

    assert cached["provenance"]["candidate_cache"]["minilm-l6"]["cached"] is False  # the old pools were not served
    assert cached["per_query"] == fresh["per_query"]
    assert (tmp_path / "b" / "run.trec").read_bytes() == (tmp_path / "c" / "run.trec").read_bytes()
    assert (tmp_path / "a" / "run.trec").read_bytes() != (tmp_path / "b" / "run.trec").read_bytes()
    hashes = {r["config_hash"] for r in (first, cached)}
    assert len(hashes) == 2, "two different weights shared one config hash"
    assert cached["config_hash"] == fresh["config_hash"]
    shas = [r["config"]["generator"]["retrievers"][0]["weights_sha256"] for r in (first, cached)]
    assert shas[0] != shas[1] and all(len(s) == 64 for s in shas)


def test_fused_generators_hash_their_members_weights(mini_task, tmp_path):
    weights = make_tiny_bi_encoder(tmp_path / "weights" / "bi", seed=0)
    task = load_task_dir(mini_task)
    queries = sorted(task.split_queries("dev_select"), key=lambda q: q.query_id)
    config = GeneratorConfig(("bm25", "minilm-l6"), "rrf", {"k0": 60})
    from rrbench.pipeline.candidates import describe_generator, retriever_identity

    described = describe_generator(config)
    members = {m["id"]: m for m in described["options"]["retrievers"]}
    assert "weights_sha256" not in members["bm25"]  # no weights, no hash (bm25's identity is its options)
    assert len(members["minilm-l6"]["weights_sha256"]) == 64
    before = retriever_identity("minilm-l6", str(weights))
    _replace_weights(weights, seed=5, scratch=tmp_path / "scratch")
    assert retriever_identity("minilm-l6", str(weights))["weights_sha256"] != before["weights_sha256"]
    assert generate(task, "dev_select", queries, config, 3).describe["id"] == "rrf(bm25+minilm-l6)"


def _two_split_task(directory: Path, extra_sentences: list[str]) -> Path:
    """The mini task with q1 in dev_select and the rest in test, plus one extra test-only post."""
    posts = MINI_POSTS + [{"post_id": "p5", "sentences": extra_sentences}]
    queries = MINI_QUERIES + [{"query_id": "q7", "post_id": "p5", "text": "aspirin trial"}]
    splits = {q["query_id"]: ("dev_select" if q["query_id"] == "q1" else "test") for q in queries}
    return write_task(directory, posts, queries, MINI_QRELS, splits=splits)


def test_bm25_scores_do_not_depend_on_the_split_evaluated(tmp_path):
    """Post scope: a dev_select query's BM25 scores are the same whether or not the test split's posts change;
    both come from one index over every sentence of the task (idf_scope: task, recorded in the config)."""
    a = load_task_dir(_two_split_task(tmp_path / "a", ["Aspirin aspirin aspirin.", "Aspirin trial."]))
    task_scores, split_scores = [], []
    for task in (a, load_task_dir(_two_split_task(tmp_path / "b", ["Nothing in common here."]))):
        queries = task.split_queries("dev_select")
        pools = generate(task, "dev_select", queries, GeneratorConfig(("bm25",)), 10, use_cache=False).pools
        task_scores.append(pools[0][1])
        from rrbench.pipeline.candidates import retrieve
        from rrbench.retrievers.factory import load_retriever
        split_scores.append(retrieve(task, queries, load_retriever("bm25", idf_scope="split"), 10)[0][1])
    # idf over the whole task: the test split's new post changes the IDF of "aspirin" for everyone ...
    assert not np.allclose(task_scores[0], task_scores[1])
    # ... and a split-scoped index would not have seen it: that is the dependence on which split is run
    np.testing.assert_allclose(split_scores[0], split_scores[1])
    whole = generate(a, "test", a.split_queries("test") + a.split_queries("dev_select"),
                     GeneratorConfig(("bm25",)), 10, use_cache=False)
    # the same query, evaluated together with other splits' queries, gets the same scores
    np.testing.assert_allclose(whole.pools[-1][1], task_scores[0])
    assert whole.describe["options"]["idf_scope"] == "task"


def test_bm25_idf_scope_is_validated():
    from rrbench.retrievers.factory import load_retriever
    with pytest.raises(UsageError, match="option 'idf_scope' must be one of task, split"):
        load_retriever("bm25", idf_scope="post")


def test_a_task_without_any_bm25_token_is_one_line_exit_2(tmp_path, cli):
    posts = [{"post_id": "p1", "sentences": ["the", "and of"]}, {"post_id": "p2", "sentences": ["a", "is"]}]
    queries = [{"query_id": "q1", "post_id": "p1", "text": "aspirin"}]
    task = write_task(tmp_path / "stop", posts, queries, [{"query_id": "q1", "sentence": 0, "grade": 1}])
    result = cli("run", "--task", str(task), "--output", str(tmp_path / "out"), "--quiet")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rrbench: error: retriever 'bm25': none of the 4 indexed sentences yields a BM25")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
