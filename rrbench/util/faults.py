"""A test-only switch that makes the process kill itself (SIGKILL) at a named stage where state is written.

``RRBENCH_TEST_KILL_AT=stage:n`` kills the process the ``n``-th time it reaches ``stage`` (1-based). The kill -9
suite (``tests/util/test_crash_safety.py``; ``tests/hpo/test_sweep.py`` for ``rrbench sweep``) uses it to stop ``rrbench run``,
``candidates``, ``train`` and ``sweep`` exactly where a power cut would hurt most, then checks that re-running the
command completes with the same results. Stages:

- ``write``: an atomic file write, after the temporary file is complete and synced, before its rename;
- ``dir``: an atomic output folder, after every file is written, before the folder's rename;
- ``commit``: right after a score-cache transaction committed (``rrbench run``, ``rrbench sweep fill`` ...);
- ``study-commit`` / ``study-committed``: just before / after a transaction of an Optuna study storage commits
  (``rrbench.util.storage``: every trial a sweep creates, samples and tells is written this way);
- ``fill-unit``: a fill worker has scored a unit of the fill queue and not yet written it
  (``rrbench.pipeline.fill_queue``).

``RRBENCH_TEST_STOP_AT=stage:n`` stops the process (SIGSTOP) there instead, so that a test can change the world
around it (cut its database connections) and let it continue (SIGCONT).

Unset (always, outside tests), a kill point costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

_COUNTS: dict[str, int] = {}


def kill_point(stage: str) -> None:
    if os.environ.get("RRBENCH_TEST_TRACE_KILL_POINTS"):  # lists the points a command passes (to plan kills)
        os.write(2, f"rrbench-kill-point {stage}\n".encode())
    kill, stop = os.environ.get("RRBENCH_TEST_KILL_AT"), os.environ.get("RRBENCH_TEST_STOP_AT")
    if not (kill or stop):
        return
    _COUNTS[stage] = _COUNTS.get(stage, 0) + 1
    for spec, sent in ((kill, signal.SIGKILL), (stop, signal.SIGSTOP)):
        name, _, number = (spec or "").partition(":")
        if name == stage and _COUNTS[stage] == int(number or 1):
            os.kill(os.getpid(), sent)
