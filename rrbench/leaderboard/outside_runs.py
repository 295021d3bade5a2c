"""``rrbench evaluate``: score a TREC run made by *any* system with rrbench's metrics and record format.

This is how users compare rrbench against anything else (a commercial API, a pipeline in another toolkit, a
published run file): write a standard TREC run whose docnos are ``<post_id>:<sentence index>`` and get the same
metrics, per-query values and ``results.json`` as ``rrbench run`` produces, ready for ``rrbench publish``.

The run is read the way trec_eval reads it (score descending, ties by docno descending; the rank column is
ignored), so numbers agree with trec_eval/pytrec_eval on the same files. Queries of the split that the run does not
mention count as empty rankings (0 on every rank metric, never false evidence), and the record says how many there
were; queries of other splits in the run are ignored, unknown query ids are an error.
"""

from __future__ import annotations

import datetime as _dt
import math
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.measures.metrics import RankedQuery, evaluate
from rrbench.measures.trec import qrels_lines, read_run
from rrbench.records.builder import METRIC_NOTES, build_record, task_identity
from rrbench.records.record import QRELS_FILE, RESULTS_FILE, RUN_FILE
from rrbench.tasks.resolve import Task, get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import atomic_dir, atomic_write_text, sha256_file, strict_json_dumps


def _docno_index(task: Task, docno: str, where: str) -> int:
    post_id, sep, local = docno.rpartition(":")
    if not sep or post_id not in task.post_index or not local.isdigit():
        raise UsageError(f"{where}: docno {docno!r} is not '<post_id>:<sentence index>' of task {task.id!r}")
    start, end = task.post_slice(post_id)
    if not 0 <= int(local) < end - start:
        raise UsageError(f"{where}: docno {docno!r} is past the end of post {post_id!r} ({end - start} sentences)")
    return start + int(local)


def _run_tags(path: Path) -> list[str]:
    tags: dict[str, None] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 6:
                tags[parts[5]] = None
    return list(tags)


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


def evaluate_run(task: str = "scifact-evidence", split: str = "dev_select", run: str = "", threshold: float | None = None,
                 output: str | None = None, runs_dir: str = "runs") -> dict[str, Any]:
    """Evaluate the TREC run file ``run`` on a task split; writes an output folder and returns the record.

    ``threshold`` applies to the run's own scores (its top score per query decides false evidence); without it the
    false-evidence rate is null, because rrbench cannot know the natural scale of an outside system's scores.
    """
    started = time.perf_counter()
    if not run:
        raise UsageError("--run FILE is required")
    if threshold is not None and not math.isfinite(threshold):
        raise UsageError("--threshold must be a finite number")
    run_path = Path(run)
    loaded = get_task(task)
    metrics, per_query, counts = score_run(loaded, split, run_path, threshold)
    queries = sorted(loaded.split_queries(split), key=lambda q: q.query_id)

    digest = sha256_file(run_path)
    hashed = {"task": task_identity(loaded), "split": split, "run_sha256": digest, "threshold": threshold}
    command = ["rrbench", "evaluate", "--task", task, "--split", split, "--run", str(run_path)]
    if threshold is not None:
        command += ["--threshold", repr(float(threshold))]
    tags = _run_tags(run_path)
    record = build_record(
        task=loaded, split=split, metrics=metrics, per_query=per_query, config=hashed, kind="evaluate",
        components={"run": {"path": str(run_path.resolve()), "sha256": digest, "tags": tags, **counts}},
        command=shlex.join(command),
        metric_notes=METRIC_NOTES + "; split queries absent from the run count as empty rankings",
        manifest={
            "threshold": {"value": None if threshold is None else float(threshold),
                          "source": "cli" if threshold is not None else
                          "none: an outside run's score scale is unknown (pass --threshold)",
                          "score_kind": None},
            "wall_time_s": round(time.perf_counter() - started, 3),
            "pairs_scored": 0,
            "pairs_per_s": None,
            "run_config": {"task": task, "split": split, "threshold": threshold},
        })
    config_hash = record["manifest"]["config_hash"]
    out_dir = Path(output) if output else Path(runs_dir) / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-eval-{config_hash[:8]}")
    qrels_text = []
    for query in queries:
        judged = loaded.qrels.get(query.query_id, {})
        qrels_text += qrels_lines(query.query_id, {
            loaded.docno(loaded.global_index(query.post_id, s)): g for s, g in sorted(judged.items())})
    body = strict_json_dumps(record)
    with atomic_dir(out_dir) as tmp:
        # the run is kept byte for byte, so its sha256 in the manifest identifies it and reproduce can re-read it
        (tmp / RUN_FILE).write_bytes(run_path.read_bytes())
        atomic_write_text(tmp / QRELS_FILE, "\n".join(qrels_text) + ("\n" if qrels_text else ""))
        atomic_write_text(tmp / RESULTS_FILE, body)
    record["output_dir"] = str(out_dir)
    return record
