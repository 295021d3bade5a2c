"""The test split is one-time: an append-only ledger of every configuration evaluated on it.

A test split stays an unbiased estimate only while nothing is selected by looking at it. So ``--split test`` is
refused unless ``--final`` says "this is the confirmation", every use is appended to a ledger keyed by the
configuration hash (``leaderboard/test-ledger.jsonl`` by default, where the leaderboard's own checks can read it),
a second use of the same configuration is refused, and a configuration first evaluated on test after *another*
configuration of the same task had already seen test is flagged in its record (it may have been chosen with
knowledge of test results). Recomputing metrics from a recorded ``run.trec`` is not a use: only runs that score the
split call :func:`claim`.

The ledger is JSON lines, one object per use, appended under an exclusive file lock and fsynced; lines are never
rewritten. ``RRBENCH_TEST_LEDGER`` points at another file.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any

from rrbench.util.errors import UsageError
from rrbench.util.io import loads_strict_json

TEST_SPLIT = "test"
DEFAULT_LEDGER = Path("leaderboard") / "test-ledger.jsonl"
ENV = "RRBENCH_TEST_LEDGER"


def ledger_path(explicit: str | Path | None = None) -> Path:
    """The ledger file: an explicit path, else ``$RRBENCH_TEST_LEDGER``, else leaderboard/test-ledger.jsonl."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return DEFAULT_LEDGER


def check_split(split: str, final: bool) -> None:
    """Refuse the test split without ``--final``, and folds of it always (call this before anything is loaded)."""
    if split.split("~", 1)[0] == TEST_SPLIT and split != TEST_SPLIT:
        raise UsageError(f"--split {split} is refused: the test split is used whole and once, never in folds")
    if split == TEST_SPLIT and not final:
        raise UsageError("--split test is refused without --final: the test split is used once per configuration, "
                         "to confirm a system already selected on dev_select/dev_final (see docs/matrix.md)")


def read(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Every recorded use, oldest first (an unreadable line is an error naming the file and line)."""
    path = ledger_path(path)
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        entry = loads_strict_json(line, f"{path} line {number} (the test ledger is append-only; restore it from "
                                        f"version control)")
        if not isinstance(entry, dict) or "config_hash" not in entry:
            raise UsageError(f"{path}: line {number} has no config_hash")
        entries.append(entry)
    return entries


def previous_use(config_hash: str, path: str | Path | None = None) -> dict[str, Any] | None:
    return next((e for e in read(path) if e["config_hash"] == config_hash), None)


def _refusal(entry: dict[str, Any], path: Path) -> UsageError:
    return UsageError(f"configuration {entry['config_hash'][:12]} already used the test split on {entry.get('time')} "
                      f"({path}); the test split is one-time per configuration")


def claim(config_hash: str, task: str, task_data_sha256: str, command: str | None = None,
          selected_on: str | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """Record one use of the test split, atomically with the check; returns what the result record should carry.

    Raises UsageError when the configuration already used the split (also when another process claimed it between
    an early check and now). The returned dict goes into the record's manifest (``test_split``): the ledger file,
    the entry, and ``selected_after_test_seen`` when another configuration of the same task used test earlier.
    """
    path = ledger_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            entries = read(path)
            for entry in entries:
                if entry["config_hash"] == config_hash:
                    raise _refusal(entry, path)
            earlier = [e for e in entries if e.get("task_data_sha256") == task_data_sha256]
            entry = {"config_hash": config_hash, "task": task, "task_data_sha256": task_data_sha256,
                     "split": TEST_SPLIT, "time": now, "command": command, "selected_on": selected_on,
                     "selected_after_test_seen": bool(earlier)}
            handle.seek(0, os.SEEK_END)
            handle.write(json.dumps(entry, sort_keys=True, allow_nan=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    out: dict[str, Any] = {"ledger": str(path), "entry": entry, "selected_after_test_seen": bool(earlier)}
    if earlier:
        out["test_first_seen"] = {"time": earlier[0].get("time"), "config_hash": earlier[0]["config_hash"]}
    return out
