"""rrbench.measures.significance against references computed independently here (exact enumeration, a hand-worked Holm)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rrbench.measures.significance import (
    bootstrap_ci,
    compare_pair,
    compare_with_leader,
    holm,
    mean_std,
    randomised_tukey_hsd,
    sign_flip_test,
)
from rrbench.util.errors import UsageError


def test_randomised_tukey_hsd_agrees_with_exact_enumeration():
    # 3 systems x 5 queries: all (3!)^5 = 7,776 within-query permutations enumerated by brute force
    scores = np.array([[0.9, 0.5, 0.4], [0.8, 0.7, 0.2], [0.6, 0.6, 0.1], [1.0, 0.3, 0.5], [0.7, 0.4, 0.3]])
    means = scores.mean(axis=0)
    perms = list(itertools.permutations(range(3)))
    ranges = []
    for choice in itertools.product(perms, repeat=5):
        shuffled = np.array([row[list(p)] for row, p in zip(scores, choice)])
        m = shuffled.mean(axis=0)
        ranges.append(m.max() - m.min())
    assert len(ranges) == 7776
    ranges = np.array(ranges)
    approx = randomised_tukey_hsd(scores, samples=40_000, seed=3)
    for i, j in itertools.combinations(range(3), 2):
        exact = np.mean(ranges >= abs(means[i] - means[j]) - 1e-12)
        # Monte Carlo standard error at 40k samples is <= 0.0025; allow 4 of them
        assert approx[i, j] == pytest.approx(exact, abs=0.01), (i, j, exact)
        assert approx[i, j] == approx[j, i]
    assert approx[0, 2] < 0.05 < approx[1, 2]  # the clear gap is significant, the small one is not


def test_holm_matches_a_hand_computed_example():
    # p sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> monotone 0.06)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 2 x 0.5 capped at 1; 0.9 raised to keep order
    assert holm([]) == []


def test_sign_flip_exact_enumeration_and_one_sided_shift():
    # 4 equal positive differences: only the all-plus and all-minus sign vectors reach |mean| -> p = 2/16
    assert sign_flip_test([1.0, 1.0, 1.0, 1.0], samples=10_000) == pytest.approx(2 / 16)
    assert sign_flip_test([1.0, 1.0, 1.0, 1.0], alternative="greater") == pytest.approx(1 / 16)
    assert sign_flip_test([1.0, 1.0, 1.0, 1.0], alternative="less") == pytest.approx(1.0)
    # shifting the null mean: differences of exactly the margin are the null's boundary, no evidence either way
    d = np.full(12, -0.005)
    assert sign_flip_test(d, alternative="less", null_mean=-0.005) == pytest.approx(1.0)
    # Monte Carlo path (n = 30) is seeded: same seed, same p; a clear drop is significant one-sided
    drop = np.full(30, -0.1)
    assert sign_flip_test(drop, alternative="less", null_mean=-0.005) < 0.001
    noise = np.tile([0.2, -0.2], 15)
    assert sign_flip_test(noise, seed=1) == sign_flip_test(noise, seed=1) > 0.5
    with pytest.raises(UsageError):
        sign_flip_test([])


def test_bootstrap_interval_is_seeded_and_stable():
    values = np.linspace(0.0, 1.0, 101) ** 2
    first = bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) == first  # same seed, bit-identical interval
    lo, hi = first
    assert lo < values.mean() < hi
    # the normal-theory interval for a mean (1.96 standard errors) is a close reference for 101 values
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert lo == pytest.approx(values.mean() - 1.96 * se, abs=0.01)
    assert hi == pytest.approx(values.mean() + 1.96 * se, abs=0.01)
    assert bootstrap_ci(values, seed=8) != first  # it is a resampling, not a formula
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)


def test_compare_with_leader_marks_ties_after_correction():
    rng = np.random.default_rng(0)
    leader = {f"q{i}": float(v) for i, v in enumerate(rng.uniform(0.5, 1.0, 40))}
    close = {q: v - 0.01 * (1 if i % 2 else -1) for i, (q, v) in enumerate(leader.items())}
    far = {q: v - 0.3 for q, v in leader.items()}
    for method in ("holm", "tukey"):
        rows = compare_with_leader([leader, close, far], method=method)
        assert rows[0]["tied"] is False and rows[0]["p"] is None
        assert rows[1]["tied"] is True and rows[2]["tied"] is False, method
        assert rows[2]["p_adjusted"] < 0.001
    holm_rows = compare_with_leader([leader, close, far])
    assert holm_rows[1]["p_adjusted"] >= holm_rows[1]["p"]
    with pytest.raises(UsageError, match="holm or tukey"):
        compare_with_leader([leader, close], method="bonferroni")


def test_compare_pair_and_mean_std():
    a = {f"q{i}": 0.9 for i in range(30)}
    b = {f"q{i}": 0.5 for i in range(30)}
    result = compare_pair(a, b, "nDCG@10")
    assert result.mean_diff == pytest.approx(0.4) and result.p_value < 0.001 and result.wins == 30
    assert result.ci_diff == pytest.approx((0.4, 0.4))
    with pytest.raises(UsageError, match="different queries"):
        compare_pair(a, {"q0": 0.1}, "nDCG@10")
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_std([4.0]) == (4.0, 0.0)


def test_compare_command_on_committed_records(capsys):
    """`rrbench compare A B` replaces `python -m rrbench.training.compare`, with the CLI's error handling."""
    import json
    from pathlib import Path

    from rrbench.cli.main import main

    board = Path(__file__).resolve().parents[2] / "leaderboard" / "scifact-evidence@1"
    minilm, bm25 = (next((board / "dev_select").glob(f"{name}-*")) for name in ("bm25-to-minilm-l6", "bm25-no-reranker"))
    assert main(["compare", str(minilm), str(bm25), "--samples", "2000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["queries"] == 101 and 0 < result["p_value"] <= 1
    assert result["mean_diff"] == pytest.approx(result["mean_a"] - result["mean_b"])
    other_split = next((board / "dev_final").glob("bm25-no-reranker-*"))
    assert main(["compare", str(minilm), str(other_split)]) == 2
    err = capsys.readouterr().err
    assert "different queries" in err and err.count("\n") == 1


def test_compare_names_both_systems_their_settings_and_a_verdict(capsys):
    """Issue 26: compare says which system is which, what tells them apart, and what the test concludes."""
    from pathlib import Path

    from rrbench.cli.main import main

    board = Path(__file__).resolve().parents[2] / "leaderboard" / "scifact-evidence@1"
    minilm, bm25 = (next((board / "dev_select").glob(f"{name}-*")) for name in ("bm25-to-minilm-l6", "bm25-no-reranker"))
    assert main(["compare", str(minilm), str(bm25), "--samples", "2000", "--alpha", "0.5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A: bm25 → minilm-l6") and out[1].startswith("B: bm25 (no reranker)")
    assert out[2].startswith("settings that differ: ") and "rerankers: A 'minilm-l6', B 'none'" in out[2]
    assert "(higher is better)" in out[3] and out[-1].startswith("verdict: ")
    p = float(out[4].split("p = ")[1].split()[0])
    assert ("A is better than B" in out[-1]) == (p < 0.5 and "A-B +" in out[3])
    assert ("no significant difference" in out[-1]) == (p >= 0.5)


def _with_false_evidence(verified, answered: set[int]):
    """A copy of a verified record whose no-evidence queries got an answer for the given indices (in memory: the
    direction logic is what is tested here; verification has its own tests)."""
    from dataclasses import replace

    per_query = {q: dict(v) for q, v in verified.per_query.items()}
    no_evidence = sorted(q for q, v in per_query.items() if "nDCG@10" not in v)
    for i, q in enumerate(no_evidence):
        per_query[q] = {"false_evidence": float(i in answered)}
    metrics = {**verified.metrics, "false_evidence_rate": len(answered) / len(no_evidence)}
    record = verified.record.model_copy(update={"per_query": per_query, "metrics": metrics})
    return replace(verified, record=record, derived=None)


def test_a_lower_false_evidence_rate_is_the_better_one(monkeypatch, capsys):
    from pathlib import Path

    from rrbench.cli import records as records_cli
    from rrbench.cli.main import main
    from rrbench.leaderboard.gate import gate
    from rrbench.leaderboard.verify import verify_record

    board = Path(__file__).resolve().parents[2] / "leaderboard" / "scifact-evidence@1" / "dev_select"
    base = verify_record(next(board.glob("bm25-no-reranker-*")))
    low, high = _with_false_evidence(base, set(range(5))), _with_false_evidence(base, set(range(40)))
    monkeypatch.setattr(records_cli, "verify_record", lambda path: {"low": low, "high": high}[str(path)])
    assert main(["compare", "low", "high", "--metric", "false_evidence_rate", "--samples", "2000"]) == 0
    out = capsys.readouterr().out
    assert "(lower is better)" in out and "A better on 35 queries, B better on 0" in out
    assert "verdict: A is better than B on false_evidence_rate" in out
    # the gate reads the same direction: a rising false-evidence rate is the regression
    assert gate(low, high, metric="fer").exit_code == 1
    assert "false_evidence_rate rose by" in gate(low, high, metric="false_evidence_rate").verdict
    assert gate(high, low, metric="false_evidence_rate").exit_code == 0
    assert main(["compare", "low", "high", "--metric", "ece"]) == 0  # an aggregate: both values, no test
    assert "no test: ece is an aggregate" in capsys.readouterr().out
