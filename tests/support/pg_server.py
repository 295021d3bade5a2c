"""A throwaway PostgreSQL server for tests of the shared Optuna storage.

Multi-machine studies live in PostgreSQL, so their tests need a real server, not a mock. This starts one from the
installed binaries (``initdb`` into a temporary folder, ``pg_ctl`` on a free loopback port, trust authentication) and
stops it afterwards. PostgreSQL refuses to run as root, so under root (CI runs as root) the server runs as the
``postgres`` user (or ``nobody``) through ``runuser``; the temporary folder is made theirs.

``RRBENCH_TEST_POSTGRES_URL`` points the tests at an existing server instead; ``RRBENCH_PG_BIN`` names the folder
holding ``initdb`` and ``pg_ctl`` when they are not under /usr/lib/postgresql/*/bin or on PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl (PostgreSQL 15 preferred), or None when none is installed."""
    candidates: list[Path] = []
    if os.environ.get("RRBENCH_PG_BIN"):
        candidates.append(Path(os.environ["RRBENCH_PG_BIN"]))
    base = Path("/usr/lib/postgresql")
    if base.is_dir():
        versions = sorted((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: (p.name != "15", -int(p.name)))
        candidates += [v / "bin" for v in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


@contextlib.contextmanager
def postgres_server(pg_bin: Path) -> Iterator[str]:
    """Start a server, yield its ``postgresql+psycopg://`` URL (superuser ``postgres``, database ``postgres``), stop it."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="rrbench-pg-"))
    prefix: list[str] = []
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            server_log = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {' | '.join(tail + server_log)}")

    run(str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    run(str(pg_bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A fresh, empty database on the server at ``url``; returns its URL (one per test keeps studies apart)."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name
