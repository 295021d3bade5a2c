"""The honest board every forgery starts from, built once per session through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rrbench.cli.main import main
from rrbench.components.registry import reset_registry
from rrbench.testing import make_tiny_bert


def _cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture(scope="session")
def honest(tmp_path_factory):
    """An honest board: BM25, a tiny cross-encoder with a fixed threshold, the same with Platt scaling fitted on
    another split, a test-split record with its ledger line, and an outside run; verified as built."""
    root = tmp_path_factory.mktemp("honest")
    env = {"RRBENCH_CACHE": str(root / "cache"), "RRBENCH_TASKS_DIR": str(root / "tasks"),
           "RRBENCH_TEST_LEDGER": str(root / "board" / "test-ledger.jsonl")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        from rrbench.tasks.mini import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task

        splits = {"q1": "dev_select", "q2": "dev_select", "q3": "dev_final", "q4": "dev_select", "q5": "test",
                  "q6": "dev_final"}
        write_task(root / "tasks" / "mini-task", MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=splits)
        reset_registry()
        model = make_tiny_bert(root / "tiny")
        runs = root / "runs"
        base = ["run", "--task", "mini-task", "--quiet"]
        assert _cli(*base, "--output", str(runs / "bm25")) == 0
        assert _cli(*base, "--reranker", str(model), "--threshold", "0.0", "--output", str(runs / "ce")) == 0
        assert _cli(*base, "--reranker", str(model), "--calibrator", "platt", "--calibrate-on", "dev_final",
                    "--output", str(runs / "platt")) == 0
        assert _cli(*base, "--split", "test", "--final", "--output", str(runs / "test")) == 0
        (root / "outside.trec").write_text((runs / "bm25" / "run.trec").read_text())
        assert _cli("evaluate", "--task", "mini-task", "--run", str(root / "outside.trec"),
                    "--output", str(runs / "outside")) == 0
        board = root / "board"
        folders = {}
        for name in ("bm25", "ce", "platt", "test", "outside"):
            assert _cli("publish", str(runs / name), "--to", str(board)) == 0
            folders[name] = next(p for p in board.glob("*@*/*/*") if (p / "results.json").is_file() and
                                 json.loads((p / "results.json").read_text())["config_hash"] ==
                                 json.loads((runs / name / "results.json").read_text())["config_hash"])
        assert _cli("leaderboard", "build", "--leaderboard-dir", str(board)) == 0
        assert _cli("leaderboard", "check", "--leaderboard-dir", str(board)) == 0
    reset_registry()
    return {"root": root, "board": board, "folders": folders, "model": model}


def fresh_board(honest, tmp_path: Path) -> Path:
    """A copy of the honest board, its task registered in this test's environment."""
    shutil.copytree(honest["root"] / "tasks" / "mini-task", Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task")
    reset_registry()
    board = tmp_path / "board"
    shutil.copytree(honest["board"], board)
    return board
