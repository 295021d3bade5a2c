"""A record is what it claims: the checks ``rrbench publish`` and ``rrbench leaderboard check`` make.

Nothing a record says about its results is taken on trust. From the record's own ``run.trec`` and the task's hashed
files (never the record's copy of the qrels) every per-query value and every aggregate is recomputed; the config hash
is recomputed from ``manifest.config``; the task hash is compared with the registered task's; the components must
agree with the hashed config; the system's name is derived from that config (:func:`rrbench.records.record.system_identity`),
and a published record's folder must be exactly that name plus the hash. The first mismatch is refused with one line
naming the field, so a reviewer sees what was altered.

A board whose task version has since been bumped is *superseded*: its records stay readable, but the task data they
were made on is gone, so they are checked for internal consistency (hashes, aggregates, file sums) only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rrbench.components.registry import get_registry
from rrbench.leaderboard.outside_runs import score_run
from rrbench.records import ledger as test_ledger
from rrbench.records.builder import config_hash
from rrbench.records.record import (
    RESULTS_FILE,
    RUN_FILE,
    RecordError,
    ensure_record_dir,
    load_record,
    record_folder_name,
    require_valid,
)
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_write_text, sha256_file

METRIC_TOLERANCE = 1e-9
SUMS_FILE = "SHA256SUMS"
#: splits whose records need an entry in the test ledger (rrbench.records.ledger): the test split is one-time per configuration
LEDGER_SPLITS = ("test",)
LEDGER_FILE = "test-ledger.jsonl"


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=METRIC_TOLERANCE)


def _fail(file: Path, field: str, message: str) -> RecordError:
    return RecordError(f"{file}: {field}: {message}")


def check_config_hash(manifest: Mapping[str, Any], file: Path) -> None:
    fresh = config_hash(manifest["config"])  # the builder's own rule, the only one
    if manifest["config_hash"] != fresh:
        raise _fail(file, "manifest.config_hash", f"{str(manifest['config_hash'])[:12]}... is not the hash of "
                    f"manifest.config ({fresh[:12]}...): the configuration or its hash was edited")


def check_components(manifest: Mapping[str, Any], file: Path, folder: Path) -> None:
    """``manifest.components`` (and the other descriptive fields) must agree with the hashed ``manifest.config``."""
    config, comps = manifest["config"], manifest["components"]
    if not isinstance(config, Mapping) or not isinstance(comps, Mapping):
        raise _fail(file, "manifest.config", "not an object")
    task = config.get("task") or {}
    for key in ("id", "version", "data_sha256"):
        if task.get(key) != manifest["task"].get(key):
            raise _fail(file, f"manifest.task.{key}", f"{manifest['task'].get(key)!r} disagrees with "
                        f"manifest.config.task.{key} {task.get(key)!r}")
    if config.get("split") != manifest["split"]:
        raise _fail(file, "manifest.split", f"{manifest['split']!r} disagrees with manifest.config.split "
                    f"{config.get('split')!r}")
    if not _close(config.get("threshold"), manifest["threshold"]["value"]):
        raise _fail(file, "manifest.threshold.value", f"{manifest['threshold']['value']!r} disagrees with "
                    f"manifest.config.threshold {config.get('threshold')!r}")
    if manifest.get("kind") == "evaluate":
        run = comps.get("run") or {}
        actual = sha256_file(folder / RUN_FILE)
        for field, value in (("manifest.config.run_sha256", config.get("run_sha256")),
                             ("manifest.components.run.sha256", run.get("sha256"))):
            if value != actual:
                raise _fail(file, field, f"{str(value)[:12]}... is not the sha256 of {RUN_FILE} ({actual[:12]}...)")
        return
    retriever, hashed_retriever = comps.get("retriever") or {}, config.get("retriever") or {}
    for key in ("id", "revision", "options"):
        if retriever.get(key) != hashed_retriever.get(key):
            raise _fail(file, f"manifest.components.retriever.{key}", f"{retriever.get(key)!r} disagrees with "
                        f"manifest.config.retriever.{key} {hashed_retriever.get(key)!r}")
    reranker, hashed_reranker = comps.get("reranker"), config.get("reranker")
    if (reranker is None) != (hashed_reranker is None):
        raise _fail(file, "manifest.components.reranker", "present in one of components and config but not the other")
    options = manifest.get("options") or {}
    for key in ("top_k_retriever", "top_k_rerank"):
        if key in options and options[key] != config.get(key):
            raise _fail(file, f"manifest.options.{key}", f"{options[key]!r} disagrees with manifest.config.{key} "
                        f"{config.get(key)!r}")
    if isinstance(reranker, Mapping) and isinstance(hashed_reranker, Mapping):
        for key in ("id", "revision"):
            if reranker.get(key) != hashed_reranker.get(key):
                raise _fail(file, f"manifest.components.reranker.{key}", f"{reranker.get(key)!r} disagrees with "
                            f"manifest.config.reranker.{key} {hashed_reranker.get(key)!r}")
        _check_registered(hashed_reranker, reranker, manifest["threshold"], file)
        checkpoint = manifest.get("checkpoint")
        if isinstance(checkpoint, Mapping) and checkpoint.get("weights_sha256"):
            named = {hashed_reranker.get("revision"), hashed_reranker.get("fingerprint")}
            if checkpoint["weights_sha256"] not in named:
                raise _fail(file, "manifest.checkpoint.weights_sha256", "names weights other than those in "
                            "manifest.config.reranker (revision/fingerprint)")
    _check_throughput(manifest, file)


def _check_registered(hashed_reranker: Mapping[str, Any], component: Mapping[str, Any], threshold: Mapping[str, Any],
                      file: Path) -> None:
    """A record naming a registered reranker must look like that reranker: its pinned revision, its backend and its
    score kind. Renaming a record's reranker to another model (and re-hashing) is caught here. A forgery that also
    copies every one of those fields is caught only by re-running it (``rrbench reproduce``)."""

    name = str(hashed_reranker.get("id") or "")
    registry = get_registry()
    if not name or not registry.has("rerankers", name):
        return
    spec = registry.get("rerankers", name).spec
    if spec.revision and hashed_reranker.get("revision") != spec.revision:
        raise _fail(file, "manifest.config.reranker.revision", f"{hashed_reranker.get('revision')!r} is not the "
                    f"revision {spec.revision!r} that reranker {name!r} pins: these are not its weights")
    if component.get("backend") and component["backend"] != spec.backend:
        raise _fail(file, "manifest.components.reranker.backend", f"{component['backend']!r}, but reranker "
                    f"{name!r} is a {spec.backend} model")
    kind = threshold.get("score_kind")
    if kind and spec.score_kind and kind != spec.score_kind:
        raise _fail(file, "manifest.threshold.score_kind", f"{kind!r}, but reranker {name!r} gives "
                    f"{spec.score_kind} scores")


def _check_throughput(manifest: Mapping[str, Any], file: Path) -> None:
    """pairs/s is self-reported, but it must at least be the record's own pairs over its own rerank time."""
    rate, seconds = manifest.get("pairs_per_s"), manifest.get("rerank_time_s")
    if rate is None or not seconds:
        return
    cache = manifest.get("cache") or {}
    pairs = cache.get("computed") if cache.get("enabled") and cache.get("hits") else manifest.get("pairs_scored")
    if not isinstance(pairs, (int, float)) or not isinstance(seconds, (int, float)):
        raise _fail(file, "manifest.pairs_per_s", "given without a numeric pairs count and rerank time")
    # rerank_time_s is rounded to the millisecond, so the rate is known within that rounding
    slow, fast = pairs / (seconds + 0.0005), pairs / max(seconds - 0.0005, 1e-9)
    if not slow - 0.011 <= float(rate) <= fast + 0.011:
        raise _fail(file, "manifest.pairs_per_s", f"{rate!r} is not pairs scored / rerank_time_s "
                    f"({pairs!r} / {seconds!r})")


def check_folder_name(manifest: Mapping[str, Any], folder: Path, file: Path) -> None:
    """A published record lives at ``<task>@<version>/<split>/<derived identity>-<hash8>``."""
    expected = record_folder_name(manifest)
    if folder.name != expected:
        raise _fail(file, "folder", f"{folder.name!r} is not the record's derived name {expected!r} "
                    "(system identity and config hash); a record cannot be filed under another system")
    task = manifest["task"]
    if folder.parent.name != manifest["split"] or folder.parent.parent.name != f"{task['id']}@{task['version']}":
        raise _fail(file, "folder", f"a record of {task['id']}@{task['version']} split {manifest['split']} is filed "
                    f"under {folder.parent.parent.name}/{folder.parent.name}")


def check_recomputed(record: Mapping[str, Any], task: Any, folder: Path, file: Path) -> None:
    """Every aggregate and per-query value must be what ``run.trec`` gives against the task's own qrels."""

    manifest, metrics = record["manifest"], record["metrics"]
    cutoffs = tuple(int(k[2:]) for k in metrics if re.fullmatch(r"R@\d+", k))
    decided_on_run = _decided_on_run_scores(manifest)
    try:
        fresh, per_query, _ = score_run(task, manifest["split"], folder / RUN_FILE,
                                        manifest["threshold"]["value"] if decided_on_run else None,
                                        pool_k=max(cutoffs, default=None), extra_cutoffs=cutoffs)
        if not decided_on_run:
            _recompute_decisions(manifest, task, fresh, per_query, file)
    except RecordError:
        raise
    except Exception as exc:
        raise _fail(file, RUN_FILE, str(exc).replace(str(folder / RUN_FILE) + ": ", "")) from None
    for key, value in metrics.items():
        if key in fresh and not _close(value, fresh[key]):
            raise _fail(file, f"metrics.{key}", f"{value!r} does not follow from {RUN_FILE} (recomputed "
                        f"{fresh[key]!r}): the record was altered or belongs to another run")
    missing = [k for k in fresh if k not in metrics]
    if missing:
        raise _fail(file, f"metrics.{missing[0]}", f"missing (recomputed {fresh[missing[0]]!r} from {RUN_FILE})")
    stored = record["per_query"]
    if set(stored) != set(per_query):
        odd = min(set(stored) ^ set(per_query))
        raise _fail(file, f"per_query.{odd}", f"the record's queries are not those of split {manifest['split']!r}")
    for query_id, values in per_query.items():
        mine = stored[query_id]
        if set(mine) != set(values):
            raise _fail(file, f"per_query.{query_id}", f"holds {sorted(mine)}, {RUN_FILE} gives {sorted(values)}")
        for key, value in values.items():
            if not _close(mine[key], value):
                raise _fail(file, f"per_query.{query_id}.{key}", f"{mine[key]!r} does not follow from {RUN_FILE} "
                            f"(recomputed {value!r})")


def _decided_on_run_scores(manifest: Mapping[str, Any]) -> bool:
    """Whether answer/abstain follows from ``run.trec`` alone: the best written score against the threshold. True for
    records without a decision stage and for the plain max policy on one uncalibrated stage's own scores."""
    decision = manifest.get("decision")
    if not isinstance(decision, Mapping):
        return True
    config = manifest.get("config") or {}
    return (decision.get("policy", "max") == "max" and not decision.get("calibrator") and not decision.get("folds")
            and "ensemble" not in config and "interpolate" not in config)


def _recompute_decisions(manifest: Mapping[str, Any], task: Any, fresh: dict[str, Any],
                         per_query: dict[str, dict[str, float]], file: Path) -> None:
    """Decision metrics of a calibrated, margin, ensemble or interpolated record, from its recorded per-query
    statistics and answers (their scale is not that of ``run.trec``): the answers must follow from the statistics and
    the threshold, and the rates from the answers and the task's own qrels. Whether the statistics themselves are
    right only ``rrbench reproduce`` can tell (it re-runs the configuration from the score cache)."""

    decision = manifest["decision"]
    answered = decision.get("answered")
    statistic = decision.get("statistic") or {}
    if answered is None:
        return
    if not isinstance(answered, Mapping) or set(answered) != set(per_query):
        raise _fail(file, "manifest.decision.answered", "must name every query of the split")
    threshold = decision.get("threshold")
    if threshold is not None and not decision.get("folds"):
        for query_id, flag in answered.items():
            value = statistic.get(query_id)
            expected = value is not None and math.isfinite(value) and value >= threshold
            if bool(flag) != bool(expected):
                raise _fail(file, f"manifest.decision.answered.{query_id}", f"{flag!r} does not follow from its "
                            f"statistic {value!r} and the threshold {threshold!r}")
    has = {q: any(g >= 1 for g in task.qrels.get(q, {}).values()) for q in per_query}
    ids = sorted(per_query)
    without = [float(bool(answered[q])) for q in ids if not has[q]]
    with_evidence = [float(bool(answered[q])) for q in ids if has[q]]
    fresh["false_evidence_rate"] = sum(without) / len(without) if without else None
    if with_evidence:
        fresh["answer_rate_has_evidence"] = sum(with_evidence) / len(with_evidence)
    for q in ids:
        if not has[q]:
            per_query[q]["false_evidence"] = float(bool(answered[q]))


def check_sums(folder: Path, file: Path) -> None:
    """The ``SHA256SUMS`` a published record carries (``sha256sum -c`` format) must match its files."""
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise _fail(file, SUMS_FILE, "missing (publish writes it)")
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name.strip()] = digest.strip()
    for name in (RESULTS_FILE, RUN_FILE):
        if name not in listed:
            raise _fail(file, SUMS_FILE, f"does not list {name}")
        if sha256_file(folder / name) != listed[name]:
            raise _fail(file, name, f"its sha256 is not the one in {SUMS_FILE}: the file changed after publication")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in (RESULTS_FILE, RUN_FILE, SUMS_FILE))
    if extra:
        raise _fail(file, extra[0], "unexpected file in a published record")


def write_sums(folder: Path) -> None:
    atomic_write_text(folder / SUMS_FILE, "".join(f"{sha256_file(folder / n)}  {n}\n" for n in (RESULTS_FILE,
                                                                                                 RUN_FILE)))


def registered_version(task_id: str) -> int | None:
    """The version of the task as registered now (None when no such task is registered)."""

    try:
        return int(get_task(task_id).version)
    except UsageError:
        return None


def check_ledger(manifest: Mapping[str, Any], file: Path, ledger: str | Path | None) -> None:
    """A test-split record is accepted only when its configuration is in the test ledger (it used the split once,
    as a confirmation, through ``rrbench run --final``), for the same task data."""

    entry = test_ledger.previous_use(str(manifest["config_hash"]), ledger)
    where = test_ledger.ledger_path(ledger)
    if entry is None:
        raise _fail(file, "manifest.split", f"{manifest['split']!r} record whose configuration "
                    f"{str(manifest['config_hash'])[:12]} is not in the test ledger {where}: the test split is "
                    "scored once per configuration, with --final")
    if entry.get("task_data_sha256") != manifest["task"]["data_sha256"]:
        raise _fail(file, "manifest.task.data_sha256", f"differs from the test ledger's entry for this configuration "
                    f"({where})")


def verify_record(path: str | Path, published: bool = False, ledger: str | Path | None = None) -> dict[str, Any]:
    """Every check; returns the record or raises :class:`RecordError` naming the first field at fault.

    ``published=True`` adds the checks of a record inside a leaderboard: its folder name and ``SHA256SUMS``;
    records of a superseded task version are then checked for consistency only (their data is gone). ``ledger`` is
    the test ledger that test-split records must be in (default: ``rrbench.records.ledger``'s own default).
    """

    folder = ensure_record_dir(path)
    file = folder / RESULTS_FILE
    record = load_record(file)
    require_valid(record, str(file))
    manifest = record["manifest"]
    fallback = manifest.get("reranker_fallback") or manifest.get("fallback")
    if fallback:
        raise _fail(file, "manifest.reranker_fallback", "the reranker was replaced by the retriever's ranking "
                    f"(--on-oom fallback: {fallback.get('reason') if isinstance(fallback, dict) else fallback}); "
                    "such records are not published")
    if manifest["split"] in LEDGER_SPLITS:
        check_ledger(manifest, file, ledger)
    if published:
        check_sums(folder, file)
        check_folder_name(manifest, folder, file)
    check_config_hash(manifest, file)
    check_components(manifest, file, folder)
    task_info = manifest["task"]
    try:
        task = get_task(task_info["id"])
    except UsageError as exc:
        raise _fail(file, "manifest.task.id", f"{task_info['id']!r} is not a registered task ({exc})") from None
    if task.version != task_info["version"]:
        if published and task.version > task_info["version"]:
            return record  # a superseded board: readable, not re-scorable
        raise _fail(file, "manifest.task.version", f"record is for {task.id}@{task_info['version']}, the registered "
                    f"task is version {task.version}" + (" (that board is superseded; re-run on the new version)"
                                                         if task.version > task_info["version"] else ""))
    if task.data_sha256 != task_info["data_sha256"]:
        raise _fail(file, "manifest.task.data_sha256", f"{str(task_info['data_sha256'])[:12]}... does not match task "
                    f"{task.id}@{task.version} ({task.data_sha256[:12]}...)")
    check_recomputed(record, task, folder, file)
    return record


__all__ = ["LEDGER_FILE", "LEDGER_SPLITS", "SUMS_FILE", "check_ledger", "check_sums", "registered_version", "verify_record", "write_sums"]
