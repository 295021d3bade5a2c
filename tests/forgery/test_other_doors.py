"""Every other door a record or a user can push on: publishing outside the board, reproduction that would run a
record's code, hostile gate inputs, the test split's one gate, and a test ledger edited after the fact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rrbench.cli.main import main
from rrbench.records import ledger
from rrbench.records.schema import RunClaims, claims_hash
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.text import md_escape
from tests.forgery.conftest import fresh_board as _fresh_board

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _record_folder(board: Path, name: str, honest) -> Path:
    return board / honest["folders"][name].relative_to(honest["board"])


def test_publish_never_writes_outside_the_board(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    source = tmp_path / "evil"
    shutil.copytree(_record_folder(board, "bm25", honest), source)
    (source / "SHA256SUMS").unlink()
    record = json.loads((source / "results.json").read_text())
    record["config"]["split"] = "../../../escaped"
    # The typed claims refuse this split, so the forger hashes the raw JSON the same canonical way.
    record["config_hash"] = canonical_hash(record["config"])
    (source / "results.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(["publish", str(source), "--to", str(tmp_path / "new-board")]) == 2
    assert "config" in _one_line(capsys)
    assert not (tmp_path / "escaped").exists() and not list(tmp_path.rglob("escaped"))


def test_reproduce_never_runs_a_records_remote_code(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    folder = _record_folder(board, "ce", honest)
    record = json.loads((folder / "results.json").read_text())
    record["config"]["rerankers"][0]["settings"]["trust_remote_code"] = True
    record["config_hash"] = claims_hash(RunClaims.model_validate(record["config"]))
    (folder / "results.json").write_text(json.dumps(record))
    shutil.copytree(honest["root"] / "tiny", tmp_path / "weights" / "tiny")
    capsys.readouterr()
    assert main(["reproduce", str(folder), "--weights", str(tmp_path / "weights"), "--quiet"]) == 2
    line = _one_line(capsys)
    assert "trust_remote_code" in line and "--allow-remote-code" in line


def test_reproduce_is_binding(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    shutil.copytree(honest["root"] / "tiny", tmp_path / "weights" / "tiny")
    folder = _record_folder(board, "ce", honest)
    capsys.readouterr()
    assert main(["reproduce", str(folder), "--weights", str(tmp_path / "weights"), "--quiet"]) == 0
    assert "reproduced: all metrics" in capsys.readouterr().out


@pytest.mark.parametrize("flags, fragment", [
    (["--max-drop", "nan"], "--max-drop"), (["--max-drop", "inf"], "--max-drop"), (["--alpha", "2"], "--alpha"),
    (["--max-fe-increase", "-1"], "--max-fe-increase"),
])
def test_gate_parameters_that_mean_nothing_exit_2(honest, tmp_path, capsys, flags, fragment):
    board = _fresh_board(honest, tmp_path)
    bm25 = _record_folder(board, "bm25", honest)
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bm25), "--candidate", str(bm25), *flags]) == 2
    assert fragment in _one_line(capsys)


def test_gate_refuses_hostile_and_partial_candidates(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    bm25 = _record_folder(board, "bm25", honest)
    deep = tmp_path / "deep"
    shutil.copytree(bm25, deep)
    (deep / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    capsys.readouterr()
    assert main(["gate", "--baseline", str(bm25), "--candidate", str(deep)]) == 2
    assert "nested deeper" in _one_line(capsys)

    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    bomb.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    assert main(["gate", "--baseline", str(bm25), "--candidate", str(bomb)]) == 2
    assert "aliases" in _one_line(capsys) and time.perf_counter() - started < 10

    partial = tmp_path / "partial"
    shutil.copytree(bm25, partial)
    record = json.loads((partial / "results.json").read_text())
    dropped = sorted(record["per_query"])[0]
    record["per_query"].pop(dropped)
    (partial / "results.json").write_text(json.dumps(record))
    assert main(["gate", "--baseline", str(bm25), "--candidate", str(partial)]) == 2
    assert "per_query" in _one_line(capsys)


def test_the_gate_summary_escapes_markdown():
    assert md_escape("a | b\n<script>[x](y)") == "a \\| b \\<script\\>\\[x\\](y)"


def test_every_path_to_test_labels_goes_through_one_gate(honest, tmp_path, capsys):
    _fresh_board(honest, tmp_path)
    attempts = [
        (["run", "--task", "mini-task", "--split", "test", "--quiet"], "without --final"),
        (["run", "--task", "mini-task", "--split", "test~fold1of2", "--final", "--quiet"], "never in folds"),
        (["run", "--task", "mini-task", "--reranker", str(honest["model"]), "--calibrator", "platt",
          "--calibrate-on", "test", "--quiet"], "never used for fitting"),
        (["evaluate", "--task", "mini-task", "--split", "test", "--run", str(tmp_path / "x.trec")],
         "without --final"),
        (["sweep", "--task", "mini-task", "--split", "test", "--reranker", str(honest["model"]), "--output",
          str(tmp_path / "sweep")], "never used for selecting"),
        (["train", "--task", "mini-task", "--train-split", "test", "--output", str(tmp_path / "train")],
         "never used for training"),
    ]
    for args, fragment in attempts:
        capsys.readouterr()
        assert main(args) == 2, args
        assert fragment in _one_line(capsys), args
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "train").exists()


def test_an_outside_run_on_test_is_a_use(honest, tmp_path, capsys):
    _fresh_board(honest, tmp_path)
    run = tmp_path / "run.trec"
    run.write_text("q5 Q0 p4:0 1 2.0 mine\nq5 Q0 p4:1 2 1.0 mine\n")
    assert main(["evaluate", "--task", "mini-task", "--split", "test", "--run", str(run), "--final",
                 "--output", str(tmp_path / "out")]) == 0
    lines = ledger.read()
    assert len(lines) == 1 and lines[0].purpose == "evaluate"
    with pytest.raises(UsageError, match="already used the test split"):
        ledger.claim(config_hash=lines[0].config_hash, task="mini-task@1", task_data_sha256=lines[0].task_data_sha256,
                     results_sha256="0" * 64, purpose="run", command="rrbench run")


def test_a_ledger_edited_since_the_base_revision_is_refused(tmp_path):
    repo = tmp_path / "repo"
    (repo / "leaderboard").mkdir(parents=True)
    path = repo / "leaderboard" / "test-ledger.jsonl"
    os.environ["RRBENCH_TEST_LEDGER"] = str(path)
    first = ledger.claim(config_hash="a" * 64, task="t@1", task_data_sha256="b" * 64, results_sha256="c" * 64,
                         purpose="run", command="rrbench run")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    ledger.claim(config_hash="d" * 64, task="t@1", task_data_sha256="b" * 64, results_sha256="e" * 64,
                 purpose="run", command="rrbench run")
    ledger.check_append_only(path, "HEAD")  # appended: fine
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[1]]) + "\n")  # the first use removed
    with pytest.raises(UsageError, match="line 1: the test ledger was edited or shortened"):
        ledger.check_append_only(path, "HEAD")
    edited = dict(first["line"], command="rrbench run --something-else")
    path.write_text(json.dumps(edited, sort_keys=True) + "\n" + lines[1] + "\n")
    with pytest.raises(UsageError, match="edited"):
        ledger.check_append_only(path, "HEAD")


def test_check_with_base_refuses_an_edited_ledger(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "board"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board), "--base", "HEAD"]) == 0
    ledger_file = board / "test-ledger.jsonl"
    line = json.loads(ledger_file.read_text())
    line["selected_on"] = "dev_select"
    ledger_file.write_text(json.dumps(line, sort_keys=True) + "\n")
    capsys.readouterr()
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board), "--base", "HEAD"]) == 2
    assert "edited or shortened" in _one_line(capsys)


def test_rescore_with_base_re_scores_only_the_changed_records(honest, tmp_path, capsys):
    """A leaderboard's CI re-scores what a pull request adds, not the whole board again."""
    board = _fresh_board(honest, tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    bm25 = _record_folder(board, "bm25", honest)
    kept = tmp_path / "kept"
    shutil.move(bm25, kept)  # the pull request adds the BM25 record
    subprocess.run([*git, "add", "board"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    shutil.move(kept, bm25)
    capsys.readouterr()
    assert main(["leaderboard", "check", "--leaderboard-dir", str(board), "--base", "HEAD", "--rescore", "4"]) == 0
    out = capsys.readouterr().out
    assert "the 1 record(s) changed since HEAD" in out
    assert out.count("re-scored:") == 1 and "re-scored: bm25 (no reranker) [K100]" in out, out


@pytest.mark.parametrize("field, change", [
    ("config_hash", lambda r: r.__setitem__("config_hash", "0" * 64)),
    ("system", lambda r: r.__setitem__("system", "bm25 → qwen3-8b [K100 N20]")),
    ("nDCG@10", lambda r: r["metrics"].__setitem__("nDCG@10", r["metrics"]["nDCG@10"] - 0.01)),
])
def test_reproduce_exits_non_zero_when_the_rerun_differs(honest, tmp_path, capsys, monkeypatch, field, change):
    """Binding: a re-run that disagrees on the hash, the name or any metric fails, naming what differed."""
    import rrbench.leaderboard.reproduce as reproduce_module

    real_execute = reproduce_module.execute

    def drifted(config):
        result = real_execute(config)
        change(result)
        return result

    monkeypatch.setattr(reproduce_module, "execute", drifted)
    board = _fresh_board(honest, tmp_path)
    shutil.copytree(honest["root"] / "tiny", tmp_path / "weights" / "tiny")
    capsys.readouterr()
    code = main(["reproduce", str(_record_folder(board, "ce", honest)), "--weights", str(tmp_path / "weights"),
                 "--quiet"])
    captured = capsys.readouterr()
    assert code != 0 and "MISMATCH" in captured.out
    assert field in captured.err and len(captured.err.strip().splitlines()) == 1


def test_reproduce_without_the_weights_is_an_error_or_a_skip_on_request(honest, tmp_path, capsys):
    board = _fresh_board(honest, tmp_path)
    folder = _record_folder(board, "ce", honest)
    capsys.readouterr()
    assert main(["reproduce", str(folder), "--quiet"]) == 2
    assert "are not on this machine" in _one_line(capsys)
    assert main(["reproduce", str(folder), "--quiet", "--skip-unavailable"]) == 0
    assert capsys.readouterr().out.startswith("not reproduced: ")
