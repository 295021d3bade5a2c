"""The forgery corpus (``corpus.py``), run by one test: each attack on an honest board is refused by ``rrbench
leaderboard check`` with exit 2 and one line naming the field or file. An oracle that re-derives every field
consistently passes the check and is caught by ``--rescore``; publishing outside the leaderboard, a record that asks
for remote code, and hostile gate inputs are refused too."""

from __future__ import annotations

import shutil

import pytest

from rrbench.cli.main import main
from tests.forgery.conftest import fresh_board as _fresh_board
from tests.forgery.corpus import CASES, Case, forge, oracle

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _cli(*args: str) -> int:
    return main(list(args))


def test_the_corpus_is_large_and_names_each_attack_once():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_forgery_is_refused_with_one_line(case: Case, honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    folder = board / honest["folders"][case.record].relative_to(honest["board"])
    forge(folder, case)
    capsys.readouterr()
    code = _cli("leaderboard", "check", "--leaderboard-dir", str(board))
    err = capsys.readouterr().err.strip()
    assert code == 2, f"{case.id}: accepted (exit {code})"
    assert len(err.splitlines()) == 1, err
    assert case.expect in err, f"{case.id}: {err}"


def test_an_oracle_passes_the_check_but_not_re_scoring(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    folder = board / honest["folders"]["ce"].relative_to(honest["board"])
    forge(folder, Case("oracle", "ce", oracle, ""))
    shutil.copytree(honest["root"] / "tiny", tmp_path / "weights" / "tiny")
    assert _cli("leaderboard", "build", "--leaderboard-dir", str(board)) == 0
    assert _cli("leaderboard", "check", "--leaderboard-dir", str(board)) == 0  # every derived field agrees
    capsys.readouterr()
    code = _cli("leaderboard", "check", "--leaderboard-dir", str(board), "--rescore", "8",
                "--weights", str(tmp_path / "weights"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not the claimed model's" in err, err


def test_an_honest_board_re_scores(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    shutil.copytree(honest["root"] / "tiny", tmp_path / "weights" / "tiny")
    capsys.readouterr()
    assert _cli("leaderboard", "check", "--leaderboard-dir", str(board), "--rescore", "8",
                "--weights", str(tmp_path / "weights")) == 0
    out = capsys.readouterr().out
    assert out.count("re-scored:") == 4 and "not re-scored" not in out, out


def test_without_the_weights_a_record_is_marked_not_re_scored(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    capsys.readouterr()
    assert _cli("leaderboard", "check", "--leaderboard-dir", str(board), "--rescore", "4") == 0
    out = capsys.readouterr().out
    assert "not re-scored: bm25 → local-model@" in out and "are not on this machine" in out
