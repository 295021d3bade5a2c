"""Two `rrbench matrix run` workers sharing one PostgreSQL database for the study and the score store: every pair any
cell needs (evaluations, exports, Tier A fills, confirmation runs) is sent to a model once across both workers, and
the matrix report shows the count."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from rrbench.cli.main import main
from tests.support.score_stores import pg_rows
from tests.support.tiny_matrix import tier_b, tiny_assets

pytest.importorskip("torch")

MATRIX = """
    name: shared
    task: {task}
    factors: {{G: [bm25, tfidf], M: ["{bert}"], R: [r0], N: [n0-random]}}
    seeds: [5]
    exports: [dev_select]
    budgets:
""" + tier_b(steps=2, evaluations=1, enqueue="{lr: 0.001}") + """
      tier_a: {{trials: 3, max_fe: 1.0, sampler: random, space: {{interpolate: [0.0, 0.5]}}}}
      tier_c: {{finalists: 2}}
"""


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from tests.hpo.test_matrix_tiers import _three_split_task

    root = tmp_path_factory.mktemp("shared-scores")
    return tiny_assets(root, _three_split_task(root / "task"))


def test_two_matrix_workers_on_one_store_score_each_pair_once(tmp_path, assets, postgres_url, capsys):
    from tests.support.pg_server import create_database

    url = create_database(postgres_url, f"matrix_{uuid.uuid4().hex[:8]}")
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(textwrap.dedent(MATRIX.format(**assets)), encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "RRBENCH_FILL_UNIT_PAIRS": "8",
           "RRBENCH_FILL_LEASE": "30"}
    command = [sys.executable, "-m", "rrbench.cli", "matrix", "run", str(matrix), "--output", str(out),
               "--storage", url, "--cache-dir", url]
    logs = [tmp_path / f"w{i}.log" for i in range(2)]
    with contextlib.ExitStack() as files:
        sinks = [files.enter_context(log.open("w")) for log in logs]
        workers = [subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env) for sink in sinks]
    # what docs/scale.md says a matrix worker holds for scores: at most 2 connections (work and lease heartbeat)
    name, most, deadline = url.rsplit("/", 1)[1], [0, 0], time.monotonic() + 900
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        scores, total = pg_rows(postgres_url, "SELECT count(*) FILTER (WHERE application_name='rrbench-scores'), "
                                "count(*) FROM pg_stat_activity WHERE datname=%s", (name,))[0]
        most = [max(most[0], scores), max(most[1], total)]
        time.sleep(0.2)
    for worker, log in zip(workers, logs, strict=True):
        assert worker.wait(timeout=60) == 0, log.read_text()[-3000:]
    with capsys.disabled():
        print(f"connections at most: {most[0]} for scores, {most[1]} in all (2 workers)")
    assert 0 < most[0] <= 2 * 2, most

    stored = pg_rows(url, "SELECT count(*) FROM rrbench_pair_scores")[0][0]
    assert stored > 0
    capsys.readouterr()
    assert main(["matrix", "report", str(matrix), "--output", str(out), "--cache-dir", url, "--json"]) == 0
    scoring = json.loads(capsys.readouterr().out)["scoring"]
    assert len(scoring["workers"]) == 2 and {w["label"] for w in scoring["workers"]} == {"matrix:shared"}
    # the pairs sent to a model, summed over both workers, are exactly the pairs stored: none was scored twice
    assert scoring["pairs_scored"] == scoring["pairs_new"] == stored
    assert scoring["pairs_duplicate"] == 0
    report = (out / "report.md").read_text()
    assert "## Scoring through the shared score store" in report
    assert f"2 workers sent {stored} pairs to the models" in report and "each pair was scored once" in report
    assert "postgresql+psycopg://postgres@" in report
    # the cells' records read the shared store: every model they name is one the store holds scores of
    held = {row[0] for row in pg_rows(url, "SELECT fingerprint FROM rrbench_score_models")}
    records = [json.loads(r.read_text()) for r in (out / "leaderboards").rglob("results.json")]
    used = {f for r in records if r["provenance"]["cache"].get("enabled")
            for f in r["provenance"]["cache"]["fingerprints"]}
    assert used and used <= held, (used, held)
