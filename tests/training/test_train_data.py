"""Data construction: multi-positive queries, graded labels, no-evidence queries kept out of ranking losses."""

from __future__ import annotations

import numpy as np
import pytest

from rrbench.tasks.resolve import load_task_dir
from rrbench.testing import make_train_task
from rrbench.training.data import DataOptions, build, doc_text, query_text
from rrbench.training.miners import load_miner
from rrbench.util.errors import UsageError


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return load_task_dir(make_train_task(tmp_path_factory.mktemp("data") / "mini"))


@pytest.fixture(scope="module")
def train(task):
    queries = sorted(task.split_queries("train"), key=lambda q: q.query_id)
    return queries, load_miner("N0", seed=1).mine(task, queries, 2)


NO_EVIDENCE_TEXT = "coffee improves memory in mice"  # q4, train split, no qrels


def test_pointwise_keeps_every_positive_and_optionally_no_evidence_negatives(task, train):
    queries, negatives = train
    data = build(task, queries, "pointwise", negatives, DataOptions(negatives=2))
    q1 = [(d, y) for q, d, y in zip(*data.columns.values()) if q == "aspirin prevents heart attacks"]
    assert sum(y == 1.0 for _, y in q1) == 2 and sum(y == 0.0 for _, y in q1) == 2  # two positives kept as two
    assert NO_EVIDENCE_TEXT in data.columns["query"]
    assert all(y == 0.0 for q, y in zip(data.columns["query"], data.columns["label"]) if q == NO_EVIDENCE_TEXT)
    without = build(task, queries, "pointwise", negatives, DataOptions(negatives=2, include_no_evidence=False))
    assert NO_EVIDENCE_TEXT not in without.columns["query"]
    graded = build(task, queries, "pointwise", negatives, DataOptions(negatives=2, graded_labels=True))
    assert sorted(set(graded.columns["label"])) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("fmt", ["listwise", "grouped"])
def test_no_evidence_queries_never_reach_ranking_formats(task, train, fmt):
    queries, negatives = train
    data = build(task, queries, fmt, negatives, DataOptions(negatives=2))
    assert NO_EVIDENCE_TEXT not in data.columns["query"]
    assert data.stats["queries_no_evidence"] == 1 and data.stats["queries_no_evidence_used"] == 0


def test_listwise_groups_keep_grades_and_all_positives(task, train):
    queries, negatives = train
    data = build(task, queries, "listwise", negatives, DataOptions(negatives=2), seed=3)
    row = data.columns["query"].index("aspirin prevents heart attacks")
    docs, grades = data.columns["docs"][row], data.columns["labels"][row]
    assert sorted(grades) == [0.0, 0.0, 1.0, 2.0]
    assert grades[docs.index("Daily aspirin lowered myocardial infarction rates by a quarter.")] == 2.0
    capped = build(task, queries, "listwise", negatives, DataOptions(negatives=2, group_size=3))
    assert all(len(d) <= 3 for d in capped.columns["docs"])


def test_groups_below_the_minimum_are_dropped_and_counted(task, train):
    queries, negatives = train
    short = {**negatives, "q3": negatives["q3"][:1]}  # q3: 2 positives + 1 negative = 3 sentences
    data = build(task, queries, "listwise", short, DataOptions(negatives=2), min_group_size=4)
    assert data.stats["dropped_groups"] == 1 and data.columns["query"] == ["aspirin prevents heart attacks"]
    with pytest.raises(UsageError, match="no training rows"):
        build(task, queries, "listwise", negatives, DataOptions(negatives=2), min_group_size=50)


def test_grouped_rows_one_per_positive_and_margin_labels_from_teacher(task, train):
    queries, negatives = train
    teacher_calls = []

    def teacher(query_ids, indices):
        teacher_calls.append(list(query_ids))
        return np.asarray(indices, dtype=np.float64)  # a fake teacher: score = global sentence id

    data = build(task, queries, "distill-margin", negatives, DataOptions(negatives=2), teacher=teacher)
    assert len(data) == 4  # q1 and q3 have two positives each
    assert set(data.columns) == {"query", "positive", "negative_1", "negative_2", "label"}
    assert "q4" not in teacher_calls[0]
    first_pos = task.sentences.index(data.columns["positive"][0])
    first_neg = task.sentences.index(data.columns["negative_1"][0])
    assert data.columns["label"][0][0] == pytest.approx(first_pos - first_neg)
    with pytest.raises(UsageError, match="teacher"):
        build(task, queries, "distill-pointwise", negatives, DataOptions())


def test_instruction_and_context_window(task):
    query = task.queries["q3"]
    assert query_text(query, "Find evidence:") == "Find evidence: caffeine affects sleep"
    assert query_text(query, "<q>{query}</q>") == "<q>caffeine affects sleep</q>"
    start, _ = task.post_slice("p3")
    text = doc_text(task, start + 1, context_window=1)
    assert text.startswith("Caffeine blocks adenosine receptors in the brain.")
    assert "Coffee consumption" in text and "Tea was not studied." in text and "Sleep quality" not in text
    first_of_next_post = task.post_slice("p4")[0]
    assert "cohort" not in doc_text(task, first_of_next_post, context_window=2)  # never crosses a post boundary
