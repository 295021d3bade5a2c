"""Several processes opening one brand-new score cache at once (``sweep fill --workers N`` does this).

Before the retry in :func:`rrbench.util.file_digests.open_wal_database`, about one round in six lost a process to
"database is locked" on this machine; CI's ``--workers 2`` test failed on it.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from rrbench.pipeline.score_store_sqlite import SQLiteScoreStore

OPENERS = 4
ROUNDS = 25


def _open_and_write(folder: str, start: Any) -> None:
    """An error here ends the process with exit code 1 and its traceback on stderr."""
    start.wait()
    store = SQLiteScoreStore(folder)
    store.model_id("fingerprint", "model", {})
    store.close()


def test_processes_opening_a_new_cache_together_all_get_in(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for round_number in range(ROUNDS):
        folder = tmp_path / f"round{round_number}"
        start = context.Barrier(OPENERS)
        openers = [context.Process(target=_open_and_write, args=(str(folder), start)) for _ in range(OPENERS)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(timeout=120)
        assert [opener.exitcode for opener in openers] == [0] * OPENERS, f"round {round_number}"
        store = SQLiteScoreStore(folder)
        assert [row[2] for row in store.list_models()] == ["model"]
        store.close()
