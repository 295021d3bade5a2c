"""`rrbench sweep fill --workers N` / `--devices`: worker processes on one machine sharing the fill queue, here through a
SQLite cache folder (the PostgreSQL store's tests are in test_fill_queue_pg.py)."""

from __future__ import annotations

import pytest

from rrbench.cli.main import main
from rrbench.hpo.fill_workers import plan_workers, resolve_devices
from rrbench.util.errors import UsageError
from tests.hpo.test_sweep import make_sweep_task
from tests.support.score_stores import pair_scores

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_two_cpu_workers_on_a_sqlite_cache_fill_what_one_process_fills(tmp_path, tiny_model, capsys):
    task = make_sweep_task(tmp_path / "task")
    args = ["sweep", "fill", "--task", str(task), "--reranker", str(tiny_model), "--quiet"]
    assert main([*args, "--cache-dir", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    assert main([*args, "--cache-dir", str(tmp_path / "two"), "--workers", "2", "--unit-pairs", "8"]) == 0
    out = capsys.readouterr().out
    assert "starting 2 fill workers (1 thread(s) each)" in out
    assert "[worker 0]" in out and "[worker 1]" in out
    ((fingerprint, want),) = pair_scores(tmp_path / "one").items()
    got = pair_scores(tmp_path / "two")[fingerprint]
    assert set(got) == set(want) and max(abs(got[k] - want[k]) for k in want) <= 1e-4
    import sqlite3

    db = sqlite3.connect(str(tmp_path / "two" / "scores.sqlite"))
    assert db.execute("SELECT count(*) FROM fill_units WHERE state != 'done'").fetchone() == (0,)
    workers = db.execute("SELECT label, pairs_scored, pairs_new, pairs_duplicate FROM fill_workers").fetchall()
    db.close()
    assert len(workers) == 2 and {w[0] for w in workers} == {"sweep fill"}
    assert sum(w[1] for w in workers) == sum(w[2] for w in workers) == len(want)
    assert sum(w[3] for w in workers) == 0


def test_worker_plans_split_the_cores_and_follow_the_devices():
    assert [(p.device, p.threads) for p in plan_workers(4, [], None, cores=8)] == [(None, 2)] * 4
    assert [(p.device, p.threads) for p in plan_workers(4, [], None, cores=2)] == [(None, 1)] * 4
    assert [p.device for p in plan_workers(1, ["cuda:0", "cuda:1"], None, cores=16)] == ["cuda:0", "cuda:1"]
    assert plan_workers(2, ["cuda:0", "cuda:1"], 3, cores=16)[1].threads == 3
    with pytest.raises(UsageError, match="one worker runs per device"):
        plan_workers(3, ["cuda:0", "cuda:1"], None, cores=16)
    with pytest.raises(UsageError, match="--workers must be >= 1"):
        plan_workers(0, [], None, cores=2)
    assert resolve_devices("cuda:0, cuda:2") == ["cuda:0", "cuda:2"]
    with pytest.raises(UsageError, match="twice"):
        resolve_devices("cuda:0,cuda:0")


def test_devices_auto_without_a_gpu_is_one_line_exit_2(tmp_path, tiny_model, capsys):
    import torch

    if torch.cuda.device_count():
        pytest.skip("this machine has a GPU")
    task = make_sweep_task(tmp_path / "task")
    assert main(["sweep", "fill", "--task", str(task), "--reranker", str(tiny_model), "--devices", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA device is visible" in err
