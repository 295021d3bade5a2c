"""``rrbench bench speed``: a replica's row (speed only, parameters counted on the meta device) and its errors."""

from __future__ import annotations

import json


def test_bench_speed_replica_reports_params_tokens_and_speed_only(cli):
    out = cli("bench", "speed", "--reranker", "minilm-l12", "--replica", "--pairs", "6", "--threads", "1", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout)
    assert row["kind"] == "replica" and row["quality"] == "speed only"
    assert row["params"] == 33_360_385 and row["pairs"] == 6 and row["pairs_per_s"] > 0
    assert 20 < row["tokens_per_pair"] < 200 and row["tokens"] == "real (bert-base-uncased)"
    assert row["machine"]["cpu_capability"]


def test_bench_speed_replica_of_a_model_without_architecture_is_one_line(cli):
    out = cli("bench", "speed", "--reranker", "cross-encoder", "--replica", "--pairs", "2")
    assert out.returncode == 2
    assert "no architecture to replicate" in out.stderr and "Traceback" not in out.stderr
