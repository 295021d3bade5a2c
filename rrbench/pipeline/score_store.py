"""What a score store is, whatever holds it: the interface the score cache, the fill queue and score bundles use.

Two stores implement it: a SQLite file on this machine (:mod:`rrbench.pipeline.score_store_sqlite`, the default) and
a PostgreSQL database that many machines share (:mod:`rrbench.pipeline.score_store_pg`). Callers never ask which
one they hold, except through :attr:`ScoreStore.shared`: a shared store is written by other processes while this one
works, so inline scoring goes through its fill queue (:mod:`rrbench.pipeline.fill_queue`) instead of racing them.

Both stores keep the same rows: models by fingerprint, pair scores and listwise groups by key, fill units with
their leases, per-worker counters and the score bundles imported into them. A pair is stored once. A second write
of a stored pair (two workers, a bundle imported over computed scores) is compared within the model's dtype
tolerance: batch composition, thread counts and devices change a score's last bits but never more, so a
disagreement means two different models share a fingerprint, or a model is not deterministic, and the write is
refused with :class:`ScoreConflictError` instead of silently keeping either value.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.util.errors import RRBenchError

KEY_BYTES = 16  # truncated sha256: a collision needs ~2^64 distinct pairs under one model


def pair_key(query: str, document: str) -> bytes:
    """Key of one (query, candidate) pair: length-prefixed so no two different pairs share a byte string."""
    digest = hashlib.sha256()
    for text in (query, document):
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.digest()[:KEY_BYTES]


def list_key(query: str, documents: Sequence[str]) -> bytes:
    """Key of a listwise group: the query and every candidate *in order* (neighbours change listwise scores)."""
    text = json.dumps([query, list(documents)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


#: Relative and absolute tolerance (each) within which two scores of one pair under one fingerprint must agree.
#: float32 differs in the last bits with batch composition and threads; half precision and int8 (dynamic
#: quantisation scales follow the batch) by more. Anything unknown is held to float32's.
TOLERANCES = {"float32": 1e-4, "float64": 1e-9, "float16": 1e-2, "bfloat16": 3e-2, "int8": 5e-2}


def score_tolerance(dtype: object) -> float:
    """The tolerance of :data:`TOLERANCES` for a model's dtype."""
    return TOLERANCES.get(str(dtype or "float32").lower(), TOLERANCES["float32"])


class ScoreConflictError(RRBenchError):
    """A second write of a stored pair disagrees beyond the dtype's tolerance (exit 1): refused, nothing written."""


def agreement(stored: Mapping[bytes, float], fresh: Mapping[bytes, float], tolerance: float) -> tuple[int, float]:
    """``(disagreeing pairs, largest difference)`` between stored scores and new ones for the same keys."""
    bad, worst = 0, 0.0
    for key, old in stored.items():
        new = fresh[key]
        diff = abs(new - old)
        if not (diff <= tolerance + tolerance * abs(old)) or math.isnan(diff):
            bad += 1
            worst = max(worst, diff) if not math.isnan(diff) else math.inf
    return bad, worst


def refuse_conflict(where: str, model: str, bad: int, checked: int, worst: float, tolerance: float) -> None:
    """Raise the one-line :class:`ScoreConflictError` for ``bad`` disagreeing pairs."""
    raise ScoreConflictError(
        f"score store {where}: {bad} of {checked} already stored scores of model {model} disagree with the new ones "
        f"(largest difference {worst:.3g}, tolerance {tolerance:g}); two different models share this fingerprint or "
        f"the model is not deterministic; nothing was written (clear it with `rrbench cache clear --model ...`)")


_WORKER_NAMES: dict[int, str] = {}


def worker_name() -> str:
    """This process's name in a store's worker table: host, pid and a random tag (pids are reused). One name per
    process, so every store it opens counts into the same row."""
    pid = os.getpid()
    if pid not in _WORKER_NAMES:  # keyed by pid: a forked child names itself anew
        _WORKER_NAMES[pid] = f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}"
    return _WORKER_NAMES[pid]


def worker_row(row: Sequence[Any]) -> dict[str, Any]:
    """One row of a worker table as a dict, with its throughput (pairs the model scored per second of model time)."""
    worker, label, host, pid, units, scored, new, duplicate, seconds, started, last_seen = row
    return {"worker": worker, "label": label, "host": host, "pid": int(pid), "units": int(units),
            "pairs_scored": int(scored), "pairs_new": int(new), "pairs_duplicate": int(duplicate),
            "seconds": round(float(seconds), 3),
            "pairs_per_s": round(scored / seconds, 2) if seconds and scored else None,
            "started": float(started), "last_seen": float(last_seen)}


@dataclass(frozen=True)
class Unit:
    """One unit of fill work: a block of pairs of one split for one model, addressed by its content.

    ``key`` hashes the model and the sorted pair keys, so two commands that need the same pairs (two matrix workers
    evaluating one cell, a sweep fill started on ten machines) share the unit instead of scoring it twice.
    """

    key: bytes
    mid: int
    task: str
    split: str
    pairs: int


@dataclass
class WriteCounts:
    """What one write did: pairs sent to the model, pairs new to the store, pairs already there (and agreeing)."""

    scored: int = 0
    new: int = 0
    duplicate: int = 0


class ScoreStore(ABC):
    """The rows every score store keeps, and the operations on them. Cheap to open; one connection per instance:
    never share an instance between processes, and between threads only as :meth:`reopen` copies."""

    #: True when other processes, possibly on other machines, write the same store while this one works.
    shared: bool = False
    #: This process's name in the worker table (:func:`worker_name`); a :meth:`reopen` copy keeps it.
    worker: str = ""

    # -- identity --------------------------------------------------------------------------------------------------
    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store is, for messages and records (a database URL without its password)."""

    @abstractmethod
    def reopen(self) -> ScoreStore:
        """A second connection to the same store (the fill queue's heartbeat thread uses one)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- models ----------------------------------------------------------------------------------------------------
    @abstractmethod
    def model_id(self, fingerprint: str, model_id: str, info: dict[str, Any]) -> int:
        """The integer handle of a model fingerprint, registering it on first use."""

    @abstractmethod
    def find_model(self, fingerprint: str) -> tuple[int, str, dict[str, Any]] | None:
        """``(handle, model id, fingerprint info)`` of a registered fingerprint, or None."""

    @abstractmethod
    def list_models(self) -> list[tuple[int, str, str, dict[str, Any]]]:
        """``(handle, fingerprint, model id, fingerprint info)`` of every registered model."""

    @abstractmethod
    def file_sha256(self, path: Path) -> str:
        """sha256 of a local file through this machine's digest memo (always local, whatever the store)."""

    # -- pair scores -----------------------------------------------------------------------------------------------
    @abstractmethod
    def get_pairs(self, mid: int, keys: Sequence[bytes]) -> dict[bytes, float]:
        """Stored scores of ``keys`` (missing keys are absent); one query per batch of keys, not one per key."""

    @abstractmethod
    def put_pairs(self, mid: int, items: Iterable[tuple[bytes, float]], tolerance: float | None = None,
                  seconds: float = 0.0, computed: bool = True) -> WriteCounts:
        """Store new scores in one transaction; stored ones are compared within ``tolerance`` (default float32's)
        and a disagreement is refused (:class:`ScoreConflictError`). ``seconds`` (model time) and ``computed``
        (the scores came from a model, not a bundle) feed the worker counters once :meth:`start_worker` ran."""

    @abstractmethod
    def get_list(self, mid: int, key: bytes) -> np.ndarray | None: ...

    @abstractmethod
    def put_list(self, mid: int, key: bytes, scores: np.ndarray) -> None: ...

    # -- the fill queue --------------------------------------------------------------------------------------------
    @abstractmethod
    def register_units(self, units: Sequence[Unit]) -> None:
        """Add units not yet known (a known unit keeps its state: done stays done)."""

    @abstractmethod
    def claim_unit(self, keys: Sequence[bytes], lease_s: float) -> bytes | None:
        """Lease one pending (or lease-expired) unit among ``keys`` to this worker in one short transaction."""

    @abstractmethod
    def extend_lease(self, unit: bytes, lease_s: float) -> bool:
        """The heartbeat: push this worker's lease on ``unit`` ``lease_s`` seconds ahead; False if it lost it."""

    @abstractmethod
    def complete_unit(self, unit: bytes, mid: int, items: Sequence[tuple[bytes, float]], tolerance: float,
                      seconds: float) -> WriteCounts:
        """Write a unit's scores and mark it done, in one transaction (nothing of it when that fails)."""

    @abstractmethod
    def open_units(self, keys: Sequence[bytes]) -> int:
        """How many of ``keys`` are not done yet (pending or leased)."""

    @abstractmethod
    def start_worker(self, label: str) -> None:
        """Register this process in the worker table under ``label`` (a fill, a matrix); its writes count from here
        on (pairs scored, new, duplicate; units; model seconds), so a report can show each pair was scored once."""

    @abstractmethod
    def worker_rows(self, label: str | None = None) -> list[dict[str, Any]]:
        """Per worker: label, host, pid, units, pairs scored / new / duplicate, model seconds, pairs/s."""

    # -- score bundles ---------------------------------------------------------------------------------------------
    @abstractmethod
    def record_bundle(self, content_hash: str, mid: int, task: str, data_sha256: str, split: str, context: int,
                      pairs: int) -> None:
        """Remember that a bundle was imported (records that read its scores name it as provenance)."""

    @abstractmethod
    def bundles_for(self, mids: Sequence[int], data_sha256: str, splits: Sequence[str], context: int) -> list[str]:
        """Content hashes of the bundles imported for these models on this task data, splits and context."""

    # -- maintenance -----------------------------------------------------------------------------------------------
    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Per model: id, fingerprint, stored pairs and groups; the store's size; fill units and workers."""

    @abstractmethod
    def clear(self, model: str | None = None) -> int:
        """Delete every score, or those of one model id / fingerprint prefix; returns rows deleted."""
