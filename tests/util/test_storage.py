"""rrbench.util.storage: every storage URL form opens a working Optuna storage; bad ones fail in one line, no password."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid

import optuna
import pytest

from rrbench.util.errors import UsageError
from rrbench.util.storage import normalise_url, open_storage, redact_url

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _roundtrip(storage, name: str = "s") -> list[float]:
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    again = optuna.load_study(study_name=name, storage=storage)
    return [t.value for t in again.trials]


def test_redact_url_hides_only_the_password():
    assert redact_url("postgresql+psycopg://alice:s3cr3t@db.example:5432/rr") == \
        "postgresql+psycopg://alice:***@db.example:5432/rr"
    assert redact_url("postgresql+psycopg://alice@db:5432/rr") == "postgresql+psycopg://alice@db:5432/rr"
    assert redact_url("sqlite:///x/study.sqlite") == "sqlite:///x/study.sqlite"
    assert "p@ss" not in redact_url("postgresql://u:p@ss@h/db")


def test_default_is_sqlite_in_the_output_folder(tmp_path):
    path = tmp_path / "out" / "study.sqlite"
    storage = open_storage(None, path)
    assert len(_roundtrip(storage)) == 3
    assert path.is_file()
    assert normalise_url(None, path) == f"sqlite:///{path}"


def test_explicit_sqlite_and_journal(tmp_path):
    sqlite_url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    assert len(_roundtrip(open_storage(sqlite_url, tmp_path / "unused.sqlite"))) == 3
    journal = tmp_path / "study.log"
    values = _roundtrip(open_storage(f"journal://{journal}", tmp_path / "unused.sqlite"))
    # a second process-independent open replays the same journal
    assert _roundtrip(open_storage(f"journal://{journal}", tmp_path / "x.sqlite"))[:3] == values
    assert journal.stat().st_size > 0
    assert not (tmp_path / "unused.sqlite").exists()


@pytest.mark.parametrize("url, words", [
    ("redis://localhost/0", "unsupported storage URL"),
    ("journal://relative.log", "journal storage URL"),
    ("sqlite:///no/such/folder/s.sqlite", "does not exist"),
    ("journal:///no/such/folder/s.log", "does not exist"),
])
def test_bad_urls_are_usage_errors(tmp_path, url, words):
    with pytest.raises(UsageError, match=words):
        open_storage(url, tmp_path / "s.sqlite")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_database_names_the_url_without_password(tmp_path):
    url = f"postgresql+psycopg://alice:hunter2secret@127.0.0.1:{_closed_port()}/rrbench"
    with pytest.raises(UsageError) as info:
        open_storage(url, tmp_path / "s.sqlite")
    message = str(info.value)
    assert "\n" not in message
    assert "hunter2secret" not in message
    assert "alice:***@127.0.0.1" in message


def test_unreachable_database_exits_2_in_one_line(tmp_path):
    """Through the CLI's error handling (a tiny click command calling open_storage), as a user would see it."""
    url = f"postgresql://bob:pw-do-not-show@127.0.0.1:{_closed_port()}/x"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from rrbench.util.errors import RRBenchError
        from rrbench.util.storage import open_storage
        try:
            open_storage({url!r}, Path({str(tmp_path / 's.sqlite')!r}))
        except RRBenchError as exc:
            print(f"error: {{exc}}", file=sys.stderr)
            sys.exit(exc.exit_code)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bob:***@127.0.0.1" in lines[0] and "pw-do-not-show" not in lines[0]


def test_postgres_storage_with_heartbeat(postgres_url, monkeypatch):
    from tests.support.pg_server import create_database

    monkeypatch.setenv("RRBENCH_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("RRBENCH_HEARTBEAT_GRACE", "2")
    url = create_database(postgres_url, f"t_{uuid.uuid4().hex[:8]}")
    storage = open_storage(url, None, heartbeat=True)
    from optuna.storages._heartbeat import is_heartbeat_enabled

    assert is_heartbeat_enabled(storage)
    assert storage.get_heartbeat_interval() == 1
    values = _roundtrip(storage)
    assert len(values) == 3
    # postgresql:// means the same server through psycopg 3
    same = open_storage(url.replace("postgresql+psycopg://", "postgresql://"), None)
    assert [t.value for t in optuna.load_study(study_name="s", storage=same).trials] == values


def test_postgres_missing_database_is_a_usage_error(postgres_url):
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_db_here"
    url = url.replace("postgres@", "postgres:topsecret@")
    with pytest.raises(UsageError, match="no_such_db_here") as info:
        open_storage(url, None)
    assert "topsecret" not in str(info.value)
