"""The engine benchmark runs end to end on a few queries and its report says what the README table reads from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rerank_throughput_reports_rates_ratios_and_agreement(tmp_path):
    out = tmp_path / "report.json"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rerank_throughput.py"), "--dtype", "float32",
                    "--limit-queries", "4", "--peak-seconds", "0.2", "--json", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    report = json.loads(out.read_text())
    assert report["dtype"] == "float32" and report["queries"] == 4 and report["pairs"] > 4
    assert set(report["pairs_per_s"]) == {"a_sequential_fp32", "b_flat_predict", "engine"}
    assert all(rate > 0 for rate in report["pairs_per_s"].values())
    assert set(report["ceiling_pairs_per_s"]) == {"bfloat16", "float32", "int8"}
    # fp32 engine and CrossEncoder.predict read the same weights: same scores, same rankings
    assert report["agreement_vs_a"]["engine_max_abs_diff"] < 1e-4
    assert report["agreement_vs_a"]["engine_top10_unchanged"] == 1.0


def test_rerank_peers_prints_one_table_with_every_row(tmp_path, tiny_model):
    """The side-by-side benchmark on a tiny model and two queries: every row runs, fp32 rows keep fp32's ranking."""
    out = tmp_path / "peers.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "rerank_peers.py"), "--model-path",
                             str(tiny_model), "--limit-queries", "2", "--peak-seconds", "0.1", "--threads", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert {"sequential fp32", "CrossEncoder.predict flat fp32", "FlagReranker.compute_score",
            "plain ONNX Runtime session", "plain OpenVINO compiled model", "rrbench engine torch float32",
            "rrbench engine torch int8", "rrbench engine onnx float32", "rrbench engine onnx int8",
            "rrbench engine openvino float32", "rrbench engine openvino int8"} <= set(rows)
    for name, row in rows.items():
        assert row["pairs_per_s"] > 0 and row["ceiling_share"] > 0, name
        if row["dtype"].startswith("float32"):
            assert row["max_abs_diff"] < 1e-4 and row["ndcg10_diff"] == 0.0, name
    assert "| row | dtype | pairs/s |" in result.stdout


def test_the_sweep_benchmark_times_the_cli_rows_and_the_storage(tmp_path, tiny_model):
    """The Tier A benchmark on the sweep tests' small task with a handful of trials: every row runs and reports."""
    import os

    from tests.hpo.test_sweep import make_sweep_task

    task = make_sweep_task(tmp_path / "task")
    out = tmp_path / "sweep.json"
    env = {**os.environ, "RRBENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep_tier_a.py"), "--task", str(task),
                             "--model-path", str(tiny_model), "--max-fe", "0.5", "--cli-trials", "6",
                             "--reference-trials", "12", "--trials", "20", "--tpe-trials", "6", "--threads", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [row["trials"] for row in report["cli"]] == [6, 6, 12]
    assert all(row["wall_s"] > 0 and row["best"] is not None for row in report["cli"])
    assert report["cli"][-1]["to_reference_s"] == report["cli"][-1]["to_best_s"]
    assert set(report["storage_trials_per_min"]) == {"per_call_commits", "one_transaction_per_trial"}
    assert "| `rrbench sweep` row |" in result.stdout


def test_zoo_speed_runs_a_replica_row_set_and_an_estimate_only_row(tmp_path):
    """The zoo table on two models: MiniLM-L12 (every row, 2 pairs) and Qwen3-Reranker-8B (parameters and memory
    estimate only: it is never loaded here)."""
    out = tmp_path / "zoo.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "zoo_speed.py"), "--models",
                             "minilm-l12,qwen3-8b", "--pairs", "2", "--threads", "1", "--peak-seconds", "0.1",
                             "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    minilm, qwen = report["models"]
    assert minilm["params"] == 33_360_385 and minilm["tokens"] == "real (bert-base-uncased)"
    rows = {r["row"] for r in minilm["rows"]}
    assert {"rrbench engine, torch", "sequential loop (CrossEncoder.predict per query)",
            "CrossEncoder.predict, one flat call"} <= rows
    assert all(r["finite"] and r["pairs_per_s"] > 0 for r in minilm["rows"])
    assert minilm["engine_vs_best_peer"] > 0 and minilm["rss_increase_mb"] > 0
    assert qwen["params"] == 8_188_548_096 and not qwen["rows"] and "not run" in qwen["notes"][0]
    assert "| qwen3-8b |" in result.stdout
