"""The score store in a SQLite file on this machine: the default, and what a cache folder holds.

Concurrency: one file in WAL mode, every write a short ``BEGIN IMMEDIATE`` transaction; several processes may score
into the same file at once (tested), and ``rrbench sweep fill --workers N`` shares its fill queue through it. Keep it
on a local disk: SQLite's WAL mode does not work over network file systems (use a PostgreSQL store to share scores
between machines). Lease times come from this machine's clock, which every process on it shares.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.pipeline.score_store import (
    ScoreStore,
    Unit,
    WriteCounts,
    agreement,
    refuse_conflict,
    score_tolerance,
    worker_name,
    worker_row,
)
from rrbench.util.cache_paths import cache_root, check_cache_dir
from rrbench.util.errors import RRBenchError, UsageError, close_matches
from rrbench.util.file_digests import memo_sha256, open_wal_database, write_transaction

DB_NAME = "scores.sqlite"
_SQL_CHUNK = 500  # host parameters per IN (...) query, below SQLite's historical limit of 999

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    mid INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    info TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_scores (
    mid INTEGER NOT NULL,
    key BLOB NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (mid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS list_scores (
    mid INTEGER NOT NULL,
    key BLOB NOT NULL,
    scores BLOB NOT NULL,
    PRIMARY KEY (mid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fill_units (
    unit BLOB PRIMARY KEY,
    mid INTEGER NOT NULL,
    task TEXT NOT NULL,
    split TEXT NOT NULL,
    pairs INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    worker TEXT,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_at REAL,
    created REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fill_workers (
    worker TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    last_seen REAL NOT NULL,
    units INTEGER NOT NULL DEFAULT 0,
    pairs_scored INTEGER NOT NULL DEFAULT 0,
    pairs_new INTEGER NOT NULL DEFAULT 0,
    pairs_duplicate INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS score_bundles (
    hash TEXT PRIMARY KEY,
    mid INTEGER NOT NULL,
    task TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,
    split TEXT NOT NULL,
    context INTEGER NOT NULL,
    pairs INTEGER NOT NULL,
    imported REAL NOT NULL
);
"""


def _chunks(items: Sequence[Any], size: int = _SQL_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SQLiteScoreStore(ScoreStore):
    """A score store in ``<directory>/scores.sqlite`` (default: the cache root)."""

    def __init__(self, directory: str | Path | None = None, timeout_s: float = 120.0) -> None:
        self.directory = Path(directory).expanduser() if directory else cache_root()
        check_cache_dir(self.directory, "cache directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cache directory {self.directory}: cannot create it ({exc.strerror})") from None
        self.path = self.directory / DB_NAME
        self._timeout_s = timeout_s
        self.worker = worker_name()
        self._counting = False
        try:
            self._db = open_wal_database(self.path, _SCHEMA, timeout_s)
        except sqlite3.DatabaseError as exc:
            raise RRBenchError(f"score cache {self.path}: {exc} (delete the file or use another --cache-dir)") from None

    # -- plumbing ------------------------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return str(self.path)

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One short write transaction (:func:`rrbench.util.file_digests.write_transaction`)."""
        return write_transaction(self._db)

    def reopen(self) -> SQLiteScoreStore:
        twin = SQLiteScoreStore(self.directory, self._timeout_s)
        twin.worker = self.worker
        return twin

    def close(self) -> None:
        self._db.close()

    # -- models --------------------------------------------------------------------------------------------------
    def model_id(self, fingerprint: str, model_id: str, info: dict[str, Any]) -> int:
        row = self._db.execute("SELECT mid FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()
        if row:
            return int(row[0])
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO models(fingerprint, model_id, info, created) VALUES (?,?,?,?)",
                       (fingerprint, model_id, json.dumps(info, sort_keys=True, default=str), time.time()))
        return int(self._db.execute("SELECT mid FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()[0])

    def find_model(self, fingerprint: str) -> tuple[int, str, dict[str, Any]] | None:
        row = self._db.execute("SELECT mid, model_id, info FROM models WHERE fingerprint=?", (fingerprint,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), json.loads(row[2]))

    def list_models(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        return [(int(m), f, i, json.loads(info)) for m, f, i, info in self._db.execute(
            "SELECT mid, fingerprint, model_id, info FROM models ORDER BY model_id, created")]

    def file_sha256(self, path: Path) -> str:
        """sha256 of a file through this file's ``file_hashes`` memo (see :mod:`rrbench.util.file_digests`)."""
        return memo_sha256(self._db, path)

    # -- pair scores ---------------------------------------------------------------------------------------------
    def get_pairs(self, mid: int, keys: Sequence[bytes]) -> dict[bytes, float]:
        found: dict[bytes, float] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ",".join("?" * len(chunk))
            for key, score in self._db.execute(
                    f"SELECT key, score FROM pair_scores WHERE mid=? AND key IN ({marks})", (mid, *chunk)):
                found[bytes(key)] = float(score)
        return found

    def _insert_pairs(self, db: sqlite3.Connection, mid: int, rows: dict[bytes, float],
                      tolerance: float) -> WriteCounts:
        """Inside a write transaction: compare stored keys, insert the rest (or raise, rolling everything back)."""
        stored = self.get_pairs(mid, list(rows))
        bad, worst = agreement(stored, rows, tolerance)
        if bad:
            refuse_conflict(self.location, self._model_label(mid), bad, len(stored), worst, tolerance)
        db.executemany("INSERT INTO pair_scores(mid, key, score) VALUES (?,?,?)",
                       [(mid, k, v) for k, v in rows.items() if k not in stored])
        return WriteCounts(scored=len(rows), new=len(rows) - len(stored), duplicate=len(stored))

    def _model_label(self, mid: int) -> str:
        row = self._db.execute("SELECT model_id, fingerprint FROM models WHERE mid=?", (mid,)).fetchone()
        return f"{row[0]} ({row[1][:12]})" if row else str(mid)

    def _count(self, db: sqlite3.Connection, counts: WriteCounts, seconds: float, units: int) -> None:
        if self._counting:
            db.execute("UPDATE fill_workers SET units=units+?, pairs_scored=pairs_scored+?, pairs_new=pairs_new+?, "
                       "pairs_duplicate=pairs_duplicate+?, seconds=seconds+?, last_seen=? WHERE worker=?",
                       (units, counts.scored, counts.new, counts.duplicate, seconds, time.time(), self.worker))

    def put_pairs(self, mid: int, items: Iterable[tuple[bytes, float]], tolerance: float | None = None,
                  seconds: float = 0.0, computed: bool = True) -> WriteCounts:
        rows = {key: float(score) for key, score in items}
        if not rows:
            return WriteCounts()
        with self._write() as db:
            counts = self._insert_pairs(db, mid, rows, score_tolerance(None) if tolerance is None else tolerance)
            if not computed:
                counts.scored = 0
            self._count(db, counts, seconds, 0)
        return counts

    # -- listwise scores -----------------------------------------------------------------------------------------
    def get_list(self, mid: int, key: bytes) -> np.ndarray | None:
        row = self._db.execute("SELECT scores FROM list_scores WHERE mid=? AND key=?", (mid, key)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype="<f8").astype(np.float64)

    def put_list(self, mid: int, key: bytes, scores: np.ndarray) -> None:
        blob = np.asarray(scores, dtype="<f8").tobytes()
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO list_scores(mid, key, scores) VALUES (?,?,?)", (mid, key, blob))

    # -- the fill queue ------------------------------------------------------------------------------------------
    def register_units(self, units: Sequence[Unit]) -> None:
        now = time.time()
        with self._write() as db:
            db.executemany("INSERT OR IGNORE INTO fill_units(unit, mid, task, split, pairs, created) "
                           "VALUES (?,?,?,?,?,?)", [(u.key, u.mid, u.task, u.split, u.pairs, now) for u in units])

    def claim_unit(self, keys: Sequence[bytes], lease_s: float) -> bytes | None:
        with self._write() as db:
            now = time.time()
            for chunk in _chunks(list(keys)):
                marks = ",".join("?" * len(chunk))
                row = db.execute(f"SELECT unit FROM fill_units WHERE unit IN ({marks}) AND (state='pending' OR "
                                 f"(state='leased' AND lease_until < ?)) LIMIT 1", (*chunk, now)).fetchone()
                if row is not None:
                    db.execute("UPDATE fill_units SET state='leased', worker=?, lease_until=?, attempts=attempts+1 "
                               "WHERE unit=?", (self.worker, now + lease_s, row[0]))
                    return bytes(row[0])
        return None

    def extend_lease(self, unit: bytes, lease_s: float) -> bool:
        with self._write() as db:
            changed = db.execute("UPDATE fill_units SET lease_until=? WHERE unit=? AND worker=? AND state='leased'",
                                 (time.time() + lease_s, unit, self.worker)).rowcount
            if self._counting:
                db.execute("UPDATE fill_workers SET last_seen=? WHERE worker=?", (time.time(), self.worker))
        return bool(changed)

    def complete_unit(self, unit: bytes, mid: int, items: Sequence[tuple[bytes, float]], tolerance: float,
                      seconds: float) -> WriteCounts:
        with self._write() as db:
            counts = self._insert_pairs(db, mid, {k: float(v) for k, v in items}, tolerance)
            db.execute("UPDATE fill_units SET state='done', worker=?, lease_until=NULL, done_at=? WHERE unit=?",
                       (self.worker, time.time(), unit))
            self._count(db, counts, seconds, 1)
        return counts

    def open_units(self, keys: Sequence[bytes]) -> int:
        total = 0
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            total += self._db.execute(f"SELECT COUNT(*) FROM fill_units WHERE unit IN ({marks}) AND state!='done'",
                                      tuple(chunk)).fetchone()[0]
        return int(total)

    def start_worker(self, label: str) -> None:
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO fill_workers(worker, label, host, pid, started, last_seen) VALUES (?,?,?,?,?,?) "
                       "ON CONFLICT(worker) DO UPDATE SET label=excluded.label",
                       (self.worker, label, socket.gethostname(), os.getpid(), now, now))
        self._counting = True

    def worker_rows(self, label: str | None = None) -> list[dict[str, Any]]:
        query = ("SELECT worker, label, host, pid, units, pairs_scored, pairs_new, pairs_duplicate, seconds, started, "
                 "last_seen FROM fill_workers" + (" WHERE label=?" if label is not None else "") + " ORDER BY started")
        return [worker_row(row) for row in self._db.execute(query, (label,) if label is not None else ())]

    # -- score bundles -------------------------------------------------------------------------------------------
    def record_bundle(self, content_hash: str, mid: int, task: str, data_sha256: str, split: str, context: int,
                      pairs: int) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO score_bundles(hash, mid, task, data_sha256, split, context, pairs, "
                       "imported) VALUES (?,?,?,?,?,?,?,?)",
                       (content_hash, mid, task, data_sha256, split, context, pairs, time.time()))

    def bundles_for(self, mids: Sequence[int], data_sha256: str, splits: Sequence[str], context: int) -> list[str]:
        if not mids or not splits:
            return []
        query = (f"SELECT hash FROM score_bundles WHERE mid IN ({','.join('?' * len(mids))}) AND data_sha256=? "
                 f"AND split IN ({','.join('?' * len(splits))}) AND context=? ORDER BY hash")
        return [r[0] for r in self._db.execute(query, (*mids, data_sha256, *splits, context))]

    # -- maintenance ---------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        models = []
        pairs = dict(self._db.execute("SELECT mid, COUNT(*) FROM pair_scores GROUP BY mid").fetchall())
        lists = dict(self._db.execute("SELECT mid, COUNT(*) FROM list_scores GROUP BY mid").fetchall())
        for mid, fingerprint, model_id, info, created in self._db.execute(
                "SELECT mid, fingerprint, model_id, info, created FROM models ORDER BY model_id, created"):
            models.append({"model_id": model_id, "fingerprint": fingerprint, "pair_scores": int(pairs.get(mid, 0)),
                           "list_groups": int(lists.get(mid, 0)), "created": created, "info": json.loads(info)})
        size = sum(p.stat().st_size for p in self.directory.glob(DB_NAME + "*") if p.is_file())
        now = time.time()
        units = [{"model_id": m, "fingerprint": f, "task": t, "split": s, "done": int(d), "leased": int(le),
                  "pending": int(p)} for m, f, t, s, d, le, p in self._db.execute(
            "SELECT m.model_id, m.fingerprint, u.task, u.split, SUM(u.state='done'), "
            "SUM(u.state='leased' AND u.lease_until >= ?), SUM(u.state='pending' OR "
            "(u.state='leased' AND u.lease_until < ?)) FROM fill_units u JOIN models m ON m.mid=u.mid "
            "GROUP BY m.model_id, m.fingerprint, u.task, u.split ORDER BY m.model_id, u.task, u.split", (now, now))]
        return {"backend": "sqlite", "path": str(self.path), "size_bytes": size, "models": models,
                "pair_scores": sum(m["pair_scores"] for m in models),
                "list_groups": sum(m["list_groups"] for m in models),
                "units": units, "workers": self.worker_rows()}

    def clear(self, model: str | None = None) -> int:
        with self._write() as db:
            if model is None:
                mids = [r[0] for r in db.execute("SELECT mid FROM models")]
            else:
                mids = [r[0] for r in db.execute(
                    "SELECT mid FROM models WHERE model_id=? OR fingerprint LIKE ?", (model, f"{model}%"))]
            deleted = 0
            for mid in mids:
                deleted += db.execute("DELETE FROM pair_scores WHERE mid=?", (mid,)).rowcount
                deleted += db.execute("DELETE FROM list_scores WHERE mid=?", (mid,)).rowcount
                for table in ("fill_units", "score_bundles", "models"):
                    db.execute(f"DELETE FROM {table} WHERE mid=?", (mid,))
            if model is None:
                db.execute("DELETE FROM file_hashes")
                db.execute("DELETE FROM fill_workers")
        if model is not None and not mids:
            known = [r[0] for r in self._db.execute("SELECT DISTINCT model_id FROM models")]
            raise UsageError(f"the cache holds no scores for model {model!r}.{close_matches(model, known)}")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if model is None:
            self._db.execute("VACUUM")
        return deleted

    def integrity_ok(self) -> bool:
        return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
