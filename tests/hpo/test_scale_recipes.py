"""docs/scale.md's recipes, run as written against a local PostgreSQL server, so the page cannot rot.

Only what cannot run here is replaced, in plain sight: ``srun`` runs its command (the job array is a loop starting the
script once per array task), ``ssh HOST CMD`` runs ``CMD`` on this machine, and ``--devices auto`` (no GPU here)
becomes ``--device cpu``. The scripts are bash, with ``rrbench`` on the PATH.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.support.score_stores import pair_scores, pg_rows
from tests.support.tiny_matrix import tier_b, tiny_assets

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


MATRIX = """
    name: slurm
    task: {task}
    factors: {{G: [bm25], M: ["{bert}"], R: [r0], N: [n0-random]}}
    seeds: [5]
    exports: [dev_select]
    budgets:
""" + tier_b(steps=2, evaluations=1, enqueue="{lr: 0.001}") + """
      tier_a: {{trials: 2, max_fe: 1.0, sampler: random, space: {{interpolate: [0.0, 0.5]}}}}
      tier_c: {{finalists: 1}}
"""


def recipes() -> dict[str, str]:
    """``<!-- recipe: NAME -->`` followed by a bash block in docs/scale.md, by name."""
    text = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")
    found = dict(re.findall(r"<!-- recipe: ([\w-]+) -->\n```bash\n(.*?)```", text, flags=re.S))
    assert set(found) == {"local-postgres", "slurm-fill", "slurm-matrix", "ssh"}, sorted(found)
    return found


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false", "RRBENCH_FILL_LEASE": "10", **extra}


def _script(tmp_path: Path, name: str, body: str, prelude: str = "") -> Path:
    path = tmp_path / f"{name}.sh"
    path.write_text("set -euo pipefail\n" + prelude + body, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fill_task(tmp_path_factory, tiny_model):
    from tests.hpo.test_sweep import make_sweep_task

    return make_sweep_task(tmp_path_factory.mktemp("recipes") / "task")


def test_the_local_postgres_recipe_starts_an_empty_store_and_stops_it(tmp_path):
    from tests.support.pg_server import find_pg_bin

    if find_pg_bin() is None:
        pytest.skip("no PostgreSQL server binaries installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(["bash", str(_script(tmp_path, "local", recipes()["local-postgres"]))], capture_output=True,
                          text=True, timeout=300, env=_env(PORT=str(port), RRBENCH_CACHE=""))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"cache postgresql://postgres@127.0.0.1:{port}/postgres: 0 pair scores" in done.stdout
    with socket.socket() as s:  # the server is stopped again
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_the_slurm_recipes_fill_then_run_the_matrix_on_one_database(tmp_path, fill_task, tiny_model, postgres_url):
    from tests.hpo.test_matrix_tiers import _three_split_task
    from tests.support.pg_server import create_database

    url = create_database(postgres_url, f"slurm_{uuid.uuid4().hex[:8]}")
    assets = tiny_assets(tmp_path, _three_split_task(tmp_path / "task"))
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(textwrap.dedent(MATRIX).format(**assets), encoding="utf-8")
    env = _env(RRBENCH_CACHE=url, TASK=assets["task"], RERANKER=assets["bert"], DEVICE="cpu", MATRIX=str(matrix),
               OUTPUT=str(tmp_path / "out"), RRBENCH_FILL_UNIT_PAIRS="8")
    srun = 'srun() { "$@"; }  # srun replaced: this array task runs the command itself\n'
    for name in ("slurm-fill", "slurm-matrix"):
        script = _script(tmp_path, name, recipes()[name], srun)
        (tmp_path / "logs").mkdir(exist_ok=True)
        # the job array, as a plain loop: the same script once per array task, all at once
        with contextlib.ExitStack() as files:
            sinks = [files.enter_context((tmp_path / "logs" / f"{name}-{i}.log").open("w")) for i in range(2)]
            tasks = [subprocess.Popen(["bash", str(script)], env={**env, "SLURM_ARRAY_TASK_ID": str(i)},
                                      stdout=sink, stderr=subprocess.STDOUT) for i, sink in enumerate(sinks)]
            for i, task in enumerate(tasks):
                assert task.wait(timeout=900) == 0, (tmp_path / "logs" / f"{name}-{i}.log").read_text()[-3000:]
        if name == "slurm-fill":
            assert pg_rows(url, "SELECT count(*) FROM rrbench_fill_units WHERE state <> 'done'") == [(0,)]
            filled = pg_rows(url, "SELECT count(*) FROM rrbench_pair_scores")[0][0]
            assert filled > 0
    assert (tmp_path / "out" / "report.md").is_file()
    # fill workers and matrix workers together sent each pair to a model once (the matrix read what the fill
    # stored: this task's splits repeat the same texts, so the fill's dev_select pairs were all it needed)
    workers = pg_rows(url, "SELECT label, pairs_scored, pairs_new, pairs_duplicate FROM rrbench_fill_workers")
    assert {w[0] for w in workers} == {"sweep fill", "matrix:slurm"}
    stored = pg_rows(url, "SELECT count(*) FROM rrbench_pair_scores")[0][0]
    assert stored >= filled and sum(w[1] for w in workers) == sum(w[2] for w in workers) == stored
    assert sum(w[3] for w in workers) == 0


def test_the_ssh_recipe_fills_the_store_like_one_process(tmp_path, fill_task, tiny_model, postgres_url):
    from rrbench.cli.main import main
    from tests.support.pg_server import create_database

    reference = tmp_path / "reference"
    assert main(["sweep", "fill", "--task", str(fill_task), "--reranker", str(tiny_model), "--quiet",
                 "--cache-dir", str(reference)]) == 0
    url = create_database(postgres_url, f"ssh_{uuid.uuid4().hex[:8]}")
    body = recipes()["ssh"].replace("--devices auto", "--device cpu")  # no GPU on this machine
    ssh = 'ssh() { shift; bash -c "$*"; }  # ssh replaced: the command runs on this machine\n'
    work = tmp_path / "work"
    work.mkdir()
    env = _env(RRBENCH_CACHE=url, TASK=str(fill_task), RERANKER=str(tiny_model), WORKDIR=str(work),
               RRBENCH_FILL_UNIT_PAIRS="8")
    done = subprocess.run(["bash", str(_script(tmp_path, "ssh", body, ssh))], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"cache {url}" in done.stdout  # the watch line of the recipe
    logs = [work / f"fill-gpu0{i}.log" for i in (1, 2, 3)]
    deadline = time.monotonic() + 600
    while not all(log.is_file() and "pairs scored" in log.read_text() for log in logs):
        failed = [log.read_text() for log in logs if log.is_file() and "error" in log.read_text()]
        assert not failed and time.monotonic() < deadline, failed or [log.read_text() for log in logs if log.exists()]
        time.sleep(0.5)
    ((fingerprint, want),) = pair_scores(reference).items()
    got = pair_scores(url)[fingerprint]
    assert set(got) == set(want) and max(abs(got[k] - want[k]) for k in want) <= 1e-4
    rows = pg_rows(url, "SELECT pairs_scored, pairs_new, pairs_duplicate FROM rrbench_fill_workers")
    assert len(rows) == 3 and sum(r[0] for r in rows) == len(want) and sum(r[2] for r in rows) == 0
