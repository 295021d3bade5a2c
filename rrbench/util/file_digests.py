"""sha256 of local files, memoised on disk by (path, size, mtime).

Weights folders are hashed on every run (a content hash, not a path, identifies a model), and re-reading gigabytes
each time would be slow. The memo is local by nature: it describes files on this machine, so it stays in the local
cache root even when scores live elsewhere. It shares ``scores.sqlite`` with the SQLite score cache (table
``file_hashes``), so caches made before this module existed keep their memo.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rrbench.util.cache_paths import cache_root, check_cache_dir
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.faults import kill_point
from rrbench.util.io import sha256_file

MEMO_DB = "scores.sqlite"
_SCHEMA = """CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)"""


@contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction on an autocommit connection; concurrent writers wait on the lock instead of
    failing. Its commit is the crash-safety suite's ``commit`` kill point."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    kill_point("commit")


def open_wal_database(path: Path, schema: str, timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection to ``path`` in WAL mode with ``schema`` (``;``-separated statements) in place.

    Why the retry: when several processes open a brand-new file at once (``sweep fill --workers N``), switching it to
    WAL can answer "database is locked" at once, without waiting on the busy timeout, while another process holds
    the lock to do the same. Such a refusal is transient, so opening tries again until ``timeout_s`` has passed;
    any other error, or a lock held past the deadline, goes to the caller.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.01
    while True:
        db = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            with write_transaction(db):
                for statement in filter(str.strip, schema.split(";")):
                    db.execute(statement)
            return db
        except sqlite3.OperationalError as exc:
            db.close()
            transient = "locked" in str(exc) or "busy" in str(exc)
            if not transient or time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        except BaseException:
            db.close()
            raise


def memo_sha256(db: sqlite3.Connection, path: Path) -> str:
    """sha256 of ``path`` through the ``file_hashes`` table of ``db`` (an autocommit connection)."""
    stat = path.stat()
    key = str(path.resolve())
    row = db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (key,)).fetchone()
    if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
        return str(row[2])
    digest = sha256_file(path)
    with write_transaction(db):
        db.execute("INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns, sha256) VALUES (?,?,?,?)",
                   (key, stat.st_size, stat.st_mtime_ns, digest))
    return digest


class FileDigestMemo:
    """The on-disk memo under a cache folder (default: the cache root). Open, use, close."""

    def __init__(self, directory: str | Path | None = None, timeout_s: float = 120.0) -> None:
        folder = Path(directory).expanduser() if directory else cache_root()
        check_cache_dir(folder, "cache directory")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._db = open_wal_database(folder / MEMO_DB, _SCHEMA, timeout_s)
        except OSError as exc:
            raise UsageError(f"cache directory {folder}: cannot create it ({exc.strerror})") from None
        except sqlite3.DatabaseError as exc:
            raise RRBenchError(f"file digest memo {folder / MEMO_DB}: {exc}") from None

    def file_sha256(self, path: Path) -> str:
        return memo_sha256(self._db, path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FileDigestMemo:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
