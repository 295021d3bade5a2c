"""Result records: what a finished evaluation leaves behind and how to check one (re-running: ``reproduction``).

A record is the ``results.json`` of an output folder (with ``run.trec`` and ``qrels.trec`` beside it). It must be
reproducible from itself alone, so besides metrics and per-query values its manifest holds the exact command, the
full run configuration, the task's data hash, every component's revision, and, for an rrbench-trained checkpoint,
the weights' sha256 and the training manifest. :func:`check_record` lists everything wrong with a record; ``rrbench
publish`` and ``rrbench reproduce`` (``rrbench.leaderboard.reproduce``) build on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rrbench.models.checkpoint import CHECKPOINT_META
from rrbench.records.builder import SCHEMA_VERSION
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash, loads_strict_json, sha256_file
from rrbench.util.text import slug

RESULTS_FILE = "results.json"
RUN_FILE = "run.trec"
QRELS_FILE = "qrels.trec"

#: Metric keys every record carries (values may be null, e.g. a false-evidence rate without a threshold).
REQUIRED_METRICS = ("nDCG@10", "RR@10", "R@10", "false_evidence_rate")
#: Dotted manifest paths every record must have: what ties the numbers to data, code and configuration.
REQUIRED_MANIFEST = (
    "rrbench_version", "created", "task.id", "task.version", "task.data_sha256", "task.main_score", "split",
    "components", "threshold.value", "threshold.source", "config", "config_hash", "packages", "hardware",
    "wall_time_s", "command",
)
#: RunConfig fields that say where output goes or how it looks, not what is computed.
_NOT_REPRODUCED = {"output", "runs_dir", "show_progress", "cache_dir", "use_cache", "final"}


class RecordError(UsageError):
    """A record that is malformed, inconsistent or fails a publication check."""


# -- reading ---------------------------------------------------------------------------------------------------------
def loads_strict(text: str, where: str) -> Any:
    """Parse a record's JSON strictly (:func:`rrbench.util.io.loads_strict_json`); errors are RecordErrors."""
    return loads_strict_json(text, where, RecordError)


def record_path(path: str | Path) -> Path:
    """``results.json`` of an output folder (or the file itself)."""
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise RecordError(f"{path}: no {RESULTS_FILE} found (is this an rrbench output folder?)")
    return file


def load_record(path: str | Path) -> dict[str, Any]:
    """Load and strictly parse a record; raises :class:`RecordError` on malformed JSON."""
    file = record_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{file}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    record = loads_strict(text, str(file))
    if not isinstance(record, dict):
        raise RecordError(f"{file}: expected a JSON object at the top level")
    return record


def _dig(obj: Any, dotted: str) -> tuple[bool, Any]:
    for part in dotted.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return False, None
        obj = obj[part]
    return True, obj


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# -- checking --------------------------------------------------------------------------------------------------------
def check_record(record: Mapping[str, Any]) -> list[str]:
    """Everything wrong with a record's shape and internal consistency (an empty list means none)."""
    problems: list[str] = []
    version = record.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append("schema_version: missing or not an integer")
    elif version > SCHEMA_VERSION:
        problems.append(f"schema_version {version} is newer than this rrbench understands ({SCHEMA_VERSION})")
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping):
        problems.append("metrics: missing or not an object")
        metrics = {}
    for key in REQUIRED_METRICS:
        if key not in metrics:
            problems.append(f"metrics.{key}: missing")
    for key, value in metrics.items():
        if value is not None and not _is_number(value):
            problems.append(f"metrics.{key}: {value!r} is not a finite number or null")
    per_query = record.get("per_query")
    if not isinstance(per_query, Mapping) or not per_query:
        problems.append("per_query: missing, empty or not an object")
        per_query = {}
    manifest = record.get("manifest")
    if not isinstance(manifest, Mapping):
        problems.append("manifest: missing or not an object")
        manifest = {}
    for dotted in REQUIRED_MANIFEST:
        present, value = _dig(manifest, dotted)
        if not present or (value is None and dotted not in ("threshold.value",)):
            problems.append(f"manifest.{dotted}: missing")
    if isinstance(manifest.get("command"), str) and not manifest["command"].startswith("rrbench "):
        problems.append("manifest.command: not an rrbench command")
    problems += _check_aggregates(metrics, per_query)
    checkpoint = manifest.get("checkpoint") if isinstance(manifest.get("checkpoint"), Mapping) else None
    if checkpoint is not None:
        for key in ("weights_sha256", "training_manifest"):
            if not checkpoint.get(key):
                problems.append(f"manifest.checkpoint.{key}: missing (rrbench-trained checkpoints must carry it)")
        if checkpoint.get("declared_weights_sha256") and checkpoint.get("matches_declared") is False:
            problems.append("manifest.checkpoint: weights on disk do not match the sha256 their manifest declares")
    return problems


def _check_aggregates(metrics: Mapping[str, Any], per_query: Mapping[str, Any]) -> list[str]:
    """Summary metrics must be the means of the per-query values (catches a hand-edited headline number)."""
    problems = []
    columns: dict[str, list[float]] = {}
    for query_id, values in per_query.items():
        if not isinstance(values, Mapping):
            problems.append(f"per_query.{query_id}: not an object")
            continue
        for key, value in values.items():
            if not _is_number(value):
                problems.append(f"per_query.{query_id}.{key}: {value!r} is not a finite number")
                continue
            columns.setdefault(key, []).append(float(value))
    aliases = {"false_evidence": "false_evidence_rate"}
    for key, values in columns.items():
        name = aliases.get(key, key)
        if name not in metrics or (metrics[name] is not None and not _is_number(metrics[name])):
            continue  # absent, or already reported as malformed
        expected = math.fsum(values) / len(values)
        actual = metrics[name]
        if actual is None or abs(float(actual) - expected) > 1e-9:
            problems.append(f"metrics.{name} = {actual!r} is not the mean of its per-query values ({expected!r})")
    return problems


def require_valid(record: Mapping[str, Any], where: str) -> None:
    problems = check_record(record)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecordError(f"{where}: {problems[0]}{more}")


# -- writing helpers used by the runner ------------------------------------------------------------------------------
def run_config_dict(config: Any) -> dict[str, Any]:
    """The RunConfig fields that determine a result (``rrbench reproduce`` rebuilds the config from these)."""
    return {k: v for k, v in asdict(config).items() if k not in _NOT_REPRODUCED}


def checkpoint_info(weights_path: str | None) -> dict[str, Any] | None:
    """For an rrbench-trained checkpoint (a folder with ``rrbench_model.json``): weights sha256 + training manifest.

    The sha256 is recomputed from the files on disk, never copied from the folder's own claim, so a record cannot
    name weights it was not produced with; ``matches_declared`` says whether the two agree.
    """

    if not weights_path:
        return None
    folder = Path(weights_path)
    meta_file = folder / CHECKPOINT_META
    if not meta_file.is_file():
        return None
    meta = loads_strict(meta_file.read_text(encoding="utf-8"), str(meta_file))
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt")
                   and p.name not in ("training_args.bin", "optimizer.pt", "scheduler.pt"))
    per_file = {p.name: sha256_file(p) for p in files}
    weights_sha: str | None
    if len(per_file) == 1:
        weights_sha = next(iter(per_file.values()))
    else:
        weights_sha = canonical_hash(per_file) if per_file else None
    declared = meta.get("weights_sha256") if isinstance(meta, Mapping) else None
    training = None
    if isinstance(meta, Mapping):
        training = meta.get("training_manifest") or meta.get("training") or meta.get("manifest") or dict(meta)
    return {"path": str(folder), "weights_sha256": weights_sha, "weight_files": per_file,
            "declared_weights_sha256": declared,
            "matches_declared": None if declared is None else declared in (weights_sha, *per_file.values()),
            "training_manifest": training}


# -- comparing a re-run (rrbench.leaderboard.reproduce) -------------------------------------------------------------------------
def compare_metrics(old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float) -> list[dict[str, Any]]:
    """Rows ``{metric, recorded, reproduced, delta, ok}`` for every metric of the recorded run."""
    rows = []
    for key, recorded in old.items():
        value = new.get(key)
        if recorded is None or value is None:
            ok = recorded is None and value is None
            delta = None
        else:
            delta = float(value) - float(recorded)
            ok = abs(delta) <= tolerance
        rows.append({"metric": key, "recorded": recorded, "reproduced": value, "delta": delta, "ok": ok})
    return rows


def compare_fields(old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float) -> list[dict[str, Any]]:
    """Rows ``{field, recorded, reproduced, ok, decides}`` beyond the aggregate metrics.

    Per-query values and the query set decide whether a record reproduces; the config hash and the system name are
    reported (they change legitimately when rrbench changes what it hashes, e.g. a path replaced by a weights hash).
    """
    old_pq, new_pq = old["per_query"], new["per_query"]
    differing = 0
    for query_id, values in old_pq.items():
        fresh = new_pq.get(query_id)
        if not isinstance(fresh, Mapping) or set(fresh) != set(values) or any(
                abs(float(fresh[k]) - float(v)) > tolerance for k, v in values.items()):
            differing += 1
    om, nm = old["manifest"], new["manifest"]
    return [
        {"field": "per_query", "recorded": f"{len(old_pq)} queries", "decides": True, "ok": differing == 0
         and set(old_pq) == set(new_pq), "reproduced": f"{len(new_pq)} queries, {differing} differ"},
        {"field": "manifest.config_hash", "recorded": str(om.get("config_hash"))[:12],
         "reproduced": str(nm.get("config_hash"))[:12], "ok": om.get("config_hash") == nm.get("config_hash"),
         "decides": False},
        {"field": "system", "recorded": system_identity(om), "reproduced": system_identity(nm),
         "ok": system_identity(om) == system_identity(nm), "decides": False},
    ]


def _is_local_path(name: str, component: Mapping[str, Any]) -> bool:
    """Whether a component id is really a local path (an ad-hoc ``--reranker ./folder``), never shown as a name."""
    if component.get("weights_source") != "local-path":
        return False
    where = str(component.get("weights_path") or (component.get("options") or {}).get("model_path") or "")
    name = name.rstrip("/")
    return "/" in name or "\\" in name or (bool(where) and where.rstrip("/").endswith(name))


def hashed_reranker_id(spec_id: str, component: Mapping[str, Any], checkpoint: Mapping[str, Any] | None,
                       fingerprint: str) -> str:
    """The reranker id that goes into the hashed configuration: never a local path, so hashes are machine-free.

    A registered or hub id stays as it is; an rrbench-trained checkpoint is ``checkpoint@<weights sha256[:16]>``;
    any other local model ``local@<fingerprint[:16]>`` (the fingerprint hashes the weight files' contents).
    """
    if isinstance(checkpoint, Mapping) and checkpoint.get("weights_sha256"):
        return f"checkpoint@{str(checkpoint['weights_sha256'])[:16]}"
    if _is_local_path(spec_id, component):
        return f"local@{fingerprint[:16]}"
    return spec_id


def _reranker_identity(config: Mapping[str, Any], component: Mapping[str, Any],
                       checkpoint: Mapping[str, Any] | None) -> str:
    if isinstance(checkpoint, Mapping) and checkpoint.get("weights_sha256"):
        training = checkpoint.get("training_manifest") or {}
        base = training.get("base_model") or {}
        base_name = base.get("hub_id") or (None if base.get("weights_source") == "local-path" else base.get("base"))
        parts = [p for p in (base_name, training.get("regime"), training.get("loss")) if p]
        return f"trained:{'/'.join(str(p) for p in parts) or 'checkpoint'}@{str(checkpoint['weights_sha256'])[:8]}"
    name = str(config.get("id") or component.get("id") or "?")
    if name.startswith("local@"):
        return f"local-model@{name[len('local@'):][:8]}"
    if _is_local_path(name, component):
        digest = str(config.get("fingerprint") or config.get("revision") or component.get("revision") or "")
        return f"local-model@{digest[:8] or 'unknown'}"
    return name


def system_identity(manifest: Mapping[str, Any]) -> str:
    """The name of what produced a record, derived from its hashed configuration, never from free text or a path.

    ``retriever → reranker`` (or ``retriever (no reranker)``); an rrbench-trained checkpoint is
    ``trained:<base>/<regime>/<loss>@<weights sha256[:8]>``, another local model ``local-model@<fingerprint[:8]>``;
    an outside run scored with ``rrbench evaluate`` is ``run <tag>@<run sha256[:8]>``. The leaderboard folder of a
    record is this name (slugged) plus the config hash, so two systems can never share a folder.
    """
    config: Mapping[str, Any] = _mapping(manifest.get("config"))
    comps: Mapping[str, Any] = _mapping(manifest.get("components"))
    if manifest.get("kind") == "evaluate":
        run = comps.get("run") or {}
        tags = run.get("tags") or ["?"]
        return f"run {tags[0]}@{str(config.get('run_sha256') or '')[:8]}"
    retriever_cfg, retriever = _mapping(config.get("retriever")), _mapping(comps.get("retriever"))
    retr = str(retriever_cfg.get("id") or retriever.get("id") or "?")
    if _is_local_path(retr, retriever):
        retr = f"local-retriever@{str(retriever_cfg.get('revision') or '')[:8] or 'unknown'}"
    reranker_cfg = config.get("reranker")
    if not reranker_cfg:
        return f"{retr} (no reranker)"
    reranker = _mapping(comps.get("reranker"))
    name = _reranker_identity(_mapping(reranker_cfg), reranker, manifest.get("checkpoint"))
    members = config.get("ensemble_members")
    if isinstance(members, list) and len(members) > 1:  # an ensemble: every member, in order
        described = comps.get("ensemble") if isinstance(comps.get("ensemble"), list) else []
        name = " + ".join([name] + [_reranker_identity(_mapping(m), _mapping(d), None)
                                    for m, d in zip(members[1:], (described or [{}] * len(members))[1:], strict=True)])
    interpolate = _mapping(config.get("interpolate"))
    if interpolate.get("beta"):
        name += f" + {retr} (beta {float(interpolate['beta']):g})"
    decision = [str(_mapping(config.get("calibrator")).get("id") or ""), str(config.get("abstain") or "")]
    if any(decision):
        name += " [" + ", ".join(d for d in decision if d) + "]"
    return f"{retr} → {name}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def system_slug(identity: str) -> str:
    """A folder-safe form of :func:`system_identity` (``bm25 → minilm-l6`` becomes ``bm25-to-minilm-l6``)."""
    text = identity.replace("→", "to").replace("@", "-").replace(":", "-")
    return slug(text).lower()[:80] or "record"


def record_folder_name(manifest: Mapping[str, Any]) -> str:
    """``<system slug>-<config hash[:8]>``: the only name a published record's folder may have."""
    return f"{system_slug(system_identity(manifest))}-{str(manifest.get('config_hash', ''))[:8]}"


def ensure_record_dir(path: str | Path) -> Path:
    file = record_path(path)
    if not (file.parent / RUN_FILE).is_file():
        raise RecordError(f"{file.parent}: {RUN_FILE} is missing beside {RESULTS_FILE}")
    return file.parent


__all__ = [
    "QRELS_FILE",
    "RESULTS_FILE",
    "RUN_FILE",
    "SCHEMA_VERSION",
    "RecordError",
    "check_record",
    "checkpoint_info",
    "compare_metrics",
    "hashed_reranker_id",
    "load_record",
    "loads_strict",
    "record_folder_name",
    "require_valid",
    "run_config_dict",
    "system_identity",
    "system_slug",
]

