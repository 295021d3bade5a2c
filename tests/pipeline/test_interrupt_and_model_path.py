"""Ctrl-C leaves no results and the next run resumes from the cache; ``--model-path`` pairs a spec with weights."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rrbench
from rrbench.testing.fixtures import MINI_POSTS, make_tiny_bi_encoder, write_task

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _big_task(directory: Path) -> Path:
    """120 posts x 6 sentences from the mini vocabulary: at batch size 1, a few cache commits of scoring."""
    rng = random.Random(7)
    words = sorted({w.strip(".,").lower() for p in MINI_POSTS for s in p["sentences"] for w in s.split()})
    posts, queries, qrels = [], [], []
    for i in range(120):
        posts.append({"post_id": f"p{i}", "sentences": [" ".join(rng.sample(words, 6)) for _ in range(6)]})
        queries.append({"query_id": f"q{i}", "post_id": f"p{i}", "text": " ".join(rng.sample(words, 4))})
        if i % 3:
            qrels.append({"query_id": f"q{i}", "sentence": rng.randrange(6), "grade": 1})
    return write_task(directory, posts, queries, qrels)


def _stored_pairs(cache_dir: Path) -> int:
    db = cache_dir / "scores.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM pair_scores").fetchone()[0])
    except sqlite3.Error:
        return 0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Python then installs its KeyboardInterrupt handler


def test_sigint_leaves_no_results_and_next_run_resumes_from_cache(tiny_model, tmp_path):
    task = _big_task(tmp_path / "big-task")
    cache_dir = Path(os.environ["RRBENCH_CACHE"])
    out = tmp_path / "runs" / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rrbench.cli", "run", "--task", str(task), "--reranker", str(tiny_model),
         "--batch-size", "1", "--output", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
        # pytest may run with SIGINT ignored (nohup, a shell's `&`), and children inherit an ignored signal: the
        # child must get Python's default handler back, or the signal below would be silently dropped
        preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while _stored_pairs(cache_dir) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted: " + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "scores computed so far stay in the score cache" in err
    assert not out.exists()
    assert not list(out.parent.glob("*partial*")) if out.parent.exists() else True
    kept = _stored_pairs(cache_dir)
    assert kept > 0

    # same batch size as the interrupted run, so resumed and fresh scores are bit-identical
    resumed = rrbench.run(task=str(task), reranker=str(tiny_model), output=str(tmp_path / "resumed"),
                          show_progress=False, batch_size=1)
    cache = resumed["provenance"]["cache"]
    total = resumed["provenance"]["pairs_scored"]
    assert cache["hits"] >= kept and cache["hits"] + cache["misses"] == total and cache["misses"] > 0
    assert (tmp_path / "resumed" / "results.json").is_file()
    fresh = rrbench.run(task=str(task), reranker=str(tiny_model), output=str(tmp_path / "fresh"),
                        show_progress=False, use_cache=False, batch_size=1)
    assert fresh["metrics"] == resumed["metrics"]


def test_an_interrupted_no_cache_run_does_not_claim_cached_scores(mini_task, tmp_path, monkeypatch, capsys):
    from rrbench.cli.main import main
    from rrbench.pipeline import runner
    from rrbench.util import cache_paths

    monkeypatch.setattr(cache_paths, "_SCORE_COMMITS", [0])  # this process has not written a score yet

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "score_split", interrupted)
    assert main(["run", "--task", str(mini_task), "--no-cache", "--quiet", "--output", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "rrbench: interrupted; no results were written" and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def tiny_bi_encoder(tmp_path_factory):
    return make_tiny_bi_encoder(tmp_path_factory.mktemp("bi") / "tiny-bi")


def test_model_path_pairs_a_registered_reranker_spec_with_local_weights(mini_task, tiny_bi_encoder, tmp_path):
    record = rrbench.run(task=str(mini_task), reranker="minilm-l6", model_path=str(tiny_bi_encoder),
                         output=str(tmp_path / "o"), show_progress=False)
    reranker = record["config"]["rerankers"][0]
    assert reranker["settings"]["spec"] == "rrbench:minilm-l6" and reranker["score_kind"] == "cosine"  # spec's kind
    assert reranker["id"].startswith("local-model@")  # other weights: named by their hash, never as minilm-l6
    assert str(tiny_bi_encoder) not in json.dumps(record["config"])  # no local path in the claims
    assert record["decision"]["threshold"] is None  # cosine: no natural boundary, from the spec
    assert "--model-path" in record["provenance"]["command"]


def test_model_path_applies_to_the_retriever_when_there_is_no_reranker(mini_task, tiny_bi_encoder, tmp_path):
    record = rrbench.run(task=str(mini_task), retriever="minilm-l6", model_path=str(tiny_bi_encoder),
                         output=str(tmp_path / "o"), show_progress=False)
    described = record["config"]["generator"]["retrievers"][0]
    assert described["id"] == "minilm-l6"
    assert described["weights_sha256"] is not None and str(tiny_bi_encoder) not in json.dumps(record["config"])
