"""`rrbench sweep fill` workers sharing one PostgreSQL score store through its fill queue (a real server, never mocked).

- four workers, one of them SIGKILLed in the middle of a unit: the unit is re-leased, and the store ends with exactly
  the pairs of a single-process SQLite fill, each once, scores within float32's tolerance;
- two workers disagreeing on a score (a fingerprint collision made on purpose): refused loudly, nothing written;
- the database unreachable, or lost in the middle of a fill: one line, exit 2, no unit marked done without its scores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rrbench.cli.main import main
from rrbench.pipeline.score_store import ScoreConflictError, Unit, pair_key
from rrbench.pipeline.score_store_pg import PostgresScoreStore
from tests.hpo.test_sweep import make_sweep_task
from tests.support.score_stores import pair_scores, pg_rows

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LEASE_S = 3


@pytest.fixture(scope="module")
def fill_env(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("fill-queue")
    task = make_sweep_task(root / "task")
    args = ["--task", str(task), "--reranker", str(tiny_model), "--quiet", "--unit-pairs", "6"]
    return {"root": root, "task": task, "args": args}


@pytest.fixture(scope="module")
def reference(fill_env):
    """The single-process fill into a SQLite cache: what every shared fill must end equal to."""
    folder = fill_env["root"] / "reference"
    assert main(["sweep", "fill", *fill_env["args"], "--cache-dir", str(folder)]) == 0
    ((fingerprint, scores),) = pair_scores(folder).items()
    assert len(scores) > 60
    return fingerprint, scores


def _database(postgres_url: str, name: str) -> str:
    from tests.support.pg_server import create_database

    return create_database(postgres_url, f"{name}_{uuid.uuid4().hex[:8]}")


def _worker(args: list[str], url: str, log: Path, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "RRBENCH_FILL_LEASE": str(LEASE_S), "OMP_NUM_THREADS": "1",
                   "TOKENIZERS_PARALLELISM": "false", **env}
    return subprocess.Popen([sys.executable, "-m", "rrbench.cli", "sweep", "fill", *args, "--cache-dir", url],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=environment)


def _assert_equal_to_reference(url: str, reference: tuple[str, dict[bytes, float]]) -> None:
    fingerprint, want = reference
    ((stored_fingerprint, got),) = pair_scores(url).items()
    assert stored_fingerprint == fingerprint
    assert set(got) == set(want)  # the same pairs (primary key (model, key): each one once)
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-4


def test_four_workers_one_killed_mid_unit_end_equal_to_a_single_process_fill(fill_env, reference, postgres_url,
                                                                            tmp_path):
    url = _database(postgres_url, "fill4")
    # the first worker dies by SIGKILL after scoring its first unit, before writing it (the worst moment)
    victim = _worker(fill_env["args"], url, tmp_path / "victim.log", RRBENCH_TEST_KILL_AT="fill-unit:1")
    assert victim.wait(timeout=300) == -signal.SIGKILL, (tmp_path / "victim.log").read_text()[-2000:]
    units = pg_rows(url, "SELECT unit, state, worker, attempts FROM rrbench_fill_units")
    assert len(units) > 10
    (lost,) = [u for u in units if u[1] == "leased"]  # its one unit: leased, not done; nothing else touched
    assert all(u[1] == "pending" for u in units if u != lost)
    assert pg_rows(url, "SELECT count(*) FROM rrbench_pair_scores") == [(0,)]

    workers = [_worker(fill_env["args"], url, tmp_path / f"w{i}.log") for i in range(3)]
    for i, worker in enumerate(workers):
        assert worker.wait(timeout=300) == 0, (tmp_path / f"w{i}.log").read_text()[-2000:]

    _assert_equal_to_reference(url, reference)
    states = {bytes(u): (s, w, a) for u, s, w, a in pg_rows(url, "SELECT unit, state, worker, attempts "
                                                                 "FROM rrbench_fill_units")}
    assert {s for s, _, _ in states.values()} == {"done"}
    _, worker, attempts = states[bytes(lost[0])]
    assert worker != lost[2] and attempts == 2  # re-leased once its lease expired, and done by another worker
    # each pair scored once: the workers' counters add up to the stored pairs, with no duplicate write
    rows = pg_rows(url, "SELECT label, units, pairs_scored, pairs_new, pairs_duplicate FROM rrbench_fill_workers")
    assert sum(r[2] for r in rows) == sum(r[3] for r in rows) == len(reference[1])
    assert sum(r[4] for r in rows) == 0 and sum(r[1] for r in rows) == len(states)
    assert {r[0] for r in rows} == {"sweep fill"}
    # a later fill finds everything done and scores nothing
    again = _worker(fill_env["args"], url, tmp_path / "again.log")
    assert again.wait(timeout=300) == 0
    assert "0 pairs scored (all were cached)" in (tmp_path / "again.log").read_text()


def test_cache_stats_shows_units_and_workers_of_a_database_store(fill_env, reference, postgres_url, capsys):
    url = _database(postgres_url, "stats")
    assert main(["sweep", "fill", *fill_env["args"], "--cache-dir", url]) == 0
    _assert_equal_to_reference(url, reference)
    capsys.readouterr()
    assert main(["cache", "stats", "--cache-dir", url]) == 0
    out = capsys.readouterr().out
    units = pg_rows(url, "SELECT count(*) FROM rrbench_fill_units")[0][0]
    assert f"{len(reference[1])} pair scores" in out
    assert f"dev_select: {units} / 0 / 0" in out  # done / leased / pending
    assert "[sweep fill]" in out and "pairs/s" in out


def test_two_workers_disagreeing_on_a_score_are_refused(postgres_url):
    """A fingerprint collision made on purpose: two workers hold the same unit (the first one's lease ran out), the
    second one's scores differ: its write is refused, the unit keeps the first one's scores."""
    url = _database(postgres_url, "clash")
    first, second = PostgresScoreStore(url), PostgresScoreStore(url)
    second.worker = first.worker + "-other"
    mid = first.model_id("c" * 64, "collider", {"dtype": "float32"})
    keys = [pair_key("claim", f"sentence {i}") for i in range(8)]
    unit = Unit(b"u" * 16, mid, "task", "dev_select", len(keys))
    first.register_units([unit])
    assert first.claim_unit([unit.key], lease_s=0.01) == unit.key
    time.sleep(0.05)
    assert second.claim_unit([unit.key], lease_s=60) == unit.key  # expired by the database's clock: taken over
    first.complete_unit(unit.key, mid, [(k, float(i)) for i, k in enumerate(keys)], 1e-4, 0.1)
    agreeing = second.complete_unit(unit.key, mid, [(k, i + 1e-7) for i, k in enumerate(keys)], 1e-4, 0.1)
    assert (agreeing.new, agreeing.duplicate) == (0, 8)  # within float32's tolerance: kept, counted as duplicates
    with pytest.raises(ScoreConflictError, match=r"8 of 8 already stored scores of model collider .* disagree"):
        second.put_pairs(mid, [(k, i + 0.5) for i, k in enumerate(keys)], 1e-4)
    assert first.get_pairs(mid, keys) == {k: float(i) for i, k in enumerate(keys)}
    first.close()
    second.close()


def test_importing_disagreeing_scores_exits_1_with_one_line(fill_env, reference, postgres_url, tmp_path, capsys):
    """The same refusal through the CLI: a bundle whose scores disagree with the store's."""
    import pyarrow.parquet as parquet

    url = _database(postgres_url, "clashcli")
    assert main(["sweep", "fill", *fill_env["args"], "--cache-dir", url]) == 0
    fingerprint = reference[0]
    assert main(["cache", "export", "--cache-dir", url, "--task", str(fill_env["task"]), "--split", "dev_select",
                 "--model", fingerprint[:12], "--output", str(tmp_path)]) == 0
    (bundle,) = tmp_path.glob("*.parquet")
    # another model's scores under this fingerprint: re-score the bundle's pairs in a fresh SQLite cache, shifted
    from rrbench.pipeline.score_bundle import read_bundle
    from rrbench.pipeline.score_store_sqlite import SQLiteScoreStore

    read = read_bundle(bundle)
    other = tmp_path / "other"
    store = SQLiteScoreStore(other)
    mid = store.model_id(fingerprint, read.meta["model_id"], read.meta["fingerprint_info"])
    store.put_pairs(mid, [(k, s + 0.25) for k, s in zip(read.keys, read.scores, strict=True)])
    store.close()
    capsys.readouterr()
    assert main(["cache", "export", "--cache-dir", str(other), "--task", str(fill_env["task"]), "--split",
                 "dev_select", "--model", fingerprint[:12], "--output", str(tmp_path / "shifted.parquet")]) == 0
    # the address is a hash of the content: other scores, another address
    assert read_bundle(tmp_path / "shifted.parquet").meta["content_sha256"] != read.meta["content_sha256"]
    capsys.readouterr()
    assert main(["cache", "import", str(tmp_path / "shifted.parquet"), "--cache-dir", url,
                 "--task", str(fill_env["task"])]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "disagree" in err and "nothing was written" in err
    _assert_equal_to_reference(url, reference)  # the store kept its own scores
    assert parquet.read_table(bundle).num_rows == len(reference[1])


def test_an_unreachable_database_is_one_line_exit_2(fill_env, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    url = f"postgresql+psycopg://rrbench:s3cret@127.0.0.1:{port}/scores"
    assert main(["sweep", "fill", *fill_env["args"], "--cache-dir", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "score store postgresql+psycopg://rrbench:***@127.0.0.1" in err
    assert "s3cret" not in err


def test_a_database_lost_in_the_middle_of_a_fill_is_one_line_exit_2_and_marks_no_partial_unit(
        fill_env, postgres_url, tmp_path):
    import psycopg

    url = _database(postgres_url, "lost")
    name = url.rsplit("/", 1)[1]
    # the worker stops itself (SIGSTOP) with its second unit scored and not yet written
    worker = _worker(fill_env["args"], url, tmp_path / "lost.log", RRBENCH_TEST_STOP_AT="fill-unit:2")
    deadline = time.monotonic() + 300
    while _process_state(worker.pid) != "T":
        assert worker.poll() is None and time.monotonic() < deadline, (tmp_path / "lost.log").read_text()
        time.sleep(0.1)
    admin = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    try:  # the database goes away: no new connections, and the worker's are cut
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname=%s", (name,))
        worker.send_signal(signal.SIGCONT)
        assert worker.wait(timeout=120) == 2
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    lines = [line for line in (tmp_path / "lost.log").read_text().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rrbench: error: score store postgresql+psycopg://"), lines
    # the first unit is done with its scores; the second is not done and none of its scores is stored
    done = pg_rows(url, "SELECT count(*), coalesce(sum(pairs), 0) FROM rrbench_fill_units WHERE state='done'")[0]
    assert done[0] == 1
    assert pg_rows(url, "SELECT count(*) FROM rrbench_pair_scores")[0][0] == done[1]
    assert pg_rows(url, "SELECT count(*) FROM rrbench_fill_units WHERE state='leased'")[0][0] == 1


def _process_state(pid: int) -> str:
    """The state letter of a process (``T``: stopped), from /proc."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def test_units_are_shared_between_commands_needing_the_same_pairs():
    """A unit's address is its model and sorted pair keys: the order pairs come in, and labels, do not matter."""
    from rrbench.pipeline.fill_queue import plan_units

    groups = [[("q1", "a"), ("q1", "b")], [("q2", "c"), ("q2", "a")], [("q3", "d")]]
    one = plan_units("f" * 64, 1, "task", "dev_select", groups, unit_pairs=2)
    other = plan_units("f" * 64, 1, "task", "other label", [list(reversed(g)) for g in groups], unit_pairs=2)
    assert [u.unit.key for u in one] == [u.unit.key for u in other]
    assert [u.unit.pairs for u in one] == [2, 2, 1]  # a query is never split; each unit reaches the target
    assert plan_units("e" * 64, 1, "task", "dev_select", groups, 2)[0].unit.key != one[0].unit.key
    with pytest.raises(Exception, match="--unit-pairs"):
        plan_units("f" * 64, 1, "task", "dev_select", groups, unit_pairs=0)
