"""The test split is one-time: one gate every path to its labels goes through, and an append-only ledger of uses.

A test split stays an unbiased estimate only while nothing is selected by looking at it. rrbench's policy:

- **A use is any computation of new numbers from test labels**: ``rrbench run`` and ``rrbench evaluate`` on test
  (both need ``--final``), which write one ledger line each. Recomputing a published record's metrics (``rrbench
  leaderboard check``) is not a use: the numbers exist already.
- **Selection never reads test**: fitting a calibrator or a threshold on test (``--calibrate-on test``), folds of
  test, sweeps, the matrix and training on test are refused outright, with or without ``--final``.
- **One use per configuration**: a second run of the same configuration hash on test is refused, and a configuration
  first evaluated after another configuration of the same task data had seen test is flagged in its record.

:func:`test_split_use` is the one gate; :func:`claim` appends a line under an exclusive lock. A line names the
configuration hash, the task data hash and the sha256 of the record it produced (its digest without the ledger line
itself), so ``rrbench leaderboard check`` can require exactly one matching line per test record, and, given the
base revision of a pull request, refuse a ledger whose earlier lines were edited or removed.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from rrbench.tasks.loader import parse_fold_split
from rrbench.util.errors import UsageError
from rrbench.util.git import file_at_revision
from rrbench.util.io import loads_strict_json
from rrbench.util.strict_yaml import describe_validation_error

TEST_SPLIT = "test"
DEFAULT_LEDGER = Path("leaderboard") / "test-ledger.jsonl"
ENV = "RRBENCH_TEST_LEDGER"
Sha256 = str


class LedgerLine(BaseModel):
    """One use of the test split. Every field is required: a hand-written short line is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config_hash: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    task: StrictStr
    task_data_sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    results_sha256: StrictStr = Field(pattern=r"^[0-9a-f]{64}$")
    split: Literal["test"]
    purpose: Literal["run", "evaluate"]
    time: StrictStr
    command: StrictStr
    selected_on: StrictStr | None
    selected_after_test_seen: StrictBool

    def text(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, allow_nan=False, ensure_ascii=True)


def ledger_path(explicit: str | Path | None = None) -> Path:
    """The ledger file: an explicit path, else ``$RRBENCH_TEST_LEDGER``, else leaderboard/test-ledger.jsonl."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return DEFAULT_LEDGER


def is_test_split(split: str) -> bool:
    """The test split, or a fold of it."""
    fold = parse_fold_split(split)
    return (fold[0] if fold else split) == TEST_SPLIT


def test_split_use(split: str, final: bool, what: str, reads_labels_for: str = "evaluation") -> bool:
    """The one gate in front of test labels: True when ``split`` is test and this is an allowed use (a final
    evaluation with ``--final``); refuses everything else with one line. Call it before any work.

    ``what`` names the command or option (``rrbench run``, ``--calibrate-on``); ``reads_labels_for`` is
    ``evaluation`` (allowed with ``--final``) or anything else (fitting, tuning, training: never allowed).
    """
    if not is_test_split(split):
        return False
    if split != TEST_SPLIT:
        raise UsageError(f"{what}: split {split} is refused: the test split is used whole and once, never in folds")
    if reads_labels_for != "evaluation":
        raise UsageError(f"{what}: the test split is never used for {reads_labels_for} (its labels would choose "
                         f"the system it then judges); use dev_select/dev_final")
    if not final:
        raise UsageError(f"{what} on --split test is refused without --final: the test split is used once per "
                         f"configuration, to confirm a system already selected on dev_select/dev_final")
    return True


def check_split(split: str, final: bool) -> None:
    """:func:`test_split_use` for a final evaluation (kept for the commands that only evaluate)."""
    test_split_use(split, final, f"--split {split}")


def _parse_line(line: str, path: Path, number: int) -> LedgerLine:
    raw = loads_strict_json(line, f"{path} line {number} (the test ledger is append-only; restore it from version "
                                  f"control)")
    try:
        return LedgerLine.model_validate(raw)
    except ValidationError as exc:
        raise UsageError(f"{path} line {number}: not a test ledger line: {describe_validation_error(exc)}") from None


def read(path: str | Path | None = None) -> list[LedgerLine]:
    """Every recorded use, oldest first; any malformed line is an error naming the file and line."""
    path = ledger_path(path)
    if not path.is_file():
        return []
    return _parse_text(path.read_text(encoding="utf-8"), path)


def _parse_text(text: str, path: Path) -> list[LedgerLine]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise UsageError(f"{path} line {number}: blank line (the ledger is written by rrbench only)")
        entries.append(_parse_line(line, path, number))
    return entries


def uses_of(config_hash: str, path: str | Path | None = None) -> list[LedgerLine]:
    return [e for e in read(path) if e.config_hash == config_hash]


def claim(*, config_hash: str, task: str, task_data_sha256: str, results_sha256: str, purpose: str, command: str,
          selected_on: str | None = None, path: str | Path | None = None) -> dict[str, Any]:
    """Append one use, atomically with the check that the configuration has not used the split before; returns what
    the record's provenance carries (``test_split``)."""
    path = ledger_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            handle.seek(0)
            entries = _parse_text(handle.read(), path)
            for entry in entries:
                if entry.config_hash == config_hash:
                    raise UsageError(f"configuration {config_hash[:12]} already used the test split on {entry.time} "
                                     f"({path}); the test split is one-time per configuration")
            earlier = [e for e in entries if e.task_data_sha256 == task_data_sha256]
            line = LedgerLine(config_hash=config_hash, task=task, task_data_sha256=task_data_sha256,
                              results_sha256=results_sha256, split=TEST_SPLIT, purpose=purpose,  # type: ignore[arg-type]
                              time=now, command=command, selected_on=selected_on,
                              selected_after_test_seen=bool(earlier))
            handle.seek(0, os.SEEK_END)
            handle.write(line.text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return {"ledger": path.name, "line": line.model_dump(mode="json"), "selected_after_test_seen": bool(earlier)}


def check_append_only(path: str | Path, base: str) -> None:
    """Refuse a ledger whose lines at revision ``base`` (a git revision, e.g. the pull request's base) were edited,
    reordered or removed: the current file must start with exactly those lines."""
    path = Path(path)
    earlier = file_at_revision(path, base)
    if earlier is None:
        return  # the ledger is new in this change
    before = earlier.splitlines()
    now = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    for number, line in enumerate(before, start=1):
        if number > len(now) or now[number - 1] != line:
            raise UsageError(f"{path} line {number}: the test ledger was edited or shortened relative to {base} (it "
                             f"is append-only)")
