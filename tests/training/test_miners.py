"""Miners on a hand-built task: the expected negatives, never evidence, never another post, deterministic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from rrbench.components.bases import PointwiseReranker
from rrbench.components.registry import registered_plugin
from rrbench.components.specs import RerankerSpec
from rrbench.testing.fixtures import write_task
from rrbench.training.miners import load_miner
from rrbench.util.errors import UsageError

# Post p1: sentence 0 is evidence; 1 shares every query word (hardest), 2 shares one, 3 and 4 share none.
POSTS = [
    {"post_id": "p1", "sentences": ["Aspirin prevents heart attacks in adults.",
                                    "Aspirin heart attacks aspirin heart attacks.",
                                    "Aspirin tablets are white.",
                                    "The weather was sunny.",
                                    "Nobody went swimming."]},
    {"post_id": "p2", "sentences": ["Aspirin heart attacks everywhere.", "Unrelated filler text."]},
]
QUERIES = [{"query_id": "q1", "post_id": "p1", "text": "aspirin heart attacks"},
           {"query_id": "q2", "post_id": "p2", "text": "tablets"}]
QRELS = [{"query_id": "q1", "sentence": 0, "grade": 1}]


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    from rrbench.tasks.resolve import load_task_dir
    return load_task_dir(write_task(tmp_path_factory.mktemp("mine") / "mine", POSTS, QUERIES, QRELS,
                                    splits={"q1": "train", "q2": "train"}))


def _q(task, qid):
    return [task.queries[qid]]


def test_n0_random_stays_in_post_skips_evidence_and_is_seeded(task):
    post = set(range(*task.post_slice("p1")))
    draws = [load_miner("N0", seed=s).mine(task, _q(task, "q1"), 3)["q1"].tolist() for s in range(12)]
    for draw in draws:
        assert len(draw) == 3 and len(set(draw)) == 3
        assert set(draw) <= post and 0 not in draw  # global id 0 is the evidence sentence
    assert load_miner("N0", seed=4).mine(task, _q(task, "q1"), 3)["q1"].tolist() == draws[4]
    assert len({tuple(d) for d in draws}) > 1  # the seed matters
    everything = load_miner("N0", seed=1).mine(task, _q(task, "q1"), 10)["q1"]
    assert sorted(everything.tolist()) == [1, 2, 3, 4]  # capped at the post's non-evidence sentences


def test_n0_negatives_of_a_query_do_not_depend_on_other_queries(task):
    alone = load_miner("N0", seed=2).mine(task, _q(task, "q1"), 2)["q1"]
    together = load_miner("N0", seed=2).mine(task, [task.queries["q2"], task.queries["q1"]], 2)["q1"]
    assert alone.tolist() == together.tolist()


def test_n1_bm25_takes_the_top_ranked_non_evidence(task):
    got = load_miner("N1", seed=0).mine(task, _q(task, "q1"), 2)["q1"].tolist()
    assert got == [1, 2]  # sentence 0 outranks them but is evidence
    other = load_miner("N1").mine(task, _q(task, "q2"), 5)["q2"].tolist()
    assert set(other) <= set(range(*task.post_slice("p2")))


class OverlapReranker(PointwiseReranker):
    """A stand-in checkpoint: scores = number of shared words, plus 10 for sentence 4 (a confident mistake)."""

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        out = []
        for q, d in zip(queries, documents):
            words = set(d.lower().strip(".").split())
            out.append(len(set(q.split()) & words) + (10.0 if "swimming" in words else 0.0))
        return np.asarray(out, dtype=np.float64)


class _Plugin:
    from rrbench.components.hookspecs import hookimpl

    @hookimpl
    def register_rerankers(self, register):
        register(RerankerSpec(id="overlap-test", loader="tests.training.test_miners:OverlapReranker", backend="custom"))


def test_n2_takes_the_checkpoints_top_false_positives(task):
    with registered_plugin(_Plugin(), "overlap-test-plugin"):
        got = load_miner("N2", checkpoint="overlap-test").mine(task, _q(task, "q1"), 3)["q1"].tolist()
    assert got == [4, 1, 2]  # the boosted sentence first, then by overlap; evidence 0 never
    with pytest.raises(UsageError, match="checkpoint="):
        load_miner("N2").mine(task, _q(task, "q1"), 2)


def test_n3_mixes_hard_and_random_by_ratio(task):
    half = load_miner("N3", seed=5).mine(task, _q(task, "q1"), 2)["q1"].tolist()
    assert half[0] == 1 and half[1] in (2, 3, 4)  # one bm25-hard (the hardest), one random from the rest
    assert load_miner("N3", seed=5).mine(task, _q(task, "q1"), 2)["q1"].tolist() == half
    assert load_miner("N3", seed=5, hard_fraction=1.0).mine(task, _q(task, "q1"), 2)["q1"].tolist() == [1, 2]
    randoms = {tuple(load_miner("N3", seed=s, hard_fraction=0.0).mine(task, _q(task, "q1"), 2)["q1"].tolist())
               for s in range(10)}
    assert len(randoms) > 1 and all(0 not in r for r in randoms)
    with pytest.raises(UsageError, match="hard_fraction"):
        load_miner("N3", hard_fraction=1.5).mine(task, _q(task, "q1"), 2)


def test_unknown_miner_option_is_a_usage_error():
    with pytest.raises(UsageError, match="no option"):
        load_miner("N0", ratio=0.5)
