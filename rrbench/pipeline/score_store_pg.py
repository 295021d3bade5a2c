"""The score store in a PostgreSQL database: one store for every machine that reaches it.

``--cache-dir postgresql://USER:PASSWORD@HOST:PORT/DB`` (or ``postgresql+psycopg://``, the study storage's form, whose
driver suffix is dropped before ``psycopg.connect``) names it; so does ``$RRBENCH_CACHE``. The tables carry an
``rrbench_`` prefix, so the store may share a database with the Optuna study storage. Keys and fingerprints are the
SQLite store's; only the connection differs:

- reads are batched: one ``key = ANY(...)`` query per batch of keys, keys and results in binary, never one query per
  pair (binary key arrays read 2-3x faster than text ones);
- writes are one transaction per batch (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), keys sorted so that two
  workers writing overlapping batches lock rows in the same order and never deadlock; a stored pair written again is
  compared within the dtype's tolerance (:mod:`rrbench.pipeline.score_store`);
- the fill queue's leases expire by the database's ``now()``, so the workers' clocks never matter;
- every error of the database (unreachable, connection lost, permission) is one line naming the URL without its
  password, exit 2; a transaction cut short leaves nothing of itself.

Connections: one per store instance; a fill worker holds two (its work and its heartbeat).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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
from rrbench.util.cache_paths import cache_disabled_by_env
from rrbench.util.errors import UsageError, close_matches
from rrbench.util.faults import kill_point
from rrbench.util.file_digests import FileDigestMemo
from rrbench.util.io import sha256_file
from rrbench.util.storage import CONNECT_TIMEOUT_S, psycopg_url, redact_url, scrub_message

_READ_CHUNK = 20000  # keys per ANY(...) read: one round trip per batch, a few hundred kB of parameters
_SCHEMA_LOCK = 0x7272_6265_6E63  # advisory lock id ("rrbenc") serialising schema creation between workers

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rrbench_score_models (
    mid SERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    model_id TEXT NOT NULL,
    info TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS rrbench_pair_scores (
    mid INTEGER NOT NULL,
    key BYTEA NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (mid, key)
);
CREATE TABLE IF NOT EXISTS rrbench_list_scores (
    mid INTEGER NOT NULL,
    key BYTEA NOT NULL,
    scores BYTEA NOT NULL,
    PRIMARY KEY (mid, key)
);
CREATE TABLE IF NOT EXISTS rrbench_fill_units (
    unit BYTEA PRIMARY KEY,
    mid INTEGER NOT NULL,
    task TEXT NOT NULL,
    split TEXT NOT NULL,
    pairs INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    worker TEXT,
    lease_until TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_at TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rrbench_score_bundles (
    hash TEXT PRIMARY KEY,
    mid INTEGER NOT NULL,
    task TEXT NOT NULL,
    data_sha256 TEXT NOT NULL,
    split TEXT NOT NULL,
    context INTEGER NOT NULL,
    pairs INTEGER NOT NULL,
    imported TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rrbench_fill_workers (
    worker TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    units INTEGER NOT NULL DEFAULT 0,
    pairs_scored BIGINT NOT NULL DEFAULT 0,
    pairs_new BIGINT NOT NULL DEFAULT 0,
    pairs_duplicate BIGINT NOT NULL DEFAULT 0,
    seconds DOUBLE PRECISION NOT NULL DEFAULT 0
)
"""
_TABLES = ("rrbench_score_models", "rrbench_pair_scores", "rrbench_list_scores", "rrbench_fill_units",
           "rrbench_score_bundles", "rrbench_fill_workers")


class PostgresScoreStore(ScoreStore):
    """A score store in the PostgreSQL database at ``url``."""

    shared = True

    def __init__(self, url: str) -> None:
        self.url = url.strip()
        self._shown = redact_url(self.url)
        self.worker = worker_name()
        self._counting = False
        self._memo: FileDigestMemo | None = None
        try:
            import psycopg  # lazy: only a database store needs the driver
        except ModuleNotFoundError:
            raise UsageError(f"score store {self._shown} needs the Python package 'psycopg' "
                             f"(pip install 'rrbench[postgres]')") from None
        self._psycopg = psycopg
        with self._guard("cannot open it"):
            self._conn = psycopg.connect(psycopg_url(self.url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name="rrbench-scores")
            self._create_schema()

    # -- plumbing ------------------------------------------------------------------------------------------------
    @property
    def location(self) -> str:
        return self._shown

    @contextmanager
    def _guard(self, doing: str = "") -> Iterator[None]:
        """Turn any database error into one line, exit 2, naming the URL without its password."""
        try:
            yield
        except self._psycopg.Error as exc:
            reason = scrub_message(exc, self.url) or type(exc).__name__
            raise UsageError(f"score store {self._shown}: {doing + ': ' if doing else ''}{reason}") from None

    def _value(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the one row ``query`` returns (aggregates, look-ups that cannot miss)."""
        row = self._conn.execute(query, params).fetchone()
        if row is None:
            raise UsageError(f"score store {self._shown}: no row for {query.split(' FROM ')[0]}")
        return row[0]

    def _create_schema(self) -> None:
        row = self._conn.execute("SELECT to_regclass('rrbench_fill_workers')").fetchone()
        if row is not None and row[0] is not None:
            return
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._conn.execute(statement)

    def reopen(self) -> PostgresScoreStore:
        twin = PostgresScoreStore(self.url)
        twin.worker, twin._counting = self.worker, self._counting
        return twin

    def close(self) -> None:
        if self._memo is not None:
            self._memo.close()
            self._memo = None
        if not self._conn.closed:
            self._conn.close()

    # -- models --------------------------------------------------------------------------------------------------
    def model_id(self, fingerprint: str, model_id: str, info: dict[str, Any]) -> int:
        with self._guard():
            found = self.find_model(fingerprint)
            if found is not None:
                return found[0]
            self._conn.execute("INSERT INTO rrbench_score_models(fingerprint, model_id, info, created) "
                               "VALUES (%s, %s, %s, %s) ON CONFLICT (fingerprint) DO NOTHING",
                               (fingerprint, model_id, json.dumps(info, sort_keys=True, default=str), time.time()))
            mid = self._value("SELECT mid FROM rrbench_score_models WHERE fingerprint=%s", (fingerprint,))
        return int(mid)

    def find_model(self, fingerprint: str) -> tuple[int, str, dict[str, Any]] | None:
        with self._guard():
            row = self._conn.execute("SELECT mid, model_id, info FROM rrbench_score_models WHERE fingerprint=%s",
                                     (fingerprint,)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), json.loads(row[2]))

    def list_models(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        with self._guard():
            rows = self._conn.execute("SELECT mid, fingerprint, model_id, info FROM rrbench_score_models "
                                      "ORDER BY model_id, created").fetchall()
        return [(int(m), f, i, json.loads(info)) for m, f, i, info in rows]

    def file_sha256(self, path: Path) -> str:
        """Digests describe this machine's files, so they are memoised locally (the cache root), never here."""
        if cache_disabled_by_env():
            return sha256_file(path)
        if self._memo is None:
            self._memo = FileDigestMemo()
        return self._memo.file_sha256(path)

    # -- pair scores ---------------------------------------------------------------------------------------------
    def get_pairs(self, mid: int, keys: Sequence[bytes]) -> dict[bytes, float]:
        found: dict[bytes, float] = {}
        unique = list(dict.fromkeys(keys))
        with self._guard(), self._conn.cursor(binary=True) as cursor:
            for start in range(0, len(unique), _READ_CHUNK):
                cursor.execute("SELECT key, score FROM rrbench_pair_scores WHERE mid=%s AND key = ANY(%b)",
                               (mid, unique[start:start + _READ_CHUNK]))
                for key, score in cursor:
                    found[bytes(key)] = float(score)
        return found

    def _insert_pairs(self, mid: int, rows: dict[bytes, float], tolerance: float) -> WriteCounts:
        """Inside a transaction: insert new keys, compare the ones already stored (or raise: all rolled back)."""
        keys = sorted(rows)  # one lock order for every writer: overlapping batches cannot deadlock
        inserted = {bytes(r[0]) for r in self._conn.execute(
            "INSERT INTO rrbench_pair_scores(mid, key, score) SELECT %s, k, s FROM unnest(%b::bytea[], "
            "%b::float8[]) AS t(k, s) ON CONFLICT (mid, key) DO NOTHING RETURNING key",
            (mid, keys, [rows[k] for k in keys])).fetchall()}
        existing = [k for k in keys if k not in inserted]
        if existing:
            stored = self.get_pairs(mid, existing)
            bad, worst = agreement(stored, rows, tolerance)
            if bad:
                refuse_conflict(self._shown, self._model_label(mid), bad, len(stored), worst, tolerance)
        return WriteCounts(scored=len(rows), new=len(inserted), duplicate=len(existing))

    def _model_label(self, mid: int) -> str:
        row = self._conn.execute("SELECT model_id, fingerprint FROM rrbench_score_models WHERE mid=%s",
                                 (mid,)).fetchone()
        return f"{row[0]} ({row[1][:12]})" if row else str(mid)

    def _count(self, counts: WriteCounts, seconds: float, units: int) -> None:
        if self._counting:
            self._conn.execute(
                "UPDATE rrbench_fill_workers SET units=units+%s, pairs_scored=pairs_scored+%s, "
                "pairs_new=pairs_new+%s, pairs_duplicate=pairs_duplicate+%s, seconds=seconds+%s, last_seen=now() "
                "WHERE worker=%s", (units, counts.scored, counts.new, counts.duplicate, seconds, self.worker))

    def put_pairs(self, mid: int, items: Iterable[tuple[bytes, float]], tolerance: float | None = None,
                  seconds: float = 0.0, computed: bool = True) -> WriteCounts:
        rows = {key: float(score) for key, score in items}
        if not rows:
            return WriteCounts()
        with self._guard("writing scores"), self._conn.transaction():
            counts = self._insert_pairs(mid, rows, score_tolerance(None) if tolerance is None else tolerance)
            if not computed:
                counts.scored = 0
            self._count(counts, seconds, 0)
        kill_point("commit")
        return counts

    # -- listwise scores -----------------------------------------------------------------------------------------
    def get_list(self, mid: int, key: bytes) -> np.ndarray | None:
        with self._guard():
            row = self._conn.execute("SELECT scores FROM rrbench_list_scores WHERE mid=%s AND key=%s",
                                     (mid, key)).fetchone()
        return None if row is None else np.frombuffer(bytes(row[0]), dtype="<f8").astype(np.float64)

    def put_list(self, mid: int, key: bytes, scores: np.ndarray) -> None:
        blob = np.asarray(scores, dtype="<f8").tobytes()
        with self._guard("writing scores"):
            self._conn.execute("INSERT INTO rrbench_list_scores(mid, key, scores) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING", (mid, key, blob))
        kill_point("commit")

    # -- the fill queue ------------------------------------------------------------------------------------------
    def register_units(self, units: Sequence[Unit]) -> None:
        if not units:
            return
        with self._guard("registering fill units"):
            self._conn.execute(
                "INSERT INTO rrbench_fill_units(unit, mid, task, split, pairs) SELECT * FROM unnest(%b::bytea[], "
                "%s::int[], %s::text[], %s::text[], %s::int[]) ON CONFLICT (unit) DO NOTHING",
                ([u.key for u in units], [u.mid for u in units], [u.task for u in units], [u.split for u in units],
                 [u.pairs for u in units]))

    def claim_unit(self, keys: Sequence[bytes], lease_s: float) -> bytes | None:
        with self._guard("claiming a fill unit"), self._conn.transaction():
            row = self._conn.execute(
                "SELECT unit FROM rrbench_fill_units WHERE unit = ANY(%b) AND (state='pending' OR "
                "(state='leased' AND lease_until < now())) LIMIT 1 FOR UPDATE SKIP LOCKED", (list(keys),)).fetchone()
            if row is None:
                return None
            self._conn.execute(
                "UPDATE rrbench_fill_units SET state='leased', worker=%s, lease_until=now() + %s * interval '1 second',"
                " attempts=attempts+1 WHERE unit=%s", (self.worker, float(lease_s), row[0]))
        return bytes(row[0])

    def extend_lease(self, unit: bytes, lease_s: float) -> bool:
        with self._guard("extending a lease"):
            changed = self._conn.execute(
                "UPDATE rrbench_fill_units SET lease_until=now() + %s * interval '1 second' "
                "WHERE unit=%s AND worker=%s AND state='leased'", (float(lease_s), unit, self.worker)).rowcount
            self._conn.execute("UPDATE rrbench_fill_workers SET last_seen=now() WHERE worker=%s", (self.worker,))
        return bool(changed)

    def complete_unit(self, unit: bytes, mid: int, items: Sequence[tuple[bytes, float]], tolerance: float,
                      seconds: float) -> WriteCounts:
        rows = {k: float(v) for k, v in items}
        with self._guard("writing a fill unit"), self._conn.transaction():
            counts = self._insert_pairs(mid, rows, tolerance) if rows else WriteCounts()
            self._conn.execute("UPDATE rrbench_fill_units SET state='done', worker=%s, lease_until=NULL, "
                               "done_at=now() WHERE unit=%s", (self.worker, unit))
            self._count(counts, seconds, 1)
        kill_point("commit")
        return counts

    def open_units(self, keys: Sequence[bytes]) -> int:
        with self._guard():
            return int(self._value("SELECT count(*) FROM rrbench_fill_units WHERE unit = ANY(%b) AND state <> 'done'",
                                   (list(keys),)))

    def start_worker(self, label: str) -> None:
        with self._guard("registering a worker"):
            self._conn.execute("INSERT INTO rrbench_fill_workers(worker, label, host, pid) VALUES (%s, %s, %s, %s) "
                               "ON CONFLICT (worker) DO UPDATE SET label=excluded.label",
                               (self.worker, label, socket.gethostname(), os.getpid()))
        self._counting = True

    def worker_rows(self, label: str | None = None) -> list[dict[str, Any]]:
        query = ("SELECT worker, label, host, pid, units, pairs_scored, pairs_new, pairs_duplicate, seconds, "
                 "extract(epoch FROM started), extract(epoch FROM last_seen) FROM rrbench_fill_workers"
                 + (" WHERE label=%s" if label is not None else "") + " ORDER BY started, worker")
        with self._guard():
            rows = self._conn.execute(query, (label,) if label is not None else ()).fetchall()
        return [worker_row(row) for row in rows]

    # -- score bundles -------------------------------------------------------------------------------------------
    def record_bundle(self, content_hash: str, mid: int, task: str, data_sha256: str, split: str, context: int,
                      pairs: int) -> None:
        with self._guard("recording a bundle"):
            self._conn.execute("INSERT INTO rrbench_score_bundles(hash, mid, task, data_sha256, split, context, "
                               "pairs) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (hash) DO NOTHING",
                               (content_hash, mid, task, data_sha256, split, context, pairs))

    def bundles_for(self, mids: Sequence[int], data_sha256: str, splits: Sequence[str], context: int) -> list[str]:
        if not mids or not splits:
            return []
        with self._guard():
            rows = self._conn.execute("SELECT hash FROM rrbench_score_bundles WHERE mid = ANY(%s) AND "
                                      "data_sha256=%s AND split = ANY(%s) AND context=%s ORDER BY hash",
                                      (list(mids), data_sha256, list(splits), context)).fetchall()
        return [r[0] for r in rows]

    # -- maintenance ---------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._guard():
            pairs: dict[int, int] = dict(self._conn.execute(
                "SELECT mid, count(*) FROM rrbench_pair_scores GROUP BY mid").fetchall())
            lists: dict[int, int] = dict(self._conn.execute(
                "SELECT mid, count(*) FROM rrbench_list_scores GROUP BY mid").fetchall())
            models = [{"model_id": model_id, "fingerprint": fingerprint, "pair_scores": int(pairs.get(mid, 0)),
                       "list_groups": int(lists.get(mid, 0)), "created": created, "info": json.loads(info)}
                      for mid, fingerprint, model_id, info, created in self._conn.execute(
                          "SELECT mid, fingerprint, model_id, info, created FROM rrbench_score_models "
                          "ORDER BY model_id, created")]
            size = self._value("SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
                               (list(_TABLES),))
            table = self._value("SELECT pg_total_relation_size('rrbench_pair_scores')")
            units = [{"model_id": m, "fingerprint": f, "task": t, "split": s, "done": int(d), "leased": int(le),
                      "pending": int(p)} for m, f, t, s, d, le, p in self._conn.execute(
                "SELECT m.model_id, m.fingerprint, u.task, u.split, count(*) FILTER (WHERE u.state='done'), "
                "count(*) FILTER (WHERE u.state='leased' AND u.lease_until >= now()), count(*) FILTER (WHERE "
                "u.state='pending' OR (u.state='leased' AND u.lease_until < now())) FROM rrbench_fill_units u "
                "JOIN rrbench_score_models m ON m.mid=u.mid GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 4")]
        total = sum(m["pair_scores"] for m in models)
        return {"backend": "postgresql", "path": self._shown, "size_bytes": int(size or 0), "models": models,
                "pair_scores": total, "list_groups": sum(m["list_groups"] for m in models),
                "pair_table_bytes_per_million": round(table * 1e6 / total) if total >= 100_000 else None,
                "units": units, "workers": self.worker_rows()}

    def clear(self, model: str | None = None) -> int:
        with self._guard("clearing"), self._conn.transaction():
            if model is None:
                mids = [r[0] for r in self._conn.execute("SELECT mid FROM rrbench_score_models")]
            else:
                mids = [r[0] for r in self._conn.execute(
                    "SELECT mid FROM rrbench_score_models WHERE model_id=%s OR fingerprint LIKE %s",
                    (model, f"{model}%"))]
            deleted = 0
            for table in ("rrbench_pair_scores", "rrbench_list_scores"):
                deleted += self._conn.execute(f"DELETE FROM {table} WHERE mid = ANY(%s)", (mids,)).rowcount
            for table in ("rrbench_fill_units", "rrbench_score_bundles", "rrbench_score_models"):
                self._conn.execute(f"DELETE FROM {table} WHERE mid = ANY(%s)", (mids,))
            if model is None:
                self._conn.execute("DELETE FROM rrbench_fill_workers")
            known = [r[0] for r in self._conn.execute("SELECT DISTINCT model_id FROM rrbench_score_models")]
        if model is not None and not mids:
            raise UsageError(f"the score store holds no scores for model {model!r}.{close_matches(model, known)}")
        return deleted
