"""A record folder on disk: the one writer and the one reader of ``results.json`` and its evidence files.

A record folder holds ``results.json`` (the typed record, :mod:`rrbench.records.schema`), ``scores.jsonl.gz``
(every stage's raw scores: the evidence), ``calibration_scores.jsonl.gz`` when the decision was fitted on another
split, ``run.trec`` (the final ranking, for trec_eval) and ``qrels.trec``. Everything is written into a temporary
folder and renamed into place, so an interrupted run leaves nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rrbench.models.checkpoint import CHECKPOINT_META
from rrbench.records.evidence import Evidence, write_evidence
from rrbench.records.schema import (
    CALIBRATION_SCORES_FILE,
    QRELS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    SCORES_FILE,
    Record,
    RecordError,
    parse_record,
)
from rrbench.util.io import atomic_dir, atomic_write_text, canonical_hash, loads_strict_json, sha256_file
from rrbench.util.io import strict_json_dumps as _dumps

__all__ = ["CALIBRATION_SCORES_FILE", "QRELS_FILE", "RESULTS_FILE", "RUN_FILE", "SCORES_FILE", "RecordError",
           "checkpoint_info", "load_record", "read_record_json", "record_digest", "record_path", "write_record_folder"]


def record_path(path: str | Path) -> Path:
    """``results.json`` of a record folder (or the file itself)."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise RecordError(f"{path}: no {RESULTS_FILE} found (is this an rrbench output folder?)")
    return file


def read_record_json(path: str | Path) -> Any:
    """The parsed JSON of ``results.json``, strictly (no NaN, no duplicate keys, bounded depth)."""
    file = record_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{file}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return loads_strict_json(text, str(file), RecordError)


def load_record(path: str | Path) -> Record:
    """The typed record of a folder; any malformed or unknown field is one :class:`RecordError`."""
    file = record_path(path)
    return parse_record(read_record_json(file), str(file))


def record_digest(record: Record | Mapping[str, Any]) -> str:
    """sha256 of a record without its test ledger line: what the ledger line itself names (``results_sha256``)."""
    body = record.as_json() if isinstance(record, Record) else dict(record)
    provenance = dict(body.get("provenance") or {})
    provenance.pop("test_split", None)
    return canonical_hash({**body, "provenance": provenance})


def write_record_folder(out_dir: Path, record: Record, run_lines: Sequence[str], qrels_lines: Sequence[str],
                        evidence: Evidence, calibration: Evidence | None = None) -> None:
    """Write every file of a record folder atomically (the folder appears complete or not at all)."""
    with atomic_dir(out_dir) as tmp:
        write_evidence(tmp / SCORES_FILE, evidence)
        if calibration is not None:
            write_evidence(tmp / CALIBRATION_SCORES_FILE, calibration)
        atomic_write_text(tmp / RUN_FILE, "\n".join(run_lines) + ("\n" if run_lines else ""))
        atomic_write_text(tmp / QRELS_FILE, "\n".join(qrels_lines) + ("\n" if qrels_lines else ""))
        atomic_write_text(tmp / RESULTS_FILE, _dumps(record.as_json()))


def checkpoint_info(weights_path: str | None) -> dict[str, Any] | None:
    """For an rrbench-trained checkpoint (a folder with ``rrbench_model.json``): weights sha256 + training manifest.

    The sha256 is recomputed from the files on disk, never copied from the folder's own claim; a folder whose files
    do not match what its manifest declares is refused.
    """
    if not weights_path:
        return None
    folder = Path(weights_path)
    meta_file = folder / CHECKPOINT_META
    if not meta_file.is_file():
        return None
    meta = loads_strict_json(meta_file.read_text(encoding="utf-8"), str(meta_file), RecordError)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt")
                   and p.name not in ("training_args.bin", "optimizer.pt", "scheduler.pt"))
    per_file = {p.name: sha256_file(p) for p in files}
    if len(per_file) == 1:
        weights_sha: str | None = next(iter(per_file.values()))
    else:
        weights_sha = canonical_hash(per_file) if per_file else None
    declared = meta.get("weights_sha256") if isinstance(meta, Mapping) else None
    if declared is not None and declared not in (weights_sha, *per_file.values()):
        raise RecordError(f"{meta_file}: the weights on disk are not those its manifest declares "
                          f"({str(declared)[:12]}...)")
    training = meta.get("training") if isinstance(meta, Mapping) else None
    return {"weights_sha256": weights_sha, "training_manifest": dict(training or {})}
