"""Grouped splits and grouped k-fold keep posts and shared criteria together."""

from __future__ import annotations

from collections import defaultdict

import pytest

from rrbench.tasks.resolve import get_task, grouped_kfold, grouped_split
from rrbench.tasks.splits import query_groups

ROWS = [("a1", "p1", "c1"), ("a2", "p2", "c1"), ("a3", "p3", "c2"), ("a4", "p3", "c3"), ("a5", "p4", None),
        ("a6", "p5", "c4"), ("a7", "p6", "c5"), ("a8", "p7", "c6"), ("a9", "p8", "c6"), ("a10", "p9", None)]


def test_groups_follow_shared_posts_and_criteria():
    groups = query_groups(ROWS)
    assert groups["a1"] == groups["a2"]  # same criterion across posts
    assert groups["a3"] == groups["a4"]  # same post
    assert groups["a8"] == groups["a9"]
    assert len({groups["a1"], groups["a3"], groups["a5"], groups["a6"]}) == 4


def _no_leak(rows, assignment):
    for index in (1, 2):
        where = defaultdict(set)
        for row in rows:
            if row[index] is not None:
                where[row[index]].add(assignment[row[0]])
        assert all(len(s) == 1 for s in where.values())


def test_grouped_split_is_deterministic_and_leak_free():
    fractions = {"train": 0.6, "dev": 0.2, "test": 0.2}
    first = grouped_split(ROWS, fractions, seed=3)
    assert first == grouped_split(list(reversed(ROWS)), fractions, seed=3)
    assert set(first) == {r[0] for r in ROWS}
    _no_leak(ROWS, first)


def test_scifact_splits_are_grouped_and_near_target():
    task = get_task("scifact-evidence")
    rows = [(q.query_id, q.post_id, q.criterion_id) for q in task.queries.values()]
    _no_leak(rows, task.split_of)
    total = len(rows)
    for split, fraction in task.spec.splits.fractions.items():
        share = sum(1 for s in task.split_of.values() if s == split) / total
        assert abs(share - fraction) < 0.02, (split, share)


def test_grouped_kfold():
    folds = grouped_kfold(ROWS, k=3, seed=1)
    assert len(folds) == 3
    held = [set(h) for _, h in folds]
    assert set().union(*held) == {r[0] for r in ROWS}
    assert sum(len(h) for h in held) == len(ROWS)
    groups = query_groups(ROWS)
    for train, test in folds:
        assert not {groups[q] for q in train} & {groups[q] for q in test}
    with pytest.raises(ValueError, match="k >= 2"):
        grouped_kfold(ROWS, k=1)
