"""`rrbench gate` on constructed per-query differences: exit 0 (no significant drop), 1 (regression), 2 (unusable
input), 3 (a candidate configuration that fails to run), the Markdown summary, and a gate of a real run in CI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rrbench.cli.main import main
from rrbench.leaderboard.gate import gate, markdown
from rrbench.records.record import load_record

ROOT = Path(__file__).resolve().parents[2]
# the committed BM25 record (its hash suffix changes whenever BM25 does, so it is looked up by system name)
BASE = next((ROOT / "leaderboard" / "scifact-evidence@1" / "dev_select").glob("bm25-no-reranker-*"))
BASELINE_REF = "leaderboard:scifact-evidence@1/dev_select/bm25-no-reranker"


def _with_scores(record: dict, shift) -> dict:
    """A copy of ``record`` whose per-query nDCG@10 is moved by ``shift(i, value)`` (aggregates kept consistent)."""
    out = json.loads(json.dumps(record))
    values = []
    for i, (_, metrics) in enumerate(sorted(out["per_query"].items())):
        if "nDCG@10" in metrics:
            metrics["nDCG@10"] = metrics["nDCG@10"] + shift(i, metrics["nDCG@10"])
            values.append(metrics["nDCG@10"])
    out["metrics"]["nDCG@10"] = math.fsum(values) / len(values)
    return out


def _write(record: dict, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(record))
    return folder


@pytest.fixture
def baseline():
    return load_record(BASE)


def test_gate_decisions_on_constructed_differences(baseline):
    drop = gate(baseline, _with_scores(baseline, lambda i, v: -0.05), max_drop=0.005)
    assert drop.exit_code == 1 and drop.p_value < 0.001 and "dropped by 0.0500" in drop.verdict
    tiny = gate(baseline, _with_scores(baseline, lambda i, v: -0.004), max_drop=0.005)
    assert tiny.exit_code == 0  # a drop inside the margin is no regression, however consistent
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.1, 200)
    noisy = gate(baseline, _with_scores(baseline, lambda i, v: float(noise[i] - noise.mean()) - 0.01), max_drop=0.005)
    assert noisy.exit_code == 0 and noisy.p_value > 0.05  # a small drop buried in noise is not significant
    better = gate(baseline, _with_scores(baseline, lambda i, v: 0.02))
    assert better.exit_code == 0 and better.p_value > 0.99
    text = markdown(drop)
    assert "rrbench gate: FAIL" in text and "| nDCG@10 |" in text


def test_gate_cli_exit_codes_and_summaries(baseline, tmp_path, monkeypatch, capsys):
    worse = _write(_with_scores(baseline, lambda i, v: -0.05), tmp_path / "worse")
    same = _write(_with_scores(baseline, lambda i, v: 0.0), tmp_path / "same")
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    monkeypatch.chdir(ROOT)
    assert main(["gate", "--baseline", BASELINE_REF, "--candidate", str(same)]) == 0
    assert main(["gate", "--baseline", str(BASE), "--candidate", str(worse), "--summary",
                 str(tmp_path / "comment.md")]) == 1
    out = capsys.readouterr().out
    assert "PASS: no significant regression" in out and "FAIL: nDCG@10 dropped" in out
    assert "FAIL" in (tmp_path / "comment.md").read_text() and step.read_text().count("### ") == 2

    other_split = json.loads(json.dumps(baseline))
    other_split["manifest"]["split"] = "dev_final"
    _write(other_split, tmp_path / "split")
    no_common = json.loads(json.dumps(baseline))
    no_common["per_query"] = {f"other-{q}": v for q, v in no_common["per_query"].items()}
    _write(no_common, tmp_path / "disjoint")
    for candidate, message in ((tmp_path / "split", "manifest.split differs"),
                               (tmp_path / "disjoint", "no common queries"),
                               (tmp_path / "missing", "no results.json")):
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
    assert main(["gate", "--baseline", str(BASE), "--candidate", str(broken)]) == 3
    assert "--candidate" in capsys.readouterr().err


def test_gate_false_evidence_margin(baseline):
    with_fe = json.loads(json.dumps(baseline))
    with_fe["metrics"]["false_evidence_rate"] = 0.10
    higher = json.loads(json.dumps(baseline))
    higher["metrics"]["false_evidence_rate"] = 0.15
    assert gate(with_fe, higher, max_fe_increase=0.02).exit_code == 1
    assert gate(with_fe, higher, max_fe_increase=0.05).exit_code == 0


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
        assert "PASS" in capsys.readouterr().out
        # a configuration that cannot run exits 3, never 1 (a crash is not a regression)
        config.write_text("task: mini-task\nreranker: no-such-reranker\n")
        assert main(["gate", "--baseline", str(committed), "--candidate", str(config)]) == 3
        assert "no-such-reranker" in capsys.readouterr().err
    finally:
        reset_registry()
    # the committed baseline was made by this very configuration: the scores agree query by query
    base, cand = load_record(committed), load_record(tmp_path / "candidate")
    for q, values in base["per_query"].items():
        for key, value in values.items():
            assert cand["per_query"][q][key] == pytest.approx(value, abs=1e-6), (q, key)
