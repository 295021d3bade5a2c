"""`rrbench gate` on constructed per-query differences: exit 0 (no significant drop), 1 (regression), 2 (unusable
input), 3 (a candidate configuration that fails to run), the Markdown summary, and a gate of a real run in CI.

Hostile inputs (forged candidates, partial coverage, nonsense parameters) are in tests/forgery/test_other_doors.py.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.leaderboard.gate import gate, markdown
from rrbench.leaderboard.verify import Verified, verify_record
from rrbench.records.record import load_record
from rrbench.records.schema import parse_record

ROOT = Path(__file__).resolve().parents[2]
# the committed BM25 records (their hash suffix changes whenever BM25 does, so they are looked up by system name)
BASE = next((ROOT / "leaderboard" / "scifact-evidence@1" / "dev_select").glob("bm25-no-reranker-*"))
OTHER_SPLIT = next((ROOT / "leaderboard" / "scifact-evidence@1" / "dev_final").glob("bm25-no-reranker-*"))
BASELINE_REF = "leaderboard:scifact-evidence@1/dev_select/bm25-no-reranker"


@pytest.fixture(scope="module")
def baseline() -> Verified:
    return verify_record(BASE)


def _shifted(verified: Verified, shift, fe: float | None = None) -> Verified:
    """A verified record whose per-query nDCG@10 is moved by ``shift(i, value)``: the gate's arithmetic on
    constructed differences (no verifier involved; the CLI tests below use real records)."""
    raw = verified.record.as_json()
    raw["per_query"], values = {}, []
    for i, (query, metrics) in enumerate(sorted(verified.per_query.items())):
        metrics = dict(metrics)
        if "nDCG@10" in metrics:
            metrics["nDCG@10"] += shift(i, metrics["nDCG@10"])
            values.append(metrics["nDCG@10"])
        raw["per_query"][query] = metrics
    raw["metrics"] = {**verified.metrics, "nDCG@10": math.fsum(values) / len(values)}
    if fe is not None:
        raw["metrics"]["false_evidence_rate"] = fe
    return Verified(verified.folder, parse_record(raw, "constructed"), "verified")


def test_gate_decisions_on_constructed_differences(baseline):
    drop = gate(baseline, _shifted(baseline, lambda i, v: -0.05), max_drop=0.005)
    assert drop.exit_code == 1 and drop.p_value < 0.001 and "dropped by 0.0500" in drop.verdict
    tiny = gate(baseline, _shifted(baseline, lambda i, v: -0.004), max_drop=0.005)
    assert tiny.exit_code == 0  # a drop inside the margin is no regression, however consistent
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.1, 200)
    noisy = gate(baseline, _shifted(baseline, lambda i, v: float(noise[i] - noise.mean()) - 0.01), max_drop=0.005)
    assert noisy.exit_code == 0 and noisy.p_value > 0.05  # a small drop buried in noise is not significant
    better = gate(baseline, _shifted(baseline, lambda i, v: 0.02))
    assert better.exit_code == 0 and better.p_value > 0.99
    text = markdown(drop)
    assert "rrbench gate: FAIL" in text and "| nDCG@10 |" in text


def test_gate_false_evidence_margin(baseline):
    with_fe = _shifted(baseline, lambda i, v: 0.0, fe=0.10)
    higher = _shifted(baseline, lambda i, v: 0.0, fe=0.15)
    assert gate(with_fe, higher, max_fe_increase=0.02).exit_code == 1
    assert gate(with_fe, higher, max_fe_increase=0.05).exit_code == 0


def test_gate_cli_on_real_records(tmp_path, monkeypatch, capsys):
    """A real regression (BM25 with a pool of 2 sentences instead of 100) fails; the same record passes; unusable
    input (a malformed configuration file included) exits 2 with one line."""
    worse = tmp_path / "worse"
    assert main(["run", "--task", "scifact-evidence", "--split", "dev_select", "--top-k-retriever", "2",
                 "--output", str(worse), "--quiet"]) == 0
    same = tmp_path / "same"
    shutil.copytree(BASE, same)
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    monkeypatch.chdir(ROOT)
    capsys.readouterr()
    assert main(["gate", "--baseline", BASELINE_REF, "--candidate", str(same)]) == 0
    assert main(["gate", "--baseline", str(BASE), "--candidate", str(worse), "--summary",
                 str(tmp_path / "comment.md")]) == 1
    out = capsys.readouterr().out
    assert "PASS: no significant regression" in out and "FAIL: nDCG@10 dropped" in out
    assert "FAIL" in (tmp_path / "comment.md").read_text() and step.read_text().count("### ") == 2
    # the two names differ by their settings, not only by a hash
    assert "\\[K2\\]" in (tmp_path / "comment.md").read_text()  # escaped markdown

    for candidate, message in ((OTHER_SPLIT, "config.split differs"), (tmp_path / "missing", "no results.json")):
        assert main(["gate", "--baseline", str(BASE), "--candidate", str(candidate)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["gate", "--baseline", "leaderboard:scifact-evidence@1/dev_select/nothing", "--candidate",
                 str(same)]) == 2
    assert "no records match" in capsys.readouterr().err
    assert main(["gate", "--baseline", str(BASE), "--candidate", str(same), "--max-fe-increase", "0.01"]) == 2
    assert "false-evidence rate in both" in capsys.readouterr().err

    broken = tmp_path / "candidate.yaml"
    broken.write_text("reranker: [this is not a run configuration\n")
    assert main(["gate", "--baseline", str(BASE), "--candidate", str(broken)]) == 2  # unusable input, not a crash
    assert "candidate.yaml" in capsys.readouterr().err


def test_ci_gates_a_tiny_model_on_a_tiny_task(tiny_model, tmp_path, capsys):
    """What rrbench's own CI gates, in one step as a plugin's pull request would: the candidate is a run
    configuration (BM25 -> the tiny cross-encoder on the mini task), run by the gate, then compared with the
    committed baseline record of the same configuration (tests/leaderboard/data/gate-baseline)."""
    from rrbench.components.registry import reset_registry
    from rrbench.testing.fixtures import make_mini_task

    make_mini_task(Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task")
    reset_registry()
    config = tmp_path / "candidate.yaml"
    config.write_text(f"task: mini-task\nsplit: dev_select\nreranker: {tiny_model}\n")
    committed = ROOT / "tests" / "leaderboard" / "data" / "gate-baseline"
    try:
        assert main(["gate", "--baseline", str(committed), "--candidate", str(config), "--candidate-output",
                     str(tmp_path / "candidate")]) == 0
        captured = capsys.readouterr()
        assert "PASS" in captured.out
        assert f"candidate run written to {tmp_path / 'candidate'}" in captured.err  # it says where its run went
        # a configuration that cannot run exits 3, never 1 (a crash is not a regression)
        config.write_text("task: mini-task\nreranker: no-such-reranker\n")
        assert main(["gate", "--baseline", str(committed), "--candidate", str(config)]) == 3
        assert "no-such-reranker" in capsys.readouterr().err
        # the committed baseline was made by this very configuration: same claims, same scores query by query
        base, cand = load_record(committed), load_record(tmp_path / "candidate")
        assert base.config_hash == cand.config_hash
        for q, values in base.per_query.items():
            for key, value in values.items():
                assert cand.per_query[q][key] == pytest.approx(value, abs=1e-6), (q, key)
    finally:
        reset_registry()
