"""Derive, don't trust: the one verifier of result records (``publish``, ``leaderboard check``, ``gate``).

A record holds claims (its hashed configuration) and evidence (every stage's raw scores). The verifier:

1. parses the record with the strict typed schema, and recomputes the config hash from the claims;
2. resolves the task through the registry (or an explicit ``--task-dir``) only, never through a folder that happens
   to lie in the working directory; a record of an unknown task version is refused, one of a superseded version is
   *archived, not re-verified* (its data is gone);
3. resolves every component through the registry: an unregistered id, a plugin that is not installed here, or a
   distribution other than the one that registers the id is refused;
4. recomputes everything derived from claims, evidence and the task's own labels with the very function ``rrbench
   run`` used (:func:`rrbench.pipeline.derive.derive`): the final order and ``run.trec``, the calibrator fit, every
   decision, metric and per-query value, the system's name and the main score (from the registered task spec). A
   stored value that differs, or a metric that cannot be recomputed, is refused;
5. for the test split, requires exactly one matching line in the test ledger.

``--rescore N`` (:mod:`rrbench.leaderboard.rescore`) then binds the evidence to the models. Each refusal is one line
naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrbench.components.registry import resolve
from rrbench.leaderboard.outside_runs import score_run
from rrbench.measures.trec import read_run
from rrbench.pipeline.derive import Derived, check_registered, derive
from rrbench.records import ledger as test_ledger
from rrbench.records.evidence import read_evidence
from rrbench.records.naming import folder_name, system_name
from rrbench.records.record import load_record, record_digest
from rrbench.records.schema import (
    CALIBRATION_SCORES_FILE,
    RESULTS_FILE,
    RUN_FILE,
    SCORES_FILE,
    OutsideClaims,
    Record,
    RecordError,
    RunClaims,
    TaskClaim,
    claims_hash,
)
from rrbench.tasks.loader import Task, load_task_dir
from rrbench.util.errors import UnknownComponentError, UsageError
from rrbench.util.io import atomic_write_text, sha256_file

METRIC_TOLERANCE = 1e-9
SUMS_FILE = "SHA256SUMS"
LEDGER_FILE = "test-ledger.jsonl"
#: every file a published record may hold besides SHA256SUMS (the calibration scores only when it needs them)
PUBLISHED_FILES = (RESULTS_FILE, RUN_FILE, SCORES_FILE, CALIBRATION_SCORES_FILE)


@dataclass
class Verified:
    """A record that passed every check, what was derived from it, and its standing on a board."""

    folder: Path
    record: Record
    status: str  # "verified" (a run rrbench re-derived), "claimed" (an outside run), "archived"
    derived: Derived | None = None
    task: Task | None = None
    note: str = ""

    @property
    def metrics(self) -> dict[str, Any]:
        return self.derived.metrics if self.derived is not None else dict(self.record.metrics)

    @property
    def per_query(self) -> dict[str, dict[str, float]]:
        return self.derived.per_query if self.derived is not None else dict(self.record.per_query)

    @property
    def name(self) -> str:
        return system_name(self.record.config)


def _fail(file: Path, field: str, message: str) -> RecordError:
    return RecordError(f"{file}: {field}: {message}")


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=METRIC_TOLERANCE)


# -- tasks -------------------------------------------------------------------------------------------------------------
def resolve_task(claim: TaskClaim, file: Path, task_dir: str | Path | None = None,
                 field: str = "config.task") -> Task | None:
    """The task a record names, from the registry (or ``task_dir``); None when the record's version is superseded.

    A folder in the working directory is never taken for a task: a pull request could add one.
    """
    if task_dir is not None:
        task = load_task_dir(task_dir)
        if task.id != claim.id:
            raise _fail(file, f"{field}.id", f"{claim.id!r}, but --task-dir holds task {task.id!r}")
    else:
        try:
            entry = resolve("tasks", claim.id)
        except UnknownComponentError:
            raise _fail(file, f"{field}.id", f"{claim.id!r} is not a registered task (pass --task-dir for an "
                                             f"unregistered one)") from None
        if entry.spec.id != claim.id:
            raise _fail(file, f"{field}.id", f"{claim.id!r} is an alias; records name tasks by id "
                                             f"({entry.spec.id!r})")
        task = load_task_dir(entry.spec.path)
    if claim.version < task.version:
        known = {a.version: a.data_sha256 for a in task.spec.archived_versions}
        if known.get(claim.version) != claim.data_sha256:
            raise _fail(file, f"{field}.version", f"{claim.id}@{claim.version} with data {claim.data_sha256[:12]}... "
                                                  f"is not an archived version of the registered task (version "
                                                  f"{task.version})")
        return None
    if claim.version != task.version:
        raise _fail(file, f"{field}.version", f"{claim.id}@{claim.version} does not exist (the registered task is "
                                              f"version {task.version})")
    if claim.data_sha256 != task.data_sha256:
        raise _fail(file, f"{field}.data_sha256", f"{claim.data_sha256[:12]}... does not match task "
                                                  f"{task.id}@{task.version} ({task.data_sha256[:12]}...)")
    return task


# -- comparisons of stored and derived values --------------------------------------------------------------------------
def _compare_metrics(stored: Mapping[str, Any], fresh: Mapping[str, Any], file: Path) -> None:
    unknown = sorted(set(stored) - set(fresh))
    if unknown:
        raise _fail(file, f"metrics.{unknown[0]}", "is not a metric this record's evidence gives (every metric "
                                                   "must be recomputable)")
    missing = sorted(set(fresh) - set(stored))
    if missing:
        raise _fail(file, f"metrics.{missing[0]}", f"missing (recomputed {fresh[missing[0]]!r})")
    for key, value in fresh.items():
        if not _close(stored[key], value):
            raise _fail(file, f"metrics.{key}", f"{stored[key]!r} does not follow from the record's evidence "
                                                f"(recomputed {value!r})")


def _compare_per_query(stored: Mapping[str, Mapping[str, Any]], fresh: Mapping[str, Mapping[str, Any]],
                       file: Path) -> None:
    if set(stored) != set(fresh):
        odd = min(set(stored) ^ set(fresh))
        raise _fail(file, f"per_query.{odd}", "the record's queries are not those of its split")
    for query_id, values in fresh.items():
        mine = stored[query_id]
        if set(mine) != set(values):
            raise _fail(file, f"per_query.{query_id}", f"holds {sorted(mine)}, the evidence gives {sorted(values)}")
        for key, value in values.items():
            if not _close(mine[key], value):
                raise _fail(file, f"per_query.{query_id}.{key}", f"{mine[key]!r} does not follow from the evidence "
                                                                 f"(recomputed {value!r})")


def _compare_decision(record: Record, derived: Derived, file: Path) -> None:
    stored, fresh = record.decision, derived.decision
    if stored is None:
        raise _fail(file, "decision", "missing")
    if not _close(stored.threshold, fresh.threshold):
        raise _fail(file, "decision.threshold", f"{stored.threshold!r} does not follow from the claims and the "
                                                f"evidence (recomputed {fresh.threshold!r})")
    if (stored.answered is None) != (fresh.answered is None):
        raise _fail(file, "decision.answered", "present in one of the record and its recomputation only")
    for query_id, flag in (fresh.answered or {}).items():
        if (stored.answered or {}).get(query_id) is not flag:
            raise _fail(file, f"decision.answered.{query_id}", f"does not follow from the evidence (recomputed "
                                                               f"{flag!r})")
    if set(stored.statistic) != set(fresh.statistic):
        raise _fail(file, "decision.statistic", "the record's queries are not those of its split")
    for query_id, value in fresh.statistic.items():
        if not _close(stored.statistic[query_id], value):
            raise _fail(file, f"decision.statistic.{query_id}", f"{stored.statistic[query_id]!r} does not follow "
                                                                f"from the evidence (recomputed {value!r})")
    if stored.model_dump(exclude={"threshold", "answered", "statistic"}) != \
            fresh.model_dump(exclude={"threshold", "answered", "statistic"}):
        raise _fail(file, "decision", "its scale, source, calibrator fit or folds do not follow from the claims and "
                                      "the evidence")


def _check_run_file(folder: Path, expected: list[str], file: Path) -> None:
    path = folder / RUN_FILE
    if not path.is_file():
        raise _fail(file, RUN_FILE, "missing")
    read_run(str(path))  # strict parsing first: a malformed line is named as such
    text = path.read_text(encoding="utf-8")
    if text != "\n".join(expected) + ("\n" if expected else ""):
        raise _fail(file, RUN_FILE, "is not the ranking the record's scores give (run.trec is derived from "
                                    f"{SCORES_FILE}, never read)")


def _check_throughput(record: Record, file: Path) -> None:
    """pairs/s is self-reported and never ranked on; it must at least be the record's own pairs over its own time."""
    prov = record.provenance
    if prov.pairs_per_s is None:
        return
    seconds = prov.rerank_time_s
    cache = prov.cache
    pairs = cache.get("computed") if cache.get("enabled") else prov.pairs_scored
    if not seconds or not isinstance(pairs, int) or pairs <= 0:
        raise _fail(file, "provenance.pairs_per_s", "given without model-scored pairs and a rerank time > 0")
    slow, fast = pairs / (float(seconds) + 0.0005), pairs / max(float(seconds) - 0.0005, 1e-9)
    if not slow - 0.011 <= float(prov.pairs_per_s) <= fast + 0.011:
        raise _fail(file, "provenance.pairs_per_s", f"{prov.pairs_per_s!r} is not the model-scored pairs over the "
                                                    f"rerank time ({pairs!r} / {seconds!r})")


# -- ledger and published layout ---------------------------------------------------------------------------------------
def check_ledger(record: Record, file: Path, ledger: str | Path | None) -> None:
    """A test-split record needs exactly one ledger line naming its configuration, task data and contents."""
    config = record.config
    lines = test_ledger.uses_of(record.config_hash, ledger)
    where = test_ledger.ledger_path(ledger)
    if len(lines) != 1:
        raise _fail(file, "config.split", f"a test record needs exactly one line in the test ledger {where} for "
                                          f"its configuration {record.config_hash[:12]}, found {len(lines)} (the "
                                          f"test split is scored once, with --final)")
    line = lines[0]
    if line.task_data_sha256 != config.task.data_sha256:
        raise _fail(file, "config.task.data_sha256", f"differs from the test ledger's line ({where})")
    if line.results_sha256 != record_digest(record):
        raise _fail(file, RESULTS_FILE, f"is not the record the test ledger's line names ({where}): the record was "
                                        f"changed after its test run")
    use = record.provenance.test_split
    if use is None or use.line != line.model_dump(mode="json"):
        raise _fail(file, "provenance.test_split", f"does not carry the ledger line it claimed ({where})")


def check_sums(folder: Path, file: Path) -> None:
    """``SHA256SUMS`` (``sha256sum -c`` format) must list exactly the record's files, with their hashes."""
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise _fail(file, SUMS_FILE, "missing (publish writes it)")
    listed: dict[str, str] = {}
    for line in sums.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed[name.strip()] = digest.strip()
    present = {p.name for p in folder.iterdir()} - {SUMS_FILE}
    extra = sorted(present - set(PUBLISHED_FILES))
    if extra:
        raise _fail(file, extra[0], "unexpected file in a published record")
    if set(listed) != present:
        odd = sorted(set(listed) ^ present)[0]
        raise _fail(file, SUMS_FILE, f"lists {sorted(listed)}, the folder holds {sorted(present)} ({odd!r})")
    for name in sorted(present):
        if sha256_file(folder / name) != listed[name]:
            raise _fail(file, name, f"its sha256 is not the one in {SUMS_FILE}: the file changed after publication")


def write_sums(folder: Path) -> None:
    names = sorted(p.name for p in folder.iterdir() if p.name != SUMS_FILE)
    atomic_write_text(folder / SUMS_FILE, "".join(f"{sha256_file(folder / n)}  {n}\n" for n in names))


def check_folder_name(record: Record, folder: Path, file: Path) -> None:
    """A published record lives at ``<task>@<version>/<split>/<derived name>-<hash8>``."""
    expected = folder_name(record.config, record.config_hash)
    if folder.name != expected:
        raise _fail(file, "folder", f"{folder.name!r} is not the record's derived name {expected!r}")
    claims = record.config
    if folder.parent.name != claims.split or \
            folder.parent.parent.name != f"{claims.task.id}@{claims.task.version}":
        raise _fail(file, "folder", f"a record of {claims.task.id}@{claims.task.version} split {claims.split} is "
                                    f"filed under {folder.parent.parent.name}/{folder.parent.name}")


# -- the verifier ------------------------------------------------------------------------------------------------------
def _verify_outside(record: Record, claims: OutsideClaims, task: Task, folder: Path, file: Path) -> None:
    run = folder / RUN_FILE
    if not run.is_file() or sha256_file(run) != claims.run.sha256:
        raise _fail(file, "config.run.sha256", f"is not the sha256 of {RUN_FILE}")
    queries = {q.query_id for q in task.split_queries(claims.split)}
    ranked = read_run(str(run))
    missing = sorted(queries - set(ranked))
    if missing:
        raise _fail(file, RUN_FILE, f"has no ranking for query {missing[0]!r} of split {claims.split!r} "
                                    f"({len(missing)} missing): a missing query is not an abstention")
    try:
        metrics, per_query, _ = score_run(task, claims.split, run, None if claims.threshold is None else
                                          float(claims.threshold))
    except UsageError as exc:
        raise _fail(file, RUN_FILE, str(exc).replace(f"{run}: ", "")) from None
    _compare_metrics(record.metrics, metrics, file)
    _compare_per_query(record.per_query, per_query, file)


def verify_record(path: str | Path, published: bool = False, ledger: str | Path | None = None,
                  task_dir: str | Path | None = None) -> Verified:
    """Every check; returns what was verified, or raises :class:`RecordError` naming the first field at fault."""
    given = Path(path)
    folder = given.parent if given.name == RESULTS_FILE and given.is_file() else given
    file = folder / RESULTS_FILE
    record = load_record(folder)
    if record.config_hash != claims_hash(record.config):
        raise _fail(file, "config_hash", f"{record.config_hash[:12]}... is not the hash of the record's claims "
                                         f"({claims_hash(record.config)[:12]}...): the configuration or its hash was "
                                         f"edited")
    if published:
        check_sums(folder, file)
        check_folder_name(record, folder, file)
    claims = record.config
    if record.system != system_name(claims):
        raise _fail(file, "system", f"{record.system!r} is not the name its claims give ({system_name(claims)!r})")
    if isinstance(claims, RunClaims):
        check_registered(claims, str(file))
    task = resolve_task(claims.task, file, task_dir)
    if task is None:
        return Verified(folder, record, "archived", note="archived: its task version is superseded; not re-verified")
    if record.main_score != task.spec.main_score:
        raise _fail(file, "main_score", f"{record.main_score!r}, but task {task.id} ranks on "
                                        f"{task.spec.main_score!r}")
    if claims.split == test_ledger.TEST_SPLIT:
        check_ledger(record, file, ledger)
    elif test_ledger.is_test_split(claims.split):
        raise _fail(file, "config.split", f"{claims.split!r}: folds of the test split are never scored")
    if isinstance(claims, OutsideClaims):
        _verify_outside(record, claims, task, folder, file)
        return Verified(folder, record, "claimed", task=task, note="claimed: an outside run, not re-scored")
    derived = _derive_run(record, claims, task, folder, file, task_dir)
    if record.provenance.run_options.get("reranker_fallback"):
        raise _fail(file, "provenance.run_options.reranker_fallback", "the reranker ran out of memory and the "
                                                                      "retriever's ranking replaced it; such records "
                                                                      "are not published")
    if record.provenance.speed_only:
        raise _fail(file, "provenance.speed_only", "a reranker is an architecture replica with random weights: the "
                                                   "record measures speed only and is never ranked on quality")
    _check_throughput(record, file)
    return Verified(folder, record, "verified", derived, task)


def _derive_run(record: Record, claims: RunClaims, task: Task, folder: Path, file: Path,
                task_dir: str | Path | None) -> Derived:
    evidence = read_evidence(folder / SCORES_FILE)
    fit = claims.decision.fit
    fit_task, fit_evidence = None, None
    if fit is not None and fit.split is not None:
        if fit.task is not None:
            fit_task = resolve_task(fit.task, file, None, field="config.decision.fit.task")
            if fit_task is None:
                raise _fail(file, "config.decision.fit.task.version", "the task the decision was fitted on is "
                                                                      "superseded; re-make the record")
        if test_ledger.is_test_split(fit.split):
            raise _fail(file, "config.decision.fit.split", "a decision is never fitted on the test split")
        fit_evidence = read_evidence(folder / CALIBRATION_SCORES_FILE)
    elif (folder / CALIBRATION_SCORES_FILE).exists():
        raise _fail(file, CALIBRATION_SCORES_FILE, "present, but the claims fit nothing on another split")
    derived = derive(claims, task, evidence, fit_task, fit_evidence, where=str(file))
    if record.system != derived.system:
        raise _fail(file, "system", f"{record.system!r} is not the derived name {derived.system!r}")
    _compare_metrics(record.metrics, derived.metrics, file)
    _compare_per_query(record.per_query, derived.per_query, file)
    _compare_decision(record, derived, file)
    _check_run_file(folder, derived.run_lines, file)
    return derived


__all__ = ["LEDGER_FILE", "PUBLISHED_FILES", "SUMS_FILE", "Verified", "check_ledger", "check_sums", "resolve_task",
           "verify_record", "write_sums"]
