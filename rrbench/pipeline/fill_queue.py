"""The fill queue: missing scores cut into units that any number of workers, on any machines, lease and score.

Scoring is the expensive part of everything rrbench does, and the score store is what workers share, so the store
also holds the work: ``rrbench sweep fill`` (and a run's inline scoring on a shared store) cuts the pairs it needs
into units, a block of consecutive queries of one split (queries come ordered by post) for one model fingerprint,
and registers them. Then every worker, however many were started and wherever, loops:

1. **claim** one pending unit, or one whose lease has expired, in a short transaction (PostgreSQL:
   ``SELECT ... FOR UPDATE SKIP LOCKED`` then an update that sets the lease, timed by the database's ``now()``);
2. **score** the unit's pairs that are not stored yet, holding no lock, while a heartbeat thread extends the lease;
3. **complete**: write the scores and mark the unit done in one transaction.

A worker killed with SIGKILL loses at most its unit: its lease runs out and another worker takes the unit over. A
unit is addressed by its content (the model and its sorted pair keys), so two commands needing the same pairs share
units instead of scoring them twice; the pairs themselves are never stored twice (:mod:`rrbench.pipeline.score_store`).
When no unit can be claimed but some are leased by others, a worker waits for them (or for their leases to expire)
before it returns: after it returns, every pair it was given is in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from rrbench.pipeline.score_store import ScoreStore, Unit, pair_key
from rrbench.util.env import positive_env_number
from rrbench.util.errors import UsageError
from rrbench.util.faults import kill_point

#: Pairs per unit: what a killed worker can lose, and the grain at which workers share the work.
DEFAULT_UNIT_PAIRS = 2048
#: Seconds a lease lasts without a heartbeat (``$RRBENCH_FILL_LEASE``; tests shorten it). The heartbeat runs every
#: quarter of it, so a worker must stall for three heartbeats before its unit is taken over.
DEFAULT_LEASE_S = 120.0


def default_unit_pairs() -> int:
    """:data:`DEFAULT_UNIT_PAIRS`, or ``$RRBENCH_FILL_UNIT_PAIRS`` (the grain of a run's inline fill on a shared
    store, which has no ``--unit-pairs`` option)."""
    return int(positive_env_number("RRBENCH_FILL_UNIT_PAIRS", DEFAULT_UNIT_PAIRS, whole=True))


def lease_seconds() -> float:
    """The lease of :data:`DEFAULT_LEASE_S`, or ``$RRBENCH_FILL_LEASE``."""
    return positive_env_number("RRBENCH_FILL_LEASE", DEFAULT_LEASE_S, whole=False, unit="seconds")


@dataclass
class PlannedUnit:
    """A unit and what it holds: its pair keys and texts (known to every worker that planned the same pairs)."""

    unit: Unit
    keys: list[bytes]
    pairs: list[tuple[str, str]]


def unit_key(fingerprint: str, keys: Sequence[bytes]) -> bytes:
    """A unit's address: the model fingerprint and its sorted pair keys (order and labels do not matter)."""
    digest = hashlib.sha256(b"rrbench-fill-unit\n" + fingerprint.encode("utf-8") + b"\n")
    for key in sorted(keys):
        digest.update(key)
    return digest.digest()[:16]


def plan_units(fingerprint: str, mid: int, task: str, split: str, groups: Sequence[Sequence[tuple[str, str]]],
               unit_pairs: int | None = None) -> list[PlannedUnit]:
    """Cut ``groups`` (each query's ``(query, candidate)`` texts, queries in post order) into units of about
    ``unit_pairs`` pairs (default :func:`default_unit_pairs`); a query is never split, and a pair already planned is
    not planned again."""
    if unit_pairs is None:
        unit_pairs = default_unit_pairs()
    if unit_pairs < 1:
        raise UsageError(f"--unit-pairs must be >= 1, got {unit_pairs}")
    planned: list[PlannedUnit] = []
    seen: set[bytes] = set()
    keys: list[bytes] = []
    pairs: list[tuple[str, str]] = []

    def flush() -> None:
        if keys:
            unit = Unit(unit_key(fingerprint, keys), mid, task, split, len(keys))
            planned.append(PlannedUnit(unit, list(keys), list(pairs)))
            keys.clear()
            pairs.clear()

    for group in groups:
        for query, document in group:
            key = pair_key(query, document)
            if key not in seen:
                seen.add(key)
                keys.append(key)
                pairs.append((query, document))
        if len(keys) >= unit_pairs:
            flush()
    flush()
    return planned


@dataclass
class FillReport:
    """What one worker did: units it completed, pairs it sent to the model, model seconds, seconds spent waiting."""

    units: int = 0
    scored: int = 0
    seconds: float = 0.0
    waited_s: float = 0.0
    duplicate: int = 0
    lost_leases: list[bytes] = field(default_factory=list)


class _Heartbeat:
    """A thread that extends the lease of the unit being scored, on its own connection to the store."""

    def __init__(self, store: ScoreStore, lease_s: float) -> None:
        self._twin = store.reopen()
        self._lease_s = lease_s
        self._unit: bytes | None = None
        self._stop = threading.Event()
        self.lost: list[bytes] = []
        self._thread = threading.Thread(target=self._run, name="rrbench-fill-heartbeat", daemon=True)

    def watch(self, unit: bytes | None) -> None:
        self._unit = unit

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 4):
            unit = self._unit
            if unit is None:
                continue
            try:
                if not self._twin.extend_lease(unit, self._lease_s):
                    self.lost.append(unit)
            except Exception:  # the worker's own next transaction reports a lost database
                continue

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):  # closing a connection the database already dropped
            self._twin.close()


def work_queue(store: ScoreStore, mid: int, planned: Sequence[PlannedUnit],
               score: Callable[[list[str], list[str]], np.ndarray], tolerance: float, batch_pairs: int = 256,
               on_scored: Callable[[int], None] | None = None, lease_s: float | None = None,
               poll_s: float | None = None) -> FillReport:
    """Register ``planned`` and work on it with the others until every unit of it is done; see the module doc.

    ``score`` maps query and candidate texts to scores (the model, checked); it is called ``batch_pairs`` pairs at a
    time and ``on_scored`` is told how many each call scored (a progress bar).
    """
    lease = lease_seconds() if lease_s is None else lease_s
    wait = min(2.0, lease / 4) if poll_s is None else poll_s
    by_key = {p.unit.key: p for p in planned}
    keys = list(by_key)
    report = FillReport()
    if not keys:
        return report
    store.register_units([p.unit for p in planned])
    with _Heartbeat(store, lease) as beat:
        while True:
            claimed = store.claim_unit(keys, lease)
            if claimed is None:
                if store.open_units(keys) == 0:
                    break
                time.sleep(wait)  # others hold the rest: wait for them to finish, or for their leases to expire
                report.waited_s += wait
                continue
            beat.watch(claimed)
            plan = by_key[claimed]
            stored = store.get_pairs(mid, plan.keys)
            todo = [i for i, key in enumerate(plan.keys) if key not in stored]
            started = time.perf_counter()
            fresh: list[float] = []
            for start in range(0, len(todo), batch_pairs):
                part = todo[start:start + batch_pairs]
                fresh.extend(float(s) for s in score([plan.pairs[i][0] for i in part],
                                                     [plan.pairs[i][1] for i in part]))
                if on_scored is not None:
                    on_scored(len(part))
            seconds = time.perf_counter() - started
            kill_point("fill-unit")  # scored, not yet written: the worst moment to die
            items = [(plan.keys[i], s) for i, s in zip(todo, fresh, strict=True)]
            counts = store.complete_unit(claimed, mid, items, tolerance, seconds)
            beat.watch(None)
            report.units += 1
            report.scored += len(todo)
            report.seconds += seconds
            report.duplicate += counts.duplicate
    report.lost_leases = list(beat.lost)
    return report
