"""TREC run/qrels files, and the ordering rule that makes trec_eval read exactly the order rrbench scored.

trec_eval sorts a run by score (descending) and breaks ties by docno, not by the rank column; it also keeps scores
as single-precision floats. rrbench therefore writes scores that fall *strictly* with rank *in float32*: the final
order is decided first (score descending; ties broken by the retriever's rank, then by sentence position), scores
are rounded to float32 (monotonic, so the order survives), and any score that does not fall below its predecessor
is replaced by the next float32 below it. Sentences in the pool but beyond the reranked prefix keep the
retriever's order, with scores stepping down by 1 below the last reranked score.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from rrbench.util.errors import UsageError


def order_by_score(scores: np.ndarray, tie_break: np.ndarray) -> np.ndarray:
    """Indices that sort ``scores`` descending, ties by ascending ``tie_break``."""
    return np.lexsort((tie_break, -scores))


def strictly_decreasing(scores: np.ndarray) -> np.ndarray:
    """Make a descending score sequence strictly decreasing in float32 with the smallest possible changes.

    Returned as float64 holding float32-exact values, so writing and re-reading them is lossless everywhere.
    """
    out = np.asarray(scores, dtype=np.float64).astype(np.float32)
    floor = np.float32(-np.inf)
    for i in range(1, len(out)):
        if not out[i] < out[i - 1]:
            out[i] = np.nextafter(out[i - 1], floor)
    return out.astype(np.float64)


def final_ranking(pool: np.ndarray, rerank_scores: np.ndarray | None, retriever_scores: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Combine a retriever-ordered pool with reranker scores for its prefix.

    ``pool``: candidate ids in retriever order; ``retriever_scores``: their retriever scores; ``rerank_scores``: scores
    of ``pool[:len(rerank_scores)]`` (None for retrieval-only runs). Returns ``(ranked ids, strictly decreasing
    scores)``.
    """
    positions = np.arange(len(pool))
    if rerank_scores is None or len(rerank_scores) == 0:
        return pool.copy(), strictly_decreasing(retriever_scores)
    n = len(rerank_scores)
    head = order_by_score(np.asarray(rerank_scores, dtype=np.float64), positions[:n])
    head_ids = pool[:n][head]
    head_scores = strictly_decreasing(np.asarray(rerank_scores, dtype=np.float64)[head])
    tail_ids = pool[n:]
    tail_scores = head_scores[-1] - np.arange(1, len(tail_ids) + 1, dtype=np.float64)
    return np.concatenate([head_ids, tail_ids]), strictly_decreasing(np.concatenate([head_scores, tail_scores]))


def format_score(score: float) -> str:
    """Shortest repr that round-trips: trec_eval and pytrec_eval parse it back to the same float64."""
    return repr(float(score))


def run_lines(query_id: str, docnos: Iterable[str], scores: Iterable[float], tag: str) -> list[str]:
    return [f"{query_id} Q0 {docno} {rank} {format_score(score)} {tag}"
            for rank, (docno, score) in enumerate(zip(docnos, scores, strict=True), start=1)]


def qrels_lines(query_id: str, judged: dict[str, int]) -> list[str]:
    """Only grade >= 1 lines: a no-evidence query is absent from qrels.trec, as trec_eval expects."""
    return [f"{query_id} 0 {docno} {grade}" for docno, grade in judged.items() if grade >= 1]


#: The one subset of the TREC run format rrbench reads, as trec_eval reads it: six fields separated by spaces or
#: tabs; the rank is ASCII digits; the score an ASCII decimal float (optional sign, digits, optional fraction and
#: exponent: no ``nan``, ``inf``, hex or ``_``). Python's ``float()`` accepts more (``0_9``, Unicode digits, NBSP
#: separators) and would read a file differently from trec_eval.
_RUN_LINE = re.compile(r"[ \t]*([!-~]+)[ \t]+([!-~]+)[ \t]+([!-~]+)[ \t]+([0-9]+)[ \t]+"
                       r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)[ \t]+([!-~]+)[ \t]*\r?")


def parse_run_line(line: str, where: str) -> tuple[str, str, float] | None:
    """``(query id, docno, score)`` of one run line (None for a blank line), or one error naming ``where``."""
    if not line.strip(" \t\r\n"):
        return None
    match = _RUN_LINE.fullmatch(line.rstrip("\n"))
    if match is None:
        raise UsageError(f"{where}: not a TREC run line (6 fields separated by spaces or tabs; ASCII decimal score, "
                         f"digits for the rank): {line.strip()[:80]!r}")
    score = float(match.group(5))
    if not np.isfinite(score):
        raise UsageError(f"{where}: score {match.group(5)!r} is not finite")
    return match.group(1), match.group(3), score


def read_run(path: str) -> dict[str, list[tuple[str, float]]]:
    """Parse a TREC run into ``{query_id: [(docno, score), ...]}`` in trec_eval's order (score desc, docno desc)."""

    runs: dict[str, list[tuple[str, float]]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                parsed = parse_run_line(line, f"{path} line {number}")
                if parsed is not None:
                    runs.setdefault(parsed[0], []).append((parsed[1], parsed[2]))
    except FileNotFoundError:
        raise UsageError(f"{path}: run file not found") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    for query_id, rows in runs.items():
        docnos = [d for d, _ in rows]
        if len(set(docnos)) != len(docnos):
            raise UsageError(f"{path}: query {query_id!r} lists the same docno twice")
        rows.sort(key=lambda r: (r[1], r[0]), reverse=True)
    return runs
