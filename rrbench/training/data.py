"""Training data construction (section 5 of the research plan).

The unit is *query = criterion text (+ optional instruction), document = one sentence of the query's post
(optionally with a context window), label = its grade*. Graded labels are kept for listwise losses; a query with
several evidence sentences contributes them all as positives. **No-evidence queries never enter pairwise,
listwise or grouped losses**: those losses need at least one positive per list (ListMLE/LambdaLoss degenerate on an
all-zero list, a softmax needs a target). They may appear in pointwise rows as plain negatives, and on the
evaluation split they calibrate the decision threshold (see :mod:`rrbench.training.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rrbench.tasks.resolve import Query, Task
from rrbench.training.miners import query_rng
from rrbench.util.errors import UsageError

#: A teacher maps (query ids, global sentence ids) to scores; used by the distillation formats.
Teacher = Callable[[Sequence[str], Sequence[int]], np.ndarray]


@dataclass
class DataOptions:
    """How rows are built; recorded in the training manifest."""

    instruction: str | None = None
    context_window: int = 0
    negatives: int = 4
    group_size: int | None = None
    graded_labels: bool = False
    include_no_evidence: bool = True


@dataclass
class BuiltData:
    columns: dict[str, list[Any]]
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0


def query_text(query: Query, instruction: str | None = None) -> str:
    """The query side of a pair; an instruction is a prefix (``{query}`` in it is replaced instead when present)."""
    if not instruction:
        return query.text
    return instruction.replace("{query}", query.text) if "{query}" in instruction else f"{instruction} {query.text}"


def doc_text(task: Task, index: int, context_window: int = 0) -> str:
    """A sentence, optionally followed by up to ``context_window`` neighbours on each side within its post.

    The sentence itself always comes first, so truncation at ``max_length`` cuts context, never the sentence.
    """
    sentence = task.sentences[index]
    if context_window <= 0:
        return sentence
    post = int(task.sentence_post[index])
    start, end = int(task.post_offsets[post]), int(task.post_offsets[post + 1])
    before = task.sentences[max(start, index - context_window):index]
    after = task.sentences[index + 1:min(end, index + 1 + context_window)]
    return f"{sentence} [context] {' '.join(before)} ... {' '.join(after)}".strip()


def positives(task: Task, query: Query) -> list[tuple[int, int]]:
    """``(global id, grade)`` of every evidence sentence of the query, in post order."""
    start, _ = task.post_slice(query.post_id)
    return sorted((start + s, g) for s, g in task.qrels.get(query.query_id, {}).items() if g >= 1)


def build(task: Task, queries: Sequence[Query], input_format: str, negatives: dict[str, np.ndarray],
          options: DataOptions, seed: int = 13, teacher: Teacher | None = None,
          min_group_size: int | None = None) -> BuiltData:
    """Rows for one loss input format. ``negatives`` comes from a miner (global ids per query, hardest first)."""
    builders = {"pointwise": _pointwise, "distill-pointwise": _pointwise, "listwise": _listwise,
                "grouped": _grouped, "distill-margin": _grouped}
    if input_format not in builders:
        raise UsageError(f"unknown input format {input_format!r}; known: {', '.join(builders)}")
    if input_format.startswith("distill") and teacher is None:
        raise UsageError(f"input format {input_format} needs a teacher's scores (--teacher)")
    with_evidence = [q for q in queries if task.has_evidence(q.query_id)]
    stats = {"queries": len(queries), "queries_has_evidence": len(with_evidence),
             "queries_no_evidence": len(queries) - len(with_evidence), "queries_no_evidence_used": 0,
             "dropped_groups": 0}
    data = builders[input_format](task, queries, input_format, negatives, options, seed, teacher, min_group_size,
                                  stats)
    data.stats.update(stats, rows=len(data))
    if len(data) == 0:
        raise UsageError(f"no training rows for input format {input_format} on task {task.id!r} "
                         f"({stats['queries_has_evidence']} has-evidence queries; more negatives or a larger split?)")
    return data


def _pointwise(task: Any, queries: Any, input_format: Any, negatives: Any, options: Any, seed: Any, teacher: Any, min_group_size: Any, stats: Any) -> BuiltData:
    q_texts, d_texts, labels, keys = [], [], [], []
    for query in queries:
        pos = positives(task, query)
        if not pos:
            if not options.include_no_evidence:
                continue
            stats["queries_no_evidence_used"] += 1
        top = max((g for _, g in pos), default=1)
        rows = [(i, (g / top if options.graded_labels else 1.0)) for i, g in pos]
        rows += [(int(i), 0.0) for i in negatives.get(query.query_id, [])[:options.negatives]]
        for index, label in rows:
            q_texts.append(query_text(query, options.instruction))
            d_texts.append(doc_text(task, index, options.context_window))
            labels.append(float(label))
            keys.append((query.query_id, index))
    if input_format == "distill-pointwise" and keys:
        labels = [float(x) for x in teacher([k[0] for k in keys], [k[1] for k in keys])]
    return BuiltData({"query": q_texts, "document": d_texts, "label": labels})


def _listwise(task: Any, queries: Any, input_format: Any, negatives: Any, options: Any, seed: Any, teacher: Any, min_group_size: Any, stats: Any) -> BuiltData:
    q_texts, docs, grades = [], [], []
    for query in queries:
        pos = positives(task, query)
        if not pos:
            continue  # never in a listwise group: no positive, no ranking to learn
        negs = [int(i) for i in negatives.get(query.query_id, [])[:options.negatives]]
        if options.group_size:
            negs = negs[:max(1, options.group_size - len(pos))]
        group = [(i, g) for i, g in pos] + [(i, 0) for i in negs]
        if min_group_size and len(group) < min_group_size:
            stats["dropped_groups"] += 1
            continue
        order = query_rng(seed, query.query_id, "group").permutation(len(group))
        group = [group[j] for j in order]
        q_texts.append(query_text(query, options.instruction))
        docs.append([doc_text(task, i, options.context_window) for i, _ in group])
        grades.append([float(g) for _, g in group])
    return BuiltData({"query": q_texts, "docs": docs, "labels": grades})


def _grouped(task: Any, queries: Any, input_format: Any, negatives: Any, options: Any, seed: Any, teacher: Any, min_group_size: Any, stats: Any) -> BuiltData:
    n = int(options.negatives)
    if n < 1:
        raise UsageError(f"input format {input_format} needs --negatives >= 1, got {n}")
    columns: dict[str, list[Any]] = {"query": [], "positive": [], **{f"negative_{j + 1}": [] for j in range(n)}}
    keys: list[tuple[str, list[int]]] = []
    for query in queries:
        pos = positives(task, query)
        if not pos:
            continue  # a softmax over a group needs a positive target
        negs = [int(i) for i in negatives.get(query.query_id, [])[:n]]
        if len(negs) < n:  # every row needs exactly n negatives; padding with repeats would bias the softmax
            stats["dropped_groups"] += len(pos)
            continue
        for index, _ in pos:
            columns["query"].append(query_text(query, options.instruction))
            columns["positive"].append(doc_text(task, index, options.context_window))
            for j, neg in enumerate(negs):
                columns[f"negative_{j + 1}"].append(doc_text(task, neg, options.context_window))
            keys.append((query.query_id, [index, *negs]))
    if input_format == "distill-margin" and keys:
        flat_q = [qid for qid, ids in keys for _ in ids]
        flat_i = [i for _, ids in keys for i in ids]
        scores = np.asarray(teacher(flat_q, flat_i), dtype=np.float64).reshape(len(keys), n + 1)
        columns["label"] = [[float(row[0] - row[j]) for j in range(1, n + 1)] for row in scores]
    return BuiltData(columns)


def options_dict(options: DataOptions) -> dict[str, Any]:
    return asdict(options)
