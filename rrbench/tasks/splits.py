"""Grouped splits: no post, and no criterion shared across posts, ever appears in two splits.

A query links a post and (optionally) a criterion. Queries are grouped by the connected components of that
post-criterion graph, so training on one claim-abstract pair and evaluating on another pair of the same claim or the
same abstract cannot happen. Groups are shuffled with a seed and dealt greedily to the split that is furthest below
its target share of queries, which keeps the realised fractions close to the requested ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def query_groups(queries: Iterable[tuple[str, str, str | None]]) -> dict[str, str]:
    """Map each query id to a group key; input rows are ``(query_id, post_id, criterion_id or None)``."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    def union(a: tuple[str, str], b: tuple[str, str]) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    rows = list(queries)
    for _, post_id, criterion_id in rows:
        find(("post", post_id))
        if criterion_id is not None:
            union(("post", post_id), ("criterion", criterion_id))
    return {query_id: "|".join(find(("post", post_id))) for query_id, post_id, _ in rows}


def _deal(groups: dict[str, list[str]], names: Sequence[str], weights: Sequence[float], seed: int) -> dict[str, str]:
    keys = sorted(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    total = sum(len(v) for v in groups.values())
    targets = np.asarray(weights, dtype=float) / float(sum(weights)) * total
    filled = np.zeros(len(names))
    assignment: dict[str, str] = {}
    for index in order:
        members = groups[keys[index]]
        deficit = (targets - filled) / np.maximum(targets, 1e-12)
        choice = int(np.argmax(deficit))  # ties go to the first split listed
        filled[choice] += len(members)
        for query_id in members:
            assignment[query_id] = names[choice]
    return assignment


def grouped_split(
    queries: Iterable[tuple[str, str, str | None]], fractions: Mapping[str, float], seed: int
) -> dict[str, str]:
    """Assign every query to a split name so that whole groups stay together."""
    groups: dict[str, list[str]] = {}
    for query_id, group in query_groups(queries).items():
        groups.setdefault(group, []).append(query_id)
    return _deal(groups, list(fractions), list(fractions.values()), seed)


def grouped_kfold(
    queries: Iterable[tuple[str, str, str | None]], k: int, seed: int = 13
) -> list[tuple[list[str], list[str]]]:
    """Grouped k-fold over the given queries: ``k`` pairs of ``(train_query_ids, held_out_query_ids)``."""
    if k < 2:
        raise ValueError(f"grouped k-fold needs k >= 2, got {k}")
    rows = list(queries)
    names = [f"fold{i}" for i in range(k)]
    groups: dict[str, list[str]] = {}
    for query_id, group in query_groups(rows).items():
        groups.setdefault(group, []).append(query_id)
    if len(groups) < k:
        raise ValueError(f"grouped k-fold needs at least k={k} groups, found {len(groups)}")
    assignment = _deal(groups, names, [1.0] * k, seed)
    folds = []
    for name in names:
        held = sorted(q for q, f in assignment.items() if f == name)
        rest = sorted(q for q, f in assignment.items() if f != name)
        folds.append((rest, held))
    return folds
