"""Issue 14, defect 3: every failure is one line. User errors exit 2; an unexpected internal error exits 1 with the
path of a log file holding the traceback; ``RRBENCH_DEBUG=1`` prints the traceback instead."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rrbench.cli.main import main


def _only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "rrbench_model.json: malformed JSON at line 1"),
    (b"[1, 2]", "rrbench_model.json: expected a JSON object, got list"),
    (b'{"score_kind": "vibes"}', "rrbench_model.json: field 'score_kind' 'vibes' is not one of"),
    (b'{"max_length": -3}', "rrbench_model.json: field 'max_length' must be a positive integer"),
    (b'{"max_length": NaN}', "rrbench_model.json: not strict JSON: non-finite number NaN"),
    (b'\xff\xfe{}', "rrbench_model.json: not valid UTF-8"),
])
def test_a_malformed_checkpoint_manifest_is_one_line_exit_2(tiny_model, mini_task, tmp_path, cli, content, fragment):
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_model, checkpoint)
    (checkpoint / "rrbench_model.json").write_bytes(content)
    result = cli("run", "--task", str(mini_task), "--reranker", str(checkpoint), "--output", str(tmp_path / "out"),
                 "--quiet")
    assert result.returncode == 2, result.stderr
    line = _only_line(result.stderr)
    assert line.startswith("rrbench: error: ") and fragment in line
    assert not (tmp_path / "out").exists()


def _break_tasks_show(monkeypatch) -> None:
    import rrbench.cli.tasks

    def broken(task_id: str):
        raise ZeroDivisionError("a bug, not the user's fault")

    monkeypatch.setattr(rrbench.cli.tasks, "get_task", broken)


def test_an_internal_error_is_one_line_with_a_log_of_the_traceback(monkeypatch, capsys):
    _break_tasks_show(monkeypatch)
    monkeypatch.delenv("RRBENCH_DEBUG", raising=False)
    assert main(["tasks", "show", "scifact-evidence"]) == 1
    line = _only_line(capsys.readouterr().err)
    assert line.startswith("rrbench: internal error: ZeroDivisionError: a bug, not the user's fault (traceback in ")
    log = Path(line.split("traceback in ", 1)[1].split(";", 1)[0])
    assert log.is_file() and "Traceback (most recent call last)" in log.read_text()
    assert "ZeroDivisionError" in log.read_text()


def test_rrbench_debug_prints_the_traceback(monkeypatch, capsys):
    _break_tasks_show(monkeypatch)
    monkeypatch.setenv("RRBENCH_DEBUG", "1")
    assert main(["tasks", "show", "scifact-evidence"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "ZeroDivisionError" in err


def test_a_user_os_error_names_the_path_and_exits_2(monkeypatch, capsys):
    import rrbench.cli.tasks

    def unreadable(task_id: str):
        raise PermissionError(13, "Permission denied", "/some/task/posts.jsonl.gz")

    monkeypatch.setattr(rrbench.cli.tasks, "get_task", unreadable)
    assert main(["tasks", "show", "x"]) == 2
    assert _only_line(capsys.readouterr().err) == "rrbench: error: /some/task/posts.jsonl.gz: Permission denied"


def test_rrbench_cache_pointing_at_a_file_is_one_line_exit_2(tmp_path, mini_task, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("run", "--task", str(mini_task), "--output", str(tmp_path / "out"),
                 env={"RRBENCH_CACHE": str(blocker)})
    assert result.returncode == 2, result.stderr
    assert _only_line(result.stderr).startswith(f"rrbench: error: RRBENCH_CACHE {blocker} is not a directory")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("error", [(30, "Read-only file system"), (28, "No space left on device")])
def test_a_read_only_or_full_output_location_is_one_line_naming_the_path(mini_task, tmp_path, monkeypatch, capsys,
                                                                         error):
    """Simulated (tests run as root, for whom chmod does not make a folder read-only): the OSError a read-only or
    full file system raises while the output folder is created."""
    import tempfile

    number, text = error
    target = tmp_path / "runs"

    def refuse(*args, **kwargs):
        raise OSError(number, text, str(target))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    assert main(["run", "--task", str(mini_task), "--output", str(target / "out"), "--quiet"]) == 2
    assert _only_line(capsys.readouterr().err) == f"rrbench: error: {target}: {text}"
    assert not (target / "out").exists()
