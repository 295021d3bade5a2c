"""A board's settings (``board.yaml``): what ``build`` is told, ``check`` reads; a submitter cannot loosen them.

The attack first: before the settings file, ``leaderboard build --method tukey`` wrote a README that
``leaderboard check`` (which rebuilt it with Holm) refused, so an honest board failed its own CI; and a margin given
on one command line could not be checked at all.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rrbench.cli.main import main
from rrbench.leaderboard.board import build, check
from rrbench.leaderboard.settings import SETTINGS_FILE, BoardSettings, read_settings
from rrbench.records.schema import RecordError


def test_a_board_built_with_tukey_and_a_margin_passes_its_own_check(tmp_path, capsys):
    board = tmp_path / "board"
    board.mkdir()
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board), "--method", "tukey", "--margin",
                 "0.02"]) == 0
    assert read_settings(board) == BoardSettings(method="tukey", noninferiority_margin=0.02)
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    # a later plain build keeps the settings rather than falling back to the defaults
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 0
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board)]) == 0
    assert "randomised Tukey HSD" in (board / "README.md").read_text()


def test_the_defaults_write_no_settings_file(tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    build(board, method="holm", margin=0.01)
    assert not (board / SETTINGS_FILE).exists()
    check(board)


@pytest.mark.parametrize("text, field", [
    ("method: bonferroni\n", "method"),
    ("noninferiority_margin: 2\n", "noninferiority_margin"),
    ("noninferiority_margin: .nan\n", "noninferiority_margin"),
    ("noninferiority_margin: '0.05'\n", "noninferiority_margin"),
    ("noninferiority_margin: true\n", "noninferiority_margin"),
    ("margin: 0.05\n", "margin"),
    ("- holm\n", "mapping"),
])
def test_a_bad_settings_file_is_one_error_naming_it(tmp_path, capsys, text, field):
    board = tmp_path / "board"
    board.mkdir()
    (board / SETTINGS_FILE).write_text(text)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(board)]) == 2
    err = capsys.readouterr().err.strip()
    assert SETTINGS_FILE in err and field in err and len(err.splitlines()) == 1, err
    assert not (board / "README.md").exists()


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    board = root / "leaderboard"
    board.mkdir(parents=True)
    build(board)
    _git(root, "init", "-q")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(root, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "board")
    return board


def test_loosening_the_margin_in_a_change_with_records_is_refused(repo):
    build(repo, margin=0.5)  # what a submitter would do to turn "no" into "holds everywhere"
    record = repo / "some-task@1" / "run-x"
    record.mkdir(parents=True)
    (record / "results.json").write_text(json.dumps({}))
    with pytest.raises(RecordError, match=r"board.yaml: the board settings changed since HEAD "
                                          r"\(noninferiority_margin 0.01 -> 0.5\)"):
        check(repo, base="HEAD")


def test_a_maintainer_changes_the_settings_in_a_change_of_their_own(repo):
    build(repo, method="tukey")
    check(repo, base="HEAD")


def test_deleting_a_stricter_settings_file_with_records_is_refused(repo):
    build(repo, margin=0.002)  # the maintainers' own change: committed alone
    _git(repo.parent, "add", "-A")
    _git(repo.parent, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "stricter margin")
    (repo / SETTINGS_FILE).unlink()  # back to the looser default, hidden in a change that brings records
    build(repo)
    record = repo / "some-task@1" / "run-y"
    record.mkdir(parents=True)
    (record / "results.json").write_text(json.dumps({}))
    with pytest.raises(RecordError, match=r"noninferiority_margin 0.002 -> 0.01"):
        check(repo, base="HEAD")
