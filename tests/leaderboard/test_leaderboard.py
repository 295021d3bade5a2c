"""The submission flow as an honest submitter meets it: SHA256SUMS and CHANGELOG, `leaderboard check`, superseded
task versions, intervals and seed groups, the test ledger, and rrbench's own committed board.

Every way of forging a record is in tests/forgery; this file checks that honest work goes through.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import rrbench
from rrbench.cli.main import main
from rrbench.leaderboard.board import Entry, build, build_rows, check, collect, publish, render
from rrbench.leaderboard.settings import BoardSettings
from rrbench.leaderboard.verify import Verified, verify_record
from rrbench.records.naming import folder_name
from rrbench.records.record import load_record
from rrbench.records.schema import RecordError, parse_record
from rrbench.tasks.loader import load_task_dir
from rrbench.testing.fixtures import MINI_POSTS, MINI_QRELS, MINI_QUERIES, write_task
from rrbench.util.io import canonical_hash

pytestmark = pytest.mark.usefixtures("torch_one_thread")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(registered_task, tiny_model, tmp_path):
    rrbench.run(task=registered_task, output=str(tmp_path / "bm25"), show_progress=False)
    rrbench.run(task=registered_task, reranker=str(tiny_model), output=str(tmp_path / "ce"), show_progress=False,
                threshold=0.0)
    return {"bm25": tmp_path / "bm25", "ce": tmp_path / "ce"}


def test_submission_flow_sums_changelog_and_check(runs, tmp_path, capsys):
    board = tmp_path / "board"
    for name in ("bm25", "ce"):
        assert main(["publish", str(runs[name]), "--to", str(board)]) == 0
    capsys.readouterr()
    published = sorted(p.parent for p in board.glob("*/*/*/results.json"))
    assert len(published) == 2
    for folder in published:
        record = load_record(folder)
        assert folder.name == folder_name(record.config, record.config_hash)
        assert folder.parent == board / "mini-task@1" / "dev_select"
        listed = sorted(line.split()[1] for line in (folder / "SHA256SUMS").read_text().splitlines())
        assert listed == sorted(p.name for p in folder.iterdir() if p.name != "SHA256SUMS")
        assert "/" not in record.system and "tmp" not in record.system  # never a local path
    changelog = (board / "CHANGELOG.md").read_text()
    assert changelog.count("\n- ") == 2 and "added `mini-task@1/dev_select/" in changelog

    # the README must be what build makes from the verified records
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 2
    assert "README.md: not what" in capsys.readouterr().err
    build(board)
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    (group,) = check(board).values()
    assert len(group.verified) == 2 and not group.claimed and not group.archived

    # publishing the same configuration twice needs --replace, which the changelog records
    with pytest.raises(RecordError, match="already published"):
        publish(runs["ce"], board)
    again = publish(runs["ce"], board, replace=True)
    assert again in published
    assert "replaced `mini-task@1/dev_select/" in (board / "CHANGELOG.md").read_text()


def test_a_superseded_task_version_is_archived_not_ranked(runs, tmp_path, capsys):
    from rrbench.components.registry import reset_registry

    board = tmp_path / "board"
    publish(runs["bm25"], board)
    task_dir = Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task"
    old = load_task_dir(task_dir)
    splits = {q["query_id"]: "dev_select" for q in MINI_QUERIES}
    write_task(task_dir, MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=splits, version=2)
    reset_registry()
    # version 2 does not list version 1 as archived: the old record names a version that never existed
    with pytest.raises(RecordError, match=r"config\.task\.version"):
        collect(board)
    write_task(task_dir, MINI_POSTS, MINI_QUERIES, MINI_QRELS, splits=splits, version=2,
               archived_versions=[{"version": 1, "data_sha256": old.data_sha256}])
    reset_registry()
    assert main(["publish", str(runs["ce"]), "--to", str(board)]) == 2
    assert "cannot be published" in capsys.readouterr().err
    build(board)
    readme = (board / "README.md").read_text()
    assert "Archived, not re-verified" in readme
    (group,) = check(board).values()
    assert len(group.archived) == 1 and not group.verified


def test_rows_carry_intervals_ties_and_seed_groups(runs, tmp_path):
    board = tmp_path / "board"
    for folder in runs.values():
        publish(folder, board)
    readme = render(board)
    row_lines = [line for line in readme.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(row_lines) == 2 and "| leader |" in row_lines[0]
    assert "[" in row_lines[0].split("|")[4]  # a 95% CI cell
    assert "≈ tied" in row_lines[1] or "below" in row_lines[1]
    assert "randomised Tukey HSD" in render(board, BoardSettings(method="tukey"))

    # two checkpoints trained alike but for the seed share a row (mean ± std over seeds)
    verified = verify_record(runs["ce"])

    def seeded(seed: int, shift: float) -> Entry:
        raw = verified.record.as_json()
        manifest = {"regime": "r", "loss": "bce", "miner": {"id": "m", "seed": seed}, "base_model": {"hub_id": "b"},
                    "seed": seed}
        raw["config"]["rerankers"][0].update(id=f"trained:bce@{seed:08x}", weights_sha256=f"{seed:064x}",
                                              checkpoint={"weights_sha256": f"{seed:064x}",
                                                          "training_manifest": manifest,
                                                          "training_manifest_sha256": canonical_hash(manifest)})
        raw["metrics"]["nDCG@10"] += shift
        record = parse_record(raw, "seeded")
        return Entry(Path(f"/x/{seed}/results.json"), Verified(Path(f"/x/{seed}"), record, "verified"))

    rows = build_rows([seeded(1, 0.0), seeded(2, 0.02)])
    assert len(rows) == 1 and len(rows[0].entries) == 2 and "(2 seeds)" in rows[0].name
    assert rows[0].std == pytest.approx(0.02 / 2 ** 0.5)
    other_loss = seeded(3, 0.0)
    other_loss.record.run_claims.rerankers[0].checkpoint.training_manifest["loss"] = "listnet"
    assert len(build_rows([seeded(1, 0.0), other_loss])) == 2


def test_a_test_split_record_needs_its_ledger_line(tmp_path, capsys, monkeypatch):
    """`run --split test --final` claims a ledger line; the board verifies the record against its own ledger."""
    from rrbench.components.registry import reset_registry
    from rrbench.records import ledger

    splits = {q["query_id"]: ("test" if q["query_id"] in ("q1", "q2", "q4") else "dev_select") for q in MINI_QUERIES}
    write_task(Path(os.environ["RRBENCH_TASKS_DIR"]) / "mini-task", MINI_POSTS, MINI_QUERIES, MINI_QRELS,
               splits=splits)
    reset_registry()
    board = tmp_path / "board"
    monkeypatch.setenv(ledger.ENV, str(board / "test-ledger.jsonl"))
    assert main(["run", "--task", "mini-task", "--split", "test", "--output", str(tmp_path / "nofinal"),
                 "--quiet"]) == 2
    assert "--final" in capsys.readouterr().err and not (tmp_path / "nofinal").exists()
    record = rrbench.run(task="mini-task", split="test", final=True, output=str(tmp_path / "test-run"),
                         show_progress=False)
    (line,) = ledger.read(board / "test-ledger.jsonl")
    assert line.config_hash == record["config_hash"]
    assert main(["publish", str(tmp_path / "test-run"), "--to", str(board)]) == 0
    build(board)
    check(board)
    # publishing it to a board whose ledger lacks the line is refused
    other = tmp_path / "other-board"
    assert main(["publish", str(tmp_path / "test-run"), "--to", str(other)]) == 2
    assert "ledger" in capsys.readouterr().err
    reset_registry()


def test_rrbench_s_own_board_verifies():
    """rrbench's CI runs `leaderboard check` on the committed board: every record re-derived, none merely claimed."""
    groups = check(ROOT / "leaderboard")
    assert groups
    for group in groups.values():
        assert group.verified
        for entry in group.verified:
            assert entry.verified.derived is not None
    files = list((ROOT / "leaderboard").glob("*/*/*/results.json"))
    assert sum(len(g.verified) + len(g.claimed) + len(g.archived) for g in groups.values()) == len(files)


def test_publish_copies_no_stray_files(runs, tmp_path):
    (runs["bm25"] / "notes.txt").write_text("my notes")
    shutil.copy(runs["bm25"] / "run.trec", runs["bm25"] / "run.trec.bak")
    target = publish(runs["bm25"], tmp_path / "board")
    assert sorted(p.name for p in target.iterdir()) == ["SHA256SUMS", "results.json", "run.trec", "scores.jsonl.gz"]
    assert json.loads((target / "results.json").read_text())["config_hash"] == load_record(runs["bm25"]).config_hash


def test_reproduce_says_how_to_obtain_a_missing_local_checkpoint(cli):
    """Issue 26: the board's leader was made with a local trained checkpoint; on another machine reproduce quotes the
    training recipe from the record's own training manifest instead of "unknown reranker '/work/runs/...'"."""
    leader = next((ROOT / "leaderboard" / "scifact-evidence@1" / "dev_final").glob("bm25-to-trained-*"))
    result = cli("reproduce", str(leader))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "are not on this machine" in result.stderr
    assert "`rrbench train --regime minilm-scifact --loss bce" in result.stderr
    assert "is itself a local checkpoint" in result.stderr
    assert "unknown reranker" not in result.stderr


def test_record_pages_show_portable_paths(tmp_path):
    """Issue 26: a record page shows no absolute local weight paths (the leader's checkpoint lived in /work)."""
    from rrbench.leaderboard.html import write_site

    write_site(ROOT / "leaderboard", tmp_path / "site")
    leader = next((ROOT / "leaderboard" / "scifact-evidence@1" / "dev_final").glob("bm25-to-trained-*"))
    assert "/work/checkpoints" in (leader / "results.json").read_text()  # the record itself says where it ran
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "site" / "records").glob("*trained*.html")]
    assert pages and all("/work/" not in page for page in pages)
    assert any("&lt;local&gt;/minilm-scifact-mean-ep2" in page for page in pages)
