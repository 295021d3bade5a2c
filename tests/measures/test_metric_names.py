"""One name per metric (issue 14): every accepted spelling resolves to the record's name, through one table."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrbench.measures.names import (
    PER_QUERY_METRICS,
    RANK_METRICS,
    canonical_metric,
    trainer_key,
)
from rrbench.util.errors import UsageError
from tests.support import run_cli


@pytest.mark.parametrize("spelling, name", [
    ("nDCG@10", "nDCG@10"), ("ndcg@10", "nDCG@10"), ("NDCG@10", "nDCG@10"), ("ndcg_cut_10", "nDCG@10"),
    ("MRR@10", "RR@10"), ("mrr@10", "RR@10"), ("rr@10", "RR@10"), ("recip_rank@10", "RR@10"),
    ("R@10", "R@10"), ("recall@10", "R@10"), ("Recall@100", "R@100"), ("r@5", "R@5"),
    ("FER", "false_evidence_rate"), ("false_evidence_rate", "false_evidence_rate"), (" ece ", "ece"),
])
def test_aliases_resolve_to_the_record_names(spelling, name):
    assert canonical_metric(spelling) == name


@pytest.mark.parametrize("name, allowed", [("map", RANK_METRICS), ("R@0", RANK_METRICS), ("ndcg@5", RANK_METRICS),
                                           ("fer", PER_QUERY_METRICS), ("ece", RANK_METRICS)])
def test_an_unknown_name_is_a_one_line_error_listing_the_known_ones(name, allowed):
    with pytest.raises(UsageError) as info:
        canonical_metric(name, allowed)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"unknown metric {name!r}; known: ")
    assert all(known in message for known in allowed)


def test_the_trainer_logs_the_record_names():
    """The Trainer prefixes ``eval_``; early stopping and Tier B's Optuna reports read the same key."""
    assert trainer_key("ndcg@10") == "eval_nDCG@10" and trainer_key("MRR@10") == "eval_RR@10"
    from rrbench.hpo.matrix_tier_b import report_callback

    reported: list[float] = []
    callback = report_callback(reported.append, evaluations=2)
    callback.on_evaluate(None, None, None, metrics={"eval_nDCG@10": 0.5, "eval_RR@10": 0.25})
    assert reported == [0.5]


def test_the_leaderboard_shows_the_record_names(tmp_path):
    from rrbench.leaderboard.board import render_table

    header = render_table([], tmp_path)[0]
    assert "| RR@10 |" in header and "MRR" not in header
    assert "MRR" not in (Path(__file__).parents[2] / "leaderboard" / "README.md").read_text(encoding="utf-8")


def test_cli_metric_options_take_aliases_and_refuse_unknown_names(tmp_path):
    missing = str(tmp_path / "nowhere")
    result = run_cli("compare", missing, missing, "--metric", "map")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown metric 'map'; known: nDCG@10, RR@10, R@10" in lines[0], result.stderr
    # an alias passes the option and fails later, on the missing record
    result = run_cli("compare", missing, missing, "--metric", "MRR@10")
    assert result.returncode == 2 and "unknown metric" not in result.stderr and "nowhere" in result.stderr
    result = run_cli("gate", "--baseline", missing, "--candidate", missing, "--metric", "map")
    assert result.returncode == 2 and "unknown metric 'map'" in result.stderr, result.stderr


def test_compare_and_gate_accept_the_same_names_every_record_name_among_them(tmp_path, capsys):
    """Issue 26: one set from the one table; the record's own keys (false_evidence_rate ...) are in it."""
    from rrbench.cli.main import main
    from rrbench.measures.names import ALIASES, COMPARABLE

    missing = str(tmp_path / "nowhere")
    names = [*COMPARABLE, "R@100", *ALIASES, "false_evidence", "MAP", "ndcg@5x"]
    for name in names:
        verdicts = []
        for args in (["compare", missing, missing], ["gate", "--baseline", missing, "--candidate", missing]):
            assert main([*args, "--metric", name]) == 2
            verdicts.append("unknown metric" not in capsys.readouterr().err)
        assert verdicts[0] == verdicts[1], name  # the same set
        assert verdicts[0] == (name not in ("MAP", "ndcg@5x")), name


def test_train_context_window_is_a_hidden_deprecated_alias(tmp_path):
    help_text = run_cli("train", "--help").stdout
    assert "--context " in help_text and "--context-window" not in help_text
    result = run_cli("train", "--task", "scifact-evidence", "--context", "1", "--context-window", "2",
                     "--output", str(tmp_path / "t"))
    assert result.returncode == 2 and "--context 1 and --context-window 2 disagree" in result.stderr, result.stderr
    assert not (tmp_path / "t").exists()
