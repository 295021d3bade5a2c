"""Several `rrbench matrix run` workers on one PostgreSQL study; one is killed with SIGKILL mid-trial.

Every enqueued parameter set must end with exactly one completed trial whose metrics equal a single-worker run's,
and the killed trial must stay failed while its retry (re-enqueued through the heartbeat) completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import optuna
import pytest

from tests.support.tiny_matrix import tier_b, tiny_assets

pytest.importorskip("torch")

LRS = [0.001, 0.002, 0.003, 0.004]

MATRIX = """
    name: pgtest
    task: {task}
    factors: {{G: [bm25], M: ["{bert}"], R: [r1], N: [n0-random]}}
    seeds: [5]
    budgets:
      tier_c: {{confirm_on: dev_select}}   # the mini task has no dev_final; these tests stop after Tier B
""" + tier_b(steps=16, evaluations=2, enqueue="<enqueue>").replace("<enqueue>", "{enqueue}")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from rrbench.testing import make_train_task

    root = tmp_path_factory.mktemp("pg-matrix")
    return tiny_assets(root, make_train_task(root / "mini"))


def _worker(matrix: Path, url: str, out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RRBENCH_HEARTBEAT_INTERVAL": "1", "RRBENCH_HEARTBEAT_GRACE": "3",
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    handle = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", "rrbench.cli", "matrix", "run", str(matrix), "--stop-after", "tier-b", "--storage", url,
                             "--output", str(out), "--no-eval"], stdout=handle, stderr=subprocess.STDOUT, env=env)


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    from rrbench.util.storage import open_storage

    storage = open_storage(url, None)
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)


def test_three_workers_one_killed(tmp_path, assets, postgres_url):
    from tests.support.pg_server import create_database

    matrix = tmp_path / "matrix.yaml"
    enqueue = ", ".join(f"{{lr: {lr}}}" for lr in LRS)
    matrix.write_text(textwrap.dedent(MATRIX.format(enqueue=enqueue, **assets)), encoding="utf-8")

    # reference: one worker alone
    single_url = create_database(postgres_url, f"single_{uuid.uuid4().hex[:8]}")
    ref = _worker(matrix, single_url, tmp_path / "single", tmp_path / "single.log")
    assert ref.wait(timeout=600) == 0, (tmp_path / "single.log").read_text()[-3000:]
    reference = {t.params["lr"]: t for t in _trials(single_url) if t.state == optuna.trial.TrialState.COMPLETE}
    assert sorted(reference) == LRS

    url = create_database(postgres_url, f"multi_{uuid.uuid4().hex[:8]}")
    out = tmp_path / "multi"
    victim = _worker(matrix, url, out, tmp_path / "victim.log")
    # kill it mid-trial: once a trial folder exists (training has started) and the trial is RUNNING
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        started = list(out.glob("hpo/*/trial-*/train_config.json"))
        if started and victim.poll() is None:
            break
        assert victim.poll() is None, (tmp_path / "victim.log").read_text()[-3000:]
        time.sleep(0.05)
    else:
        pytest.fail("the first worker never started a trial")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    running = [t for t in _trials(url) if t.state == optuna.trial.TrialState.RUNNING]
    assert len(running) == 1, "the killed worker should have left exactly one trial running"
    killed = running[0].number

    workers = [_worker(matrix, url, out, tmp_path / f"w{i}.log") for i in range(2)]
    for i, worker in enumerate(workers):
        assert worker.wait(timeout=600) == 0, (tmp_path / f"w{i}.log").read_text()[-3000:]

    trials = _trials(url)
    by_state = {state: [t for t in trials if t.state == state] for state in optuna.trial.TrialState}
    complete = by_state[optuna.trial.TrialState.COMPLETE]
    # every parameter set: exactly one completed trial, equal to the single worker's
    assert sorted(t.params["lr"] for t in complete) == LRS
    for trial in complete:
        ref_trial = reference[trial.params["lr"]]
        assert trial.value == pytest.approx(ref_trial.value, abs=1e-9)
        for key, value in ref_trial.user_attrs["eval"].items():
            if isinstance(value, float):
                assert trial.user_attrs["eval"][key] == pytest.approx(value, abs=1e-9), key
    # the killed trial stays failed; its retry completed
    killed_trial = next(t for t in trials if t.number == killed)
    assert killed_trial.state == optuna.trial.TrialState.FAIL
    retries = [t for t in complete if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].params == killed_trial.params
    # the cell was finished once
    assert len(list(out.glob("train_runs/*/cell.json"))) == 1
