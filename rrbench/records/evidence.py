"""A record's evidence: the raw scores of every stage, per query and candidate, as the run computed them.

``run.trec`` cannot carry a decision's inputs: its scores are made strictly decreasing for trec_eval, the tail that
was not reranked gets made-up scores, and an ensemble or an interpolation leaves no trace of its members. So a record
keeps, for every query of its split, the candidate pool in retriever order with the retriever's (or the fusion's)
scores, and each reranker's raw scores of the pool's head. Everything else (the final order, ``run.trec``, the
decision, every metric) is recomputed from this file, the hashed claims and the task's labels.

Format: gzipped JSON lines. The first line is a header (``{"evidence": "rrbench-scores", "version": 1, "split": ...,
"rerankers": [...]}``); then one line per query: ``{"query": ID, "pool": [DOCNO, ...], "retriever": [score, ...],
"heads": [[score, ...], ...]}`` with one head per reranker. Read strictly: finite numbers, consistent lengths, every
candidate once; anything else is one line naming the file and the query.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrbench.records.schema import RecordError
from rrbench.util.io import atomic_write, loads_strict_json

FORMAT = "rrbench-scores"
VERSION = 1
#: A query's line can hold a large corpus-scope pool; this bounds a hostile file's memory, not a real one.
MAX_LINE_BYTES = 64 << 20


@dataclass(frozen=True)
class QueryScores:
    query_id: str
    pool: tuple[str, ...]  # docnos in retriever order
    retriever: tuple[float, ...]
    heads: tuple[tuple[float, ...], ...]  # per reranker: scores of pool[:len(head)]


@dataclass(frozen=True)
class Evidence:
    split: str
    rerankers: tuple[str, ...]  # qualified names, in claim order
    queries: tuple[QueryScores, ...]

    def by_query(self) -> dict[str, QueryScores]:
        return {q.query_id: q for q in self.queries}

    def pair_count(self) -> int:
        return sum(len(q.pool) for q in self.queries)


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


def write_evidence(path: Path, evidence: Evidence) -> None:
    """Write atomically; gzip with a fixed mtime so that equal evidence gives equal bytes (and sha256)."""
    lines = [_dump({"evidence": FORMAT, "version": VERSION, "split": evidence.split,
                    "rerankers": list(evidence.rerankers)})]
    for q in evidence.queries:
        lines.append(_dump({"query": q.query_id, "pool": list(q.pool), "retriever": list(q.retriever),
                            "heads": [list(h) for h in q.heads]}))
    raw = ("\n".join(lines) + "\n").encode("ascii")

    def writer(handle: Any) -> None:
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw)

    atomic_write(path, writer)


def _numbers(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise RecordError(f"{where}: expected a list of numbers")
    out = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in out):
        raise RecordError(f"{where}: a score is not finite")
    return out


def read_evidence(path: Path) -> Evidence:
    """Parse strictly; every problem is one :class:`RecordError` naming the file and the line or query."""
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise RecordError(f"{path}: missing (the record's evidence: every stage's raw scores)") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise RecordError(f"{path}: not a gzip file ({exc})") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{path}: not ASCII (byte {exc.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise RecordError(f"{path}: empty")
    if any(len(line) > MAX_LINE_BYTES for line in lines):
        raise RecordError(f"{path}: a line is longer than {MAX_LINE_BYTES} bytes")
    header = loads_strict_json(lines[0], f"{path} line 1", RecordError)
    if (not isinstance(header, dict) or header.get("evidence") != FORMAT or header.get("version") != VERSION
            or set(header) != {"evidence", "version", "split", "rerankers"}):
        raise RecordError(f"{path} line 1: not an rrbench score file header (version {VERSION})")
    rerankers = header["rerankers"]
    if not isinstance(header["split"], str) or not isinstance(rerankers, list) or \
            not all(isinstance(r, str) for r in rerankers):
        raise RecordError(f"{path} line 1: split must be a string and rerankers a list of names")
    queries: list[QueryScores] = []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        row = loads_strict_json(line, f"{path} line {number}", RecordError)
        if not isinstance(row, dict) or set(row) != {"query", "pool", "retriever", "heads"}:
            raise RecordError(f"{path} line {number}: expected the keys query, pool, retriever, heads")
        query = row["query"]
        if not isinstance(query, str) or query in seen:
            raise RecordError(f"{path} line {number}: query id missing or repeated")
        seen.add(query)
        where = f"{path} query {query}"
        pool = row["pool"]
        if not isinstance(pool, list) or not all(isinstance(d, str) for d in pool):
            raise RecordError(f"{where}: pool must be a list of candidate ids")
        if len(set(pool)) != len(pool):
            raise RecordError(f"{where}: pool lists a candidate twice")
        retriever = _numbers(row["retriever"], f"{where} retriever")
        if len(retriever) != len(pool):
            raise RecordError(f"{where}: {len(retriever)} retriever scores for {len(pool)} candidates")
        heads = row["heads"]
        if not isinstance(heads, list) or len(heads) != len(rerankers):
            raise RecordError(f"{where}: expected {len(rerankers)} reranker heads")
        parsed = tuple(_numbers(h, f"{where} head {i}") for i, h in enumerate(heads))
        if any(len(h) > len(pool) for h in parsed):
            raise RecordError(f"{where}: a head scores more candidates than the pool holds")
        queries.append(QueryScores(query, tuple(pool), retriever, parsed))
    return Evidence(header["split"], tuple(rerankers), tuple(queries))


def evidence_from_arrays(split: str, rerankers: Sequence[str], query_ids: Sequence[str],
                         pools: Sequence[Sequence[str]], retriever: Sequence[Sequence[float]],
                         heads: Sequence[Sequence[Sequence[float]]]) -> Evidence:
    """Evidence from a run's per-query lists (``heads[j][i]``: reranker ``j``'s scores of query ``i``'s head)."""
    queries = []
    for i, query_id in enumerate(query_ids):
        queries.append(QueryScores(str(query_id), tuple(pools[i]), tuple(float(s) for s in retriever[i]),
                                   tuple(tuple(float(s) for s in heads[j][i]) for j in range(len(rerankers)))))
    return Evidence(split, tuple(rerankers), tuple(queries))
