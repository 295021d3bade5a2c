"""``rrbench evaluate``: score a TREC run made by *any* system with rrbench's metrics and record format.

This is how users compare rrbench against anything else (a commercial API, a pipeline in another toolkit, a
published run file): write a standard TREC run whose docnos are ``<post_id>:<sentence index>`` and get the same
metrics, per-query values and ``results.json`` as ``rrbench run`` produces, ready for ``rrbench publish``.

The run is read the way trec_eval reads it (score descending, ties by docno descending; the rank column is
ignored), so numbers agree with trec_eval/pytrec_eval on the same files. The run must rank every query of the split
(a missing query is refused, never read as an abstention); queries of other splits are ignored, unknown query ids
are an error. The record is *claimed*: rrbench cannot re-score an outside system, so boards list it apart from
verified runs.
"""

from __future__ import annotations

import datetime as _dt
import math
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from rrbench import __version__
from rrbench.measures.metrics import RankedQuery, evaluate
from rrbench.measures.trec import qrels_lines, read_run
from rrbench.records import ledger
from rrbench.records.ledger import test_split_use
from rrbench.records.manifest import hardware, package_versions
from rrbench.records.naming import system_name
from rrbench.records.record import record_digest
from rrbench.records.schema import (
    QRELS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    SCHEMA_VERSION,
    OutsideClaims,
    OutsideRunClaim,
    Provenance,
    Record,
    TaskClaim,
    TestSplitUse,
    claims_hash,
    is_identifier,
)
from rrbench.tasks.resolve import Task, get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, atomic_write_text, sha256_file, sha256_text, strict_json_dumps


def _docno_index(task: Task, docno: str, where: str) -> int:
    index = task.index_of(docno)
    if index is None:
        raise UsageError(f"{where}: docno {docno!r} is not a candidate of task {task.id!r} "
                         f"('<post_id>:<sentence index>', the index in ASCII digits within the post)")
    return index


def _run_tags(path: Path) -> list[str]:
    """The run's tags (6th column), in order of appearance; a tag outside the identifier pattern becomes a hash."""
    tags: dict[str, None] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 6:
                tags[parts[5] if is_identifier(parts[5]) else "tag-" + sha256_text(parts[5])[:12]] = None
    return list(tags)


def task_claim(task: Task) -> TaskClaim:
    return TaskClaim(id=task.id, version=task.version, data_sha256=task.data_sha256)


def score_run(loaded: Task, split: str, run_path: Path, threshold: float | None,
              pool_k: int | None = None, extra_cutoffs: tuple[int, ...] = ()
              ) -> tuple[dict[str, Any], dict[str, dict[str, float]], dict[str, int]]:
    """Metrics of a TREC run file on a loaded task split: ``(metrics, per_query, counts)``.

    ``pool_k`` defaults to the run's depth (the longest ranking), giving ``R@<depth>``.
    """
    queries = sorted(loaded.split_queries(split), key=lambda q: q.query_id)
    if not queries:
        raise UsageError(f"task {loaded.id!r} split {split!r} has no queries")
    rows = read_run(str(run_path))
    unknown = [q for q in rows if q not in loaded.queries]
    if unknown:
        raise UsageError(f"{run_path}: query {unknown[0]!r} is not a query of task {loaded.id!r}"
                         + (f" ({len(unknown)} unknown query ids)" if len(unknown) > 1 else ""))
    in_split = {q.query_id for q in queries}
    outside = sum(1 for q in rows if q not in in_split)

    ranked_queries, missing, depth = [], 0, 0
    for query in queries:
        ranking = rows.get(query.query_id)
        if ranking is None:
            missing += 1
            ranking = []
        where = f"{run_path} query {query.query_id!r}"
        ids = np.asarray([_docno_index(loaded, d, where) for d, _ in ranking], dtype=np.int64)
        if loaded.spec.scope == "post" and len(ids):
            start, end = loaded.post_slice(query.post_id)
            stray = ids[(ids < start) | (ids >= end)]
            if len(stray):
                raise UsageError(f"{where}: docno {loaded.docno(int(stray[0]))!r} is not a sentence of the query's "
                                 f"post {query.post_id!r} (task scope is 'post')")
        scores = np.asarray([s for _, s in ranking], dtype=np.float64)
        depth = max(depth, len(ids))
        judged = loaded.qrels.get(query.query_id, {})
        ranked_queries.append(RankedQuery(query.query_id, loaded.relevance(query, ids),
                                          np.asarray(list(judged.values()), dtype=np.float64), scores))
    if missing == len(queries):
        raise UsageError(f"{run_path}: the run has no query of task {loaded.id!r} split {split!r}")
    metrics, per_query = evaluate(ranked_queries, pool_k=pool_k or depth or None, threshold=threshold,
                                  extra_cutoffs=extra_cutoffs)
    counts = {"depth": depth, "queries_in_split": len(queries) - missing, "queries_missing": missing,
              "queries_other_splits": outside}
    return metrics, per_query, counts


def evaluate_run(task: str = "scifact-evidence", split: str = "dev_select", run: str = "",
                 threshold: float | None = None, output: str | None = None, runs_dir: str = "runs",
                 final: bool = False) -> dict[str, Any]:
    """Evaluate the TREC run file ``run`` on a task split; writes a record folder and returns the record.

    ``threshold`` applies to the run's own scores (its top score per query decides false evidence); without it the
    false-evidence rate is null, because rrbench cannot know the natural scale of an outside system's scores. On
    the test split this is a use of its labels: it needs ``final`` and writes a ledger line.
    """
    started = time.perf_counter()
    if not run:
        raise UsageError("--run FILE is required")
    if threshold is not None and not math.isfinite(threshold):
        raise UsageError("--threshold must be a finite number")
    final_use = test_split_use(split, final, "rrbench evaluate")
    run_path = Path(run)
    loaded = get_task(task)
    metrics, per_query, counts = score_run(loaded, split, run_path, threshold)
    if counts["queries_missing"]:
        raise UsageError(f"{run_path}: {counts['queries_missing']} queries of split {split!r} have no ranking; a run "
                         f"covers every query of its split (an empty ranking would be read as an abstention)")
    queries = sorted(loaded.split_queries(split), key=lambda q: q.query_id)
    claims = OutsideClaims(task=task_claim(loaded), split=split,
                           run=OutsideRunClaim(sha256=sha256_file(run_path), tags=_run_tags(run_path)),
                           threshold=None if threshold is None else float(threshold))
    command = ["rrbench", "evaluate", "--task", loaded.id, "--split", split, "--run", str(run_path)]
    if threshold is not None:
        command += ["--threshold", repr(float(threshold))]
    if final:
        command.append("--final")
    config_hash = claims_hash(claims)
    record = Record(schema_version=SCHEMA_VERSION, kind="outside", config=claims, config_hash=config_hash,
                    system=system_name(claims), main_score=loaded.spec.main_score, metrics=metrics,
                    per_query=per_query, decision=None,
                    provenance=Provenance(rrbench_version=__version__, command=shlex.join(command),
                                          created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                                          packages=package_versions(), hardware=hardware(),
                                          wall_time_s=round(time.perf_counter() - started, 3)))
    if final_use:
        use = ledger.claim(config_hash=config_hash, task=f"{loaded.id}@{loaded.version}",
                           task_data_sha256=loaded.data_sha256, results_sha256=record_digest(record),
                           purpose="evaluate", command=shlex.join(command))
        record = record.model_copy(update={"provenance": record.provenance.model_copy(
            update={"test_split": TestSplitUse.model_validate(use)})})
    out_dir = Path(output) if output else Path(runs_dir) / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-eval-{config_hash[:8]}")
    qrels_text = []
    for query in queries:
        judged = loaded.qrels.get(query.query_id, {})
        qrels_text += qrels_lines(query.query_id, {
            loaded.docno(loaded.global_index(query.post_id, s)): g for s, g in sorted(judged.items())})
    with atomic_dir(out_dir) as tmp:
        # the run is kept byte for byte, so its sha256 in the claims identifies it and check can re-read it
        (tmp / RUN_FILE).write_bytes(run_path.read_bytes())
        atomic_write_text(tmp / QRELS_FILE, "\n".join(qrels_text) + ("\n" if qrels_text else ""))
        atomic_write_text(tmp / RESULTS_FILE, strict_json_dumps(record.as_json()))
    body = record.as_json()
    body["output_dir"] = str(out_dir)
    return body
