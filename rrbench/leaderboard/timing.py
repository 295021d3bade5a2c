"""``rrbench leaderboard check --time``: the verifier re-measures each record's reranker pairs/s on its own machine.

A record's ``pairs_per_s`` is self-reported: measured on the submitter's hardware, under the submitter's load. The
verifier loads the record's reranker with the record's options (dtype, batch size, max length) and times it on the
first pairs of the record's task split (:mod:`rrbench.models.speed`, the same measurement as ``rrbench bench speed``).
Where the weights cannot be loaded here but the reranker is a zoo model, it times an architecture replica instead
(random weights: speed only; the entry says so).

The results go to a side file (``verifier-timings.json`` beside the records, or ``--timings FILE``), keyed by config
hash. The README board never reads it, so it stays a pure function of the records; the HTML board shows the measured
rate beside the claimed one, naming the machine it was measured on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rrbench.leaderboard.board import collect
from rrbench.models.architectures import ARCHITECTURES
from rrbench.models.factory import load_reranker
from rrbench.models.replica import load_replica
from rrbench.models.speed import describe_machine, machine, measure, task_pairs
from rrbench.util.errors import RRBenchError, UnknownComponentError, UsageError
from rrbench.util.io import atomic_write_text

TIMINGS_FILE = "verifier-timings.json"
DEFAULT_PAIRS = 64
#: record options that shape speed and are passed back to the loader (device is the verifier's own)
_SPEED_OPTIONS = ("batch_size", "dtype", "max_length", "instruction")


def default_timings_path(leaderboard_dir: str | Path) -> Path:
    return Path(leaderboard_dir) / TIMINGS_FILE


def _loader_options(reranker: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(reranker.get("options") or {})
    known = {k: options[k] for k in _SPEED_OPTIONS if options.get(k) is not None}
    extra = {k: v for k, v in options.items() if k not in (*_SPEED_OPTIONS, "model_path", "device",
                                                           "trust_remote_code") and v is not None}
    return {**known, **extra}


def load_for_timing(reranker: Mapping[str, Any], device: str | None = None) -> tuple[Any, str]:
    """The record's reranker with its options, from its weights when they load here (``"weights"``), else a replica
    of its zoo architecture (``"replica"``); a one-line error when neither is possible."""
    rid = str(reranker["id"])
    options = {**_loader_options(reranker), "device": device}
    weights = reranker.get("weights_path")
    path = str(weights) if weights and Path(str(weights)).exists() else None
    try:
        try:
            return load_reranker(rid, model_path=path, **options), "weights"
        except UnknownComponentError:
            if path is None:
                raise
            return load_reranker(path, **options), "weights"  # a local checkpoint (id local@<hash>)
    except RRBenchError as exc:
        if rid not in ARCHITECTURES:
            raise UsageError(f"cannot time reranker {rid}: its weights do not load here ({exc}) and it has no "
                             f"zoo architecture to replicate") from None
    return load_replica(rid, **options), "replica"


def time_record(record: Mapping[str, Any], pairs: int = DEFAULT_PAIRS, device: str | None = None) -> dict[str, Any] | None:
    """The verifier's timing of one record; None for records without a reranker (nothing to time)."""
    manifest = record["manifest"]
    reranker = (manifest.get("components") or {}).get("reranker")
    if not reranker:
        return None
    sample = task_pairs(manifest["task"]["id"], manifest["split"], pairs)
    model, kind = load_for_timing(reranker, device)
    result = measure(model, sample)
    info = machine()
    return {"config_hash": manifest["config_hash"], "reranker": reranker["id"], "kind": kind,
            "speed_only": kind == "replica", "claimed_pairs_per_s": manifest.get("pairs_per_s"),
            "measured_pairs_per_s": round(result.pairs_per_s, 3), "pairs": result.pairs,
            "tokens_per_pair": None if result.tokens_per_pair is None else round(result.tokens_per_pair, 1),
            "machine": describe_machine(info, device or "cpu"), "machine_info": info}


def time_leaderboard(leaderboard_dir: str | Path, pairs: int = DEFAULT_PAIRS, device: str | None = None,
                     path: str | Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """Time every published record that has a reranker; write the side file; returns (file, entries)."""
    entries = []
    cache: dict[str, dict[str, Any]] = {}
    for _, records in sorted(collect(leaderboard_dir).items()):
        for entry in records:
            manifest = entry.manifest
            reranker = (manifest.get("components") or {}).get("reranker")
            if not reranker:
                continue
            key = json.dumps([reranker["id"], _loader_options(reranker), manifest["task"]["id"], manifest["split"]],
                             sort_keys=True, default=str)
            if key not in cache:  # one measurement per (model, options, split), shared by its records
                timed = time_record(entry.record, pairs, device)
                if timed is None:
                    continue
                cache[key] = timed
            entries.append({**cache[key], "config_hash": manifest["config_hash"],
                            "claimed_pairs_per_s": manifest.get("pairs_per_s"), "record": entry.path.parent.name})
    target = Path(path) if path else default_timings_path(leaderboard_dir)
    atomic_write_text(target, json.dumps({"entries": entries}, indent=1, sort_keys=True, default=str) + "\n")
    return target, entries


def read_timings(path: str | Path) -> dict[str, dict[str, Any]]:
    """Config hash -> the verifier's timing; empty when the file does not exist."""
    file = Path(path)
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return {str(e["config_hash"]): e for e in data["entries"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{file}: not a verifier timings file ({exc})") from None


def measured_label(timing: Mapping[str, Any] | None) -> str:
    """What the HTML board prints beside the claimed rate."""
    if not timing:
        return ""
    speed_only = ", replica: speed only" if timing.get("speed_only") else ""
    return f"{float(timing['measured_pairs_per_s']):.1f} measured by the verifier on {timing['machine']}{speed_only}"
