"""Crash safety (issue 14): kill -9 at every named stage where state is written, concurrency on one cache and one
output folder, `rrbench cache clear` during a run.

``RRBENCH_TEST_KILL_AT=stage:n`` (``rrbench.util.faults``) makes a process SIGKILL itself the n-th time it reaches a stage
(``write``: an atomic file write before its rename; ``dir``: an output folder before its rename; ``commit``: after a
score-cache transaction). After every kill the same command is run again and must complete with the results of an
uninterrupted run (metrics to 1e-9, TREC files byte for byte, trained weights bit-identical), every SQLite file
must pass ``PRAGMA integrity_check``, and no partial folder or temporary file may be left where a user would look.
Tiny models and a 4-post task keep the suite to a few minutes on 2 cores.
"""

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

from rrbench.testing.fixtures import make_mini_task, make_tiny_bert, make_tiny_bi_encoder

pytestmark = pytest.mark.usefixtures("torch_one_thread")

KILLED = -signal.SIGKILL


def _cli(args: list[str], cache: Path, kill_at: str | None = None, wait: bool = True):
    env = {**os.environ, "RRBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RRBENCH_TEST_KILL_AT", None)
    if kill_at:
        env["RRBENCH_TEST_KILL_AT"] = kill_at
    command = [sys.executable, "-m", "rrbench.cli", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def _integrity(root: Path) -> None:
    for db in root.rglob("*.sqlite"):
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db


def _no_leftovers(*roots: Path) -> None:
    for root in roots:
        if root.exists():
            stray = [p for p in root.rglob("*") if p.name.endswith((".tmp", ".partial")) or ".partial" in p.name]
            assert not stray, f"left behind: {stray}"


def _same_record(a: Path, b: Path) -> None:
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert ra["config_hash"] == rb["config_hash"]
    assert ra["per_query"].keys() == rb["per_query"].keys()
    for key, value in ra["metrics"].items():
        other = rb["metrics"][key]
        assert (value is None and other is None) or abs(value - other) <= 1e-9, key
    for name in ("run.trec", "qrels.trec"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    return {"task": make_mini_task(root / "mini"), "ce": make_tiny_bert(root / "ce", seed=3),
            "bi": make_tiny_bi_encoder(root / "bi", seed=4), "root": root}


def _run_args(assets, out: Path) -> list[str]:
    return ["run", "--task", str(assets["task"]), "--retriever", "minilm-l6", "--retriever-model-path",
            str(assets["bi"]), "--reranker", str(assets["ce"]), "--batch-size", "1", "--top-k-rerank", "4",
            "--output", str(out), "--quiet"]


@pytest.fixture(scope="module")
def run_reference(assets):
    out = assets["root"] / "run-ref" / "out"
    done = _cli(_run_args(assets, out), assets["root"] / "run-ref" / "cache")
    assert done.returncode == 0, done.stderr
    return out


def _kill_chain(args: list[str], cache: Path, points: list[str], check) -> int:
    """Kill the same command at each point in turn (each time resuming from what the previous one left), then run
    it to the end. Every kill must really happen; after each one the caches must be sound. Returns the kill count."""
    for point in points:
        killed = _cli(args, cache, point)
        assert killed.returncode == KILLED, f"{point} was never reached: {killed.stderr[-2000:]}"
        _integrity(cache)
        check()
    again = _cli(args, cache)
    assert again.returncode == 0, again.stderr
    return len(points)


#: In order (each process resumes from the previous one's state; RRBENCH_TEST_TRACE_KILL_POINTS=1 lists the points):
#: the score cache's first commit and one in the middle of memoising weight hashes, the embedding write, the
#: candidate-set write, the commit of the reranker's scores, then run.trec, qrels.trec, results.json, the folder.
RUN_KILLS = ["commit:1", "commit:10", "write:1", "write:1", "commit:5", "write:1", "write:2", "write:3", "dir:1"]


def test_run_survives_kill_9_at_every_stage(assets, run_reference, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "runs" / "out"
    _kill_chain(_run_args(assets, out), cache, RUN_KILLS, check=lambda: not out.exists() or pytest.fail(str(out)))
    _same_record(out, run_reference)
    _integrity(cache)
    _no_leftovers(out.parent, cache)


def test_run_survives_kill_9_at_random_times(assets, run_reference, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "runs" / "out"
    rng = random.Random(14)
    for _ in range(2):
        proc = _cli(_run_args(assets, out), cache, wait=False)
        time.sleep(rng.uniform(2.0, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        _integrity(cache)
        if out.exists():  # the run beat the kill: start over from its cache
            import shutil

            shutil.rmtree(out)
    again = _cli(_run_args(assets, out), cache)
    assert again.returncode == 0, again.stderr
    _same_record(out, run_reference)
    _no_leftovers(out.parent, cache)


def _candidates_args(assets, out: Path) -> list[str]:
    return ["candidates", "--task", str(assets["task"]), "--split", "dev_select", "--retriever", "bm25",
            "--retriever", "minilm-l6", "--fusion", "rrf", "--k", "2,4", "--output", str(out), "--json", "--quiet"]


@pytest.fixture(scope="module")
def candidates_reference(assets):
    out = assets["root"] / "cand-ref" / "trec"
    done = _cli(_candidates_args(assets, out), assets["root"] / "cand-ref" / "cache")
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def _table(payload: dict) -> list:
    return [{k: v for k, v in row.items() if k not in ("cached", "seconds")} for row in payload["rows"]]


#: the cache's first commit, the three cache writes (embeddings, two candidate sets; each cached once written), then
#: the three TREC files of --output (rewritten by every run)
CANDIDATE_KILLS = ["commit:1", "write:1", "write:1", "write:1", "write:1", "write:2", "write:3"]


def test_candidates_survives_kill_9_at_every_stage(assets, candidates_reference, tmp_path):
    ref_dir, ref = candidates_reference
    cache, out = tmp_path / "cache", tmp_path / "trec"
    _kill_chain(_candidates_args(assets, out), cache, CANDIDATE_KILLS, check=lambda: None)
    again = _cli(_candidates_args(assets, out), cache)
    assert again.returncode == 0, again.stderr
    assert _table(json.loads(again.stdout)) == _table(ref)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref_dir.iterdir())
    for file in ref_dir.iterdir():
        assert (out / file.name).read_bytes() == file.read_bytes(), file.name
    _integrity(cache)
    _no_leftovers(out, cache)


def _train_args(assets, out: Path) -> list[str]:
    from rrbench.testing import make_train_task

    task = assets["root"] / "train-task"
    if not task.exists():
        make_train_task(task)
    return ["train", "--task", str(task), "--base", str(assets["ce"]), "--loss", "bce", "--miner", "n0-random",
            "--max-steps", "4", "--eval-steps", "2", "--batch-size", "2", "--lr", "1e-3", "--negatives", "2",
            "--max-length", "32", "--seed", "5", "--no-select-best", "--threads", "1", "--output", str(out),
            "--quiet"]


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def train_reference(assets):
    out = assets["root"] / "train-ref" / "out"
    done = _cli(_train_args(assets, out), assets["root"] / "train-ref" / "cache")
    assert done.returncode == 0, done.stderr
    return out


#: train_config.json, then the phase's completion marker, then the checkpoint manifest (written last by design)
TRAIN_KILLS = ["write:1", "write:2", "write:3"]


def test_train_survives_kill_9_at_every_stage(assets, train_reference, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    _kill_chain(_train_args(assets, out), cache, TRAIN_KILLS, check=lambda: None)
    ref, got = _weights(train_reference), _weights(out)
    assert ref.keys() == got.keys()
    for key in ref:
        assert (ref[key] == got[key]).all(), key  # bit-identical: resume promises the same weights
    _integrity(cache)
    _no_leftovers(out.parent, cache)


def test_the_suite_kills_at_least_20_points():
    assert len(RUN_KILLS) + 2 + len(CANDIDATE_KILLS) + len(TRAIN_KILLS) >= 20


# -- concurrency -----------------------------------------------------------------------------------------------------
def test_two_writers_of_one_output_folder_one_wins_the_other_fails_cleanly(assets, tmp_path):
    out = tmp_path / "runs" / "shared"
    args = ["run", "--task", str(assets["task"]), "--output", str(out), "--quiet"]
    procs = [_cli(args, tmp_path / f"cache{i}", wait=False) for i in range(2)]
    results = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2).strip()
    assert len(loser.splitlines()) == 1 and str(out) in loser, loser
    assert (out / "results.json").is_file() and (out / "run.trec").is_file()
    _no_leftovers(out.parent)


def test_four_processes_share_one_score_cache_and_candidate_store(assets, tmp_path):
    """Different configurations at once on one cache: each result equals its single-process result, and the cache
    holds exactly the rows a sequential fill holds (nothing lost, nothing duplicated)."""
    import rrbench

    other = make_tiny_bert(tmp_path / "ce-other", seed=9)
    configs = [(assets["ce"], 2), (assets["ce"], 3), (assets["ce"], 4), (other, 4)]
    shared = tmp_path / "shared-cache"
    procs = []
    for i, (model, top) in enumerate(configs):
        args = ["run", "--task", str(assets["task"]), "--reranker", str(model), "--top-k-rerank", str(top),
                "--batch-size", "1", "--output", str(tmp_path / f"p{i}"), "--quiet"]
        procs.append(_cli(args, shared, wait=False))
    for proc in procs:
        assert proc.wait(timeout=600) == 0, proc.communicate()[1]
    _integrity(shared)
    sequential = tmp_path / "sequential-cache"
    for i, (model, top) in enumerate(configs):
        alone = rrbench.run(task=str(assets["task"]), reranker=str(model), top_k_rerank=top, batch_size=1,
                            cache_dir=str(sequential), output=str(tmp_path / f"s{i}"), show_progress=False)
        _same_record(tmp_path / f"p{i}", tmp_path / f"s{i}")
        assert alone["metrics"]
    counts = []
    for db in (shared, sequential):
        with sqlite3.connect(db / "scores.sqlite") as con:
            counts.append((con.execute("SELECT COUNT(*) FROM pair_scores").fetchone()[0],
                           con.execute("SELECT COUNT(*) FROM models").fetchone()[0]))
    assert counts[0] == counts[1] and counts[0][1] == 2
    _no_leftovers(shared)


def test_cache_clear_during_a_run(assets, tmp_path):
    """`rrbench cache clear` while a run scores into the same cache: both finish, the run's results are those of a
    run without cache, and the cache stays sound."""
    import rrbench
    from tests.pipeline.test_interrupt_and_model_path import _big_task, _stored_pairs

    task = _big_task(tmp_path / "big")
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["run", "--task", str(task), "--reranker", str(assets["ce"]), "--batch-size", "1", "--output", str(out),
            "--quiet"]
    proc = _cli(args, cache, wait=False)
    deadline = time.time() + 300
    while _stored_pairs(cache) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before the cache could be cleared under it"
    cleared = _cli(["cache", "clear"], cache)
    assert cleared.returncode == 0, cleared.stderr
    assert proc.wait(timeout=600) == 0, proc.communicate()[1]
    rrbench.run(task=str(task), reranker=str(assets["ce"]), batch_size=1, use_cache=False,
                output=str(tmp_path / "fresh"), show_progress=False)
    _same_record(out, tmp_path / "fresh")
    _integrity(cache)
