"""Reading a score store's rows directly, as the tests' independent view of what a fill left behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def pair_scores(location: str | Path) -> dict[str, dict[bytes, float]]:
    """fingerprint -> {pair key: score} of every stored pair (a folder's scores.sqlite, or a PostgreSQL URL)."""
    out: dict[str, dict[bytes, float]] = {}
    if str(location).startswith("postgresql"):
        with _pg(str(location)) as conn:
            rows = conn.execute("SELECT m.fingerprint, p.key, p.score FROM rrbench_pair_scores p "
                                "JOIN rrbench_score_models m ON m.mid = p.mid").fetchall()
    else:
        db = sqlite3.connect(str(Path(location) / "scores.sqlite"))
        rows = db.execute("SELECT m.fingerprint, p.key, p.score FROM pair_scores p JOIN models m ON m.mid = p.mid"
                          ).fetchall()
        db.close()
    for fingerprint, key, score in rows:
        out.setdefault(fingerprint, {})[bytes(key)] = float(score)
    return out


def pg_rows(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Rows of one SQL query on the database at ``url``."""
    with _pg(url) as conn:
        return conn.execute(query, params).fetchall()
