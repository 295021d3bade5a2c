"""The honest path is a test too: every kind of record rrbench makes is made through the CLI, published, and
verified by ``leaderboard check``; the board's names never stand for two configurations."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.components.registry import reset_registry
from rrbench.plugin import PointwiseReranker, RerankerSpec, hookimpl
from rrbench.tasks.mini import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task
from rrbench.testing import make_tiny_bert, registered_plugin
from tests.support.task_variants import make_variant_task

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class Overlap(PointwiseReranker):
    """A weight-less plugin reranker: the share of query words in the sentence."""

    def score_pairs(self, queries, documents):
        return np.asarray([len(set(q.lower().split()) & set(d.lower().split())) / max(len(q.split()), 1)
                           for q, d in zip(queries, documents, strict=True)], dtype=np.float64)

    def cache_fingerprint(self):
        return {"algorithm": "overlap-v1"}


class _Plugin:
    @hookimpl
    def register_rerankers(self, register):
        register(RerankerSpec(id="overlap", loader=f"{__name__}:Overlap", backend="custom", score_kind="similarity",
                              max_length=None))


def _bigger_task(folder: Path) -> Path:
    """The mini task four times over (new post and query ids), so that every fold and split holds queries with and
    without evidence."""
    posts, queries, qrels, splits = [], [], [], {}
    for copy in range(4):
        posts += [{**p, "post_id": f"{p['post_id']}x{copy}"} for p in MINI_POSTS]
        for q in MINI_QUERIES:
            qid = f"{q['query_id']}x{copy}"
            queries.append({**q, "query_id": qid, "post_id": f"{q['post_id']}x{copy}",
                            "criterion_id": f"{q['criterion_id']}x{copy}"})
            splits[qid] = "dev_select" if copy < 2 else ("dev_final" if copy == 2 else "test")
        qrels += [{**r, "query_id": f"{r['query_id']}x{copy}"} for r in MINI_QRELS]
    return write_task(folder, posts, queries, qrels, splits=splits)


def test_every_kind_of_record_publishes_and_verifies(tmp_path, capsys):
    tasks = Path(os.environ["RRBENCH_TASKS_DIR"])
    _bigger_task(tasks / "honest-task")
    make_variant_task(tasks / "honest-other", seed=11, sentences=(6, 9), no_evidence=0.5)  # a decision fitted there
    reset_registry()
    tiny = make_tiny_bert(tmp_path / "tiny")
    train_task = write_task(tmp_path / "train-task", MINI_POSTS, MINI_QUERIES, MINI_QRELS,
                            splits={"q1": "train", "q3": "train", "q4": "train", "q2": "dev_select",
                                    "q5": "dev_select", "q6": "dev_select"})
    checkpoint = tmp_path / "checkpoint"
    assert main(["train", "--quiet", "--task", str(train_task), "--base", str(tiny), "--loss", "bce", "--miner",
                 "n0-random", "--output", str(checkpoint), "--max-steps", "2", "--batch-size", "2", "--negatives",
                 "2", "--max-length", "32", "--eval-steps", "2"]) == 0
    base = ["run", "--task", "honest-task", "--quiet"]
    ce = ["--reranker", str(tiny)]
    kinds = {
        "retriever": [],
        "fusion-with-a-plugin-retriever": ["--retriever", "bm25", "--retriever", "tfidf", "--fusion", "rrf"],
        "fixed-threshold": [*ce, "--threshold", "0.0"],
        "fitted-threshold": [*ce, "--threshold", "fit", "--calibrate-on", "dev_final"],
        "max-fe-threshold": [*ce, "--threshold", "max-fe", "--threshold-max-fe", "0.5", "--calibrate-on",
                             "dev_final"],
        "fitted-on-another-task": [*ce, "--threshold", "fit", "--calibrate-on", "dev_select", "--calibrate-task",
                                   "honest-other"],
        "platt": [*ce, "--calibrator", "platt", "--calibrate-on", "dev_final"],
        "temperature": [*ce, "--calibrator", "temperature", "--calibrate-on", "dev_final"],
        "isotonic": [*ce, "--calibrator", "isotonic", "--calibrate-on", "dev_final"],
        "cross-fit": [*ce, "--calibrator", "platt", "--cross-fit", "2"],
        "interpolation": [*ce, "--interpolate", "0.4", "--threshold", "0.5"],
        "ensemble-with-a-plugin-reranker": [*ce, "--reranker", "overlap", "--ensemble-weight", "2",
                                            "--ensemble-weight", "1", "--threshold", "0.0"],
        "margin-abstention": [*ce, "--abstain", "margin", "--threshold", "0.1"],
        "checkpoint": ["--split", "dev_final", "--reranker", str(checkpoint), "--threshold", "checkpoint"],
        "test-split": ["--split", "test", "--final", *ce, "--threshold", "0.0"],
    }
    board = tmp_path / "board"
    os.environ["RRBENCH_TEST_LEDGER"] = str(board / "test-ledger.jsonl")
    with registered_plugin(_Plugin(), "overlap-plugin"):
        for name, args in kinds.items():
            out = tmp_path / "runs" / name
            assert main([*base, *args, "--output", str(out)]) == 0, name
            assert main(["publish", str(out), "--to", str(board)]) == 0, name
        for name in ("max-fe-threshold", "fitted-on-another-task"):  # the new decisions reproduce from their claims
            assert main(["reproduce", str(tmp_path / "runs" / name), "--quiet"]) == 0, name
        run = tmp_path / "runs" / "retriever" / "run.trec"
        assert main(["evaluate", "--task", "honest-task", "--run", str(run), "--output",
                     str(tmp_path / "runs" / "outside")]) == 0
        assert main(["publish", str(tmp_path / "runs" / "outside"), "--to", str(board)]) == 0
        capsys.readouterr()
        assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 0
        assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    out = capsys.readouterr().out
    assert f"ok: {len(kinds)} records verified, 1 claimed" in out, out
    records = [json.loads(p.read_text()) for p in board.glob("*@*/*/*/results.json")]
    names = [(r["config"]["split"], r["system"]) for r in records]
    assert len(set(names)) == len(names), names  # no two configurations share a name on a board
    runs = [r for r in records if r["kind"] == "run"]
    plugin_run = next(r for r in runs if any(m["id"] == "overlap" for m in r["config"]["rerankers"]))
    assert "overlap-plugin:overlap" in plugin_run["system"]
    trained = next(r for r in runs if r["config"]["rerankers"] and r["config"]["rerankers"][0]["checkpoint"])
    assert trained["system"].startswith("bm25 → trained:") and trained["config"]["rerankers"][0]["weights_sha256"]
