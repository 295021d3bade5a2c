"""Transfer of a system and its decision between tasks: ``rrbench transfer`` and the matrix's transfer step.

A system selected on one task is carried to others with its decision threshold. Ranking quality and the decision
transfer differently: nDCG@10 does not depend on the decision at all, while the false-evidence (FE) rate is decided
by a threshold fitted on *some* labelled split. So for one system (a :class:`rrbench.pipeline.runner.RunConfig`
without a task), a set of tasks and a set of decision policies this computes:

- **cells**, one per (policy, source, target) ordered pair of tasks (the diagonal is the in-task reference): the
  decision fitted on the source's fit split (``dev_select``) and applied to the target's evaluation split
  (``dev_final``), exactly as ``rrbench run --task TARGET --split dev_final --calibrate-task SOURCE --calibrate-on
  dev_select`` would (one code path: :func:`rrbench.pipeline.combine.evaluate_split`). Per cell: the FE rate with
  its n (no-evidence queries) and Wilson 95% interval, "within budget" judged on the interval's upper bound, the
  answer rate (of has-evidence queries) and the precision of answered queries (the share whose top-ranked sentence
  is evidence). Interpolated and ensembled decisions read split-level z-scores standardised on the target split
  without labels, so they partly adapt to it; such cells are marked;
- **nDCG@10** once per target;
- a **label-free shift warning** per pair: the two splits' query-statistic distributions (Kolmogorov-Smirnov
  distance), their post lengths, and, where both have labels, their no-evidence shares;
- the **label curve** per (policy, target): FE and answer rate on the target's evaluation split when the threshold
  is refitted on 10, 20, 50 or all of the target's own labelled fit-split queries (seeded draws, averaged).

The test split is never read: both splits go through :func:`rrbench.records.ledger.test_split_use`, which refuses it
for fitting, and for evaluation without ``rrbench run --final`` (transfer offers no ``--final``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rrbench.measures.bounds import wilson_interval
from rrbench.pipeline.combine import SplitArrays, combine, evaluate_split
from rrbench.pipeline.decide import DecisionConfig, query_statistic
from rrbench.pipeline.runner import RunConfig, load_members, score_split
from rrbench.pipeline.score_cache import open_cache, wrap
from rrbench.records.ledger import test_split_use
from rrbench.tasks.resolve import Task, get_task
from rrbench.util.errors import UsageError
from rrbench.util.text import fmt_number, md_escape

#: decision policies by name: the threshold mode and calibrator each stands for
POLICIES: dict[str, dict[str, Any]] = {
    "fit": {"threshold_mode": "fit"},
    "max-fe": {"threshold_mode": "max-fe"},
    "platt": {"calibrator": "platt", "threshold_mode": "natural"},
}
LABEL_CURVE = (10, 20, 50)
CURVE_DRAWS = 20
#: shift flags: KS distance of the statistics, ratio of median post lengths, difference of no-evidence shares
SHIFT_KS, SHIFT_LENGTH, SHIFT_NO_EVIDENCE = 0.2, 1.5, 0.15


@dataclass
class TaskSplits:
    """One task's fit and evaluation splits as arrays, with what the shift warning compares."""

    task: Task
    fit: SplitArrays
    eval: SplitArrays
    post_lengths: dict[str, float]


def _post_lengths(task: Task, split: str) -> float:
    """Median sentences per post: of the split's queries' posts (post scope), or of every post of the corpus a
    corpus-scope query searches."""
    posts = [q.post_id for q in task.split_queries(split)] if task.spec.scope == "post" else list(task.post_ids)
    lengths = [end - start for start, end in (task.post_slice(p) for p in posts)]
    return float(np.median(lengths)) if lengths else 0.0


def load_splits(config: RunConfig, tasks: Sequence[str], fit_split: str, eval_split: str) -> dict[str, TaskSplits]:
    """Every task's two splits under ``config`` (scores through the score cache; no model loads when it holds them).
    Test labels are refused before anything is scored."""
    test_split_use(fit_split, False, "rrbench transfer --fit-split", reads_labels_for="fitting a decision")
    test_split_use(eval_split, False, "rrbench transfer --eval-split")
    if fit_split == eval_split:
        raise UsageError(f"--fit-split and --eval-split are both {fit_split!r}: the in-task reference would fit on "
                         f"the queries it decides")
    members = load_members(config)
    cache = open_cache(config.cache_dir, config.use_cache) if members else None
    if cache is not None:
        members = [wrap(m, cache) for m in members]
    out: dict[str, TaskSplits] = {}
    try:
        for name in tasks:
            task = get_task(name)
            if task.id in out:
                raise UsageError(f"--tasks names task {task.id!r} twice")
            per_task = replace(config, task=name)
            scored = {split: score_split(task, split, per_task, members).arrays for split in (fit_split, eval_split)}
            out[task.id] = TaskSplits(task, scored[fit_split], scored[eval_split],
                                      {split: _post_lengths(task, split) for split in (fit_split, eval_split)})
    finally:
        if cache is not None:
            cache.close()
    return out


def decision_for(policy: str, budget: float, fit_split: str, fit_task: str | None, abstain: str = "max"
                 ) -> DecisionConfig:
    """The decision a named policy stands for, on the system's abstention statistic (max or margin)."""
    if policy not in POLICIES:
        raise UsageError(f"unknown decision policy {policy!r}; choose from {', '.join(POLICIES)}")
    settings = POLICIES[policy]
    return DecisionConfig(policy=abstain, calibrator=settings.get("calibrator", "none"), threshold_mode=settings["threshold_mode"],
                          fit_split=fit_split, fit_task=fit_task,
                          threshold_max_fe=budget if settings["threshold_mode"] == "max-fe" else None)


def _answered_precision(data: SplitArrays, order: np.ndarray, answered: np.ndarray) -> float | None:
    """Of the answered queries, the share whose top-ranked sentence is evidence (grade >= 1)."""
    if not answered.any():
        return None
    top = np.take_along_axis(data.grades, order[:, :1], axis=1)[:, 0] >= 1
    return float(top[answered].mean())


def cell(config: RunConfig, source: TaskSplits, target: TaskSplits, policy: str, budget: float,
         fit_split: str) -> dict[str, Any]:
    """One (policy, source -> target) cell; see the module docstring."""
    combination = config.combination()
    other = source.task.id if source.task.id != target.task.id else None
    decision = decision_for(policy, budget, fit_split, other, config.abstain)
    has = target.eval.has_evidence
    n = int((~has).sum())
    try:
        outcome = evaluate_split(target.eval, combination, decision, fit=(source.fit, combination),
                                 pool_k=config.top_k_retriever, per_query=False)
    except UsageError as exc:  # e.g. a source without no-evidence queries: this cell only, said in it
        return {"policy": policy, "source": source.task.id, "target": target.task.id, "fe": None, "fe_n": n,
                "fe_wilson95": None, "within_budget": None, "answer_rate": None, "answered_precision": None,
                "threshold": None, "standardised_on_target": len(combination.rerankers) > 1 or combination.beta > 0,
                "error": f"cannot fit on {source.task.id} {fit_split}: {exc}"}
    answered = outcome.decision.answered
    false = int(answered[~has].sum())
    interval = wilson_interval(false, n) if n else None
    return {"policy": policy, "source": source.task.id, "target": target.task.id,
            "fe": false / n if n else None, "fe_n": n, "fe_wilson95": list(interval) if interval else None,
            "within_budget": (interval[1] <= budget) if interval else None,
            "answer_rate": float(answered[has].mean()) if has.any() else None,
            "answered_precision": _answered_precision(target.eval, outcome.order, answered),
            "threshold": outcome.decision.threshold,
            "standardised_on_target": len(combination.rerankers) > 1 or combination.beta > 0}


def _statistic(config: RunConfig, data: SplitArrays) -> np.ndarray:
    combined = combine(data, config.combination())
    stat = query_statistic(combined.decision, combined.head, config.abstain)
    return stat[np.isfinite(stat)]


def ks_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """The two-sample Kolmogorov-Smirnov distance (largest gap between the empirical distribution functions)."""
    if len(a) == 0 or len(b) == 0:
        return None
    grid = np.concatenate([a, b])
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def shift(config: RunConfig, source: TaskSplits, target: TaskSplits, fit_split: str, eval_split: str
          ) -> dict[str, Any]:
    """Label-free shift between the source's fit split and the target's evaluation split (the no-evidence share
    reads labels, where both tasks have them)."""
    ks = ks_distance(_statistic(config, source.fit), _statistic(config, target.eval))
    lengths = (source.post_lengths[fit_split], target.post_lengths[eval_split])
    ratio = max(lengths) / min(lengths) if min(lengths) > 0 else None
    shares = (float(1 - source.fit.has_evidence.mean()), float(1 - target.eval.has_evidence.mean()))
    flags = []
    if ks is not None and ks > SHIFT_KS:
        flags.append(f"query statistics differ (KS {ks:.2f} > {SHIFT_KS})")
    if ratio is not None and ratio > SHIFT_LENGTH:
        flags.append(f"median post lengths differ ({lengths[0]:g} vs {lengths[1]:g} sentences)")
    if abs(shares[0] - shares[1]) > SHIFT_NO_EVIDENCE:
        flags.append(f"no-evidence shares differ ({shares[0]:.2f} vs {shares[1]:.2f})")
    return {"source": source.task.id, "target": target.task.id, "ks_statistic": ks,
            "median_post_length": list(lengths), "no_evidence_share": list(shares), "flags": flags}


def label_curve(config: RunConfig, target: TaskSplits, policy: str, budget: float, fit_split: str,
                sizes: Sequence[int] = LABEL_CURVE, draws: int = CURVE_DRAWS, seed: int = 13) -> list[dict[str, Any]]:
    """FE and answer rate on the target's evaluation split when the threshold is refitted on ``n`` of the target's
    own labelled fit-split queries (``draws`` seeded draws each, averaged; a draw a fit cannot use, e.g. without
    no-evidence queries, is skipped and counted), and on all of them."""
    combination = config.combination()
    rows = []
    total = len(target.fit.query_ids)
    rng = np.random.default_rng(seed)
    has = target.eval.has_evidence
    for size in [*(s for s in sizes if s < total), total]:
        fe, answer, skipped, used = [], [], 0, 0
        for _ in range(draws if size < total else 1):
            picked = np.sort(rng.choice(total, size=size, replace=False)) if size < total else np.arange(total)
            try:
                decision = decision_for(policy, budget, fit_split, None, config.abstain)
                outcome = evaluate_split(target.eval, combination, decision,
                                         fit=(_subset(target.fit, picked), combination), per_query=False)
            except UsageError:
                skipped += 1
                continue
            answered = outcome.decision.answered
            if (~has).any():  # an evaluation split without no-evidence queries has an answer rate, not an FE rate
                fe.append(float(answered[~has].mean()))
            if has.any():
                answer.append(float(answered[has].mean()))
            used += 1
        rows.append({"labelled_queries": size, "all": size == total, "draws": used, "skipped": skipped,
                     "fe_mean": float(np.mean(fe)) if fe else None,
                     "answer_rate_mean": float(np.mean(answer)) if answer else None,
                     "within_budget_share": float(np.mean([v <= budget for v in fe])) if fe else None})
    return rows


def _subset(data: SplitArrays, rows: np.ndarray) -> SplitArrays:
    return SplitArrays([data.query_ids[i] for i in rows], data.ids[rows], data.valid[rows], data.retriever[rows],
                       data.grades[rows], data.ideal[rows], data.retriever_kind,
                       {k: v[rows] for k, v in data.rerankers.items()}, dict(data.reranker_kinds),
                       [data.groups[i] for i in rows] if data.groups else None)


def transfer_table(config: RunConfig, splits: dict[str, TaskSplits], policies: Sequence[str], budget: float,
                   fit_split: str = "dev_select", eval_split: str = "dev_final",
                   curve: bool = True) -> dict[str, Any]:
    """Cells, nDCG@10 per target, shift warnings and label curves (see the module docstring)."""
    ids = list(splits)
    combination = config.combination()
    ndcg = {}
    for t in ids:
        plain = evaluate_split(splits[t].eval, combination, DecisionConfig(), pool_k=config.top_k_retriever,
                               per_query=False)
        ndcg[t] = plain.metrics.get("nDCG@10")
    cells = [cell(config, splits[s], splits[t], p, budget, fit_split) for p in policies for s in ids for t in ids]
    shifts = [shift(config, splits[s], splits[t], fit_split, eval_split) for s in ids for t in ids if s != t]
    curves = ({f"{p}|{t}": label_curve(config, splits[t], p, budget, fit_split) for p in policies for t in ids}
              if curve else {})
    return {"tasks": ids, "fit_split": fit_split, "eval_split": eval_split, "fe_budget": budget,
            "policies": list(policies), "ndcg10": ndcg, "cells": cells, "shift": shifts, "label_curve": curves}


def render(table: dict[str, Any], system: str) -> str:
    """The transfer table as Markdown."""
    eps = table["fe_budget"]
    lines = [f"# Transfer: {md_escape(system)}", "",
             f"Decisions fitted on each source's `{table['fit_split']}`, applied on each target's "
             f"`{table['eval_split']}`; FE budget {eps:g}, judged on the Wilson 95% upper bound.", "",
             "| target | nDCG@10 |", "| --- | ---: |"]
    lines += [f"| {md_escape(t)} | {fmt_number(v)} |" for t, v in table["ndcg10"].items()]
    return "\n".join([*lines, "", *decision_lines(table)]) + "\n"


def decision_lines(table: dict[str, Any]) -> list[str]:
    """The decision part of a transfer table as Markdown lines: the cells, the shift warnings and the label curve.
    ``rrbench transfer`` and the matrix report both print it, so the two cannot drift apart."""
    lines = ["| policy | source | target | FE | n | Wilson 95% | within budget | answer rate | precision of "
             "answered |", "| --- | --- | --- | ---: | ---: | --- | --- | ---: | ---: |"]
    for c in table["cells"]:
        if c.get("error"):
            lines.append(f"| {c['policy']} | {md_escape(c['source'])} | {md_escape(c['target'])} | - | {c['fe_n']} | "
                         f"{md_escape(c['error'])} | - | - | - |")
            continue
        ci = c["fe_wilson95"]
        mark = " (standardised on target)" if c["standardised_on_target"] else ""
        within = "-" if c["within_budget"] is None else ("yes" if c["within_budget"] else "no")
        lines.append(f"| {c['policy']}{mark} | {md_escape(c['source'])} | {md_escape(c['target'])} | "
                     f"{fmt_number(c['fe'])} | {c['fe_n']} | "
                     f"{'-' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]'} | {within} | "
                     f"{fmt_number(c['answer_rate'])} | {fmt_number(c['answered_precision'])} |")
    warned = [s for s in table["shift"] if s["flags"]]
    lines += ["", "Shift warnings:" if warned else "Shift warnings: none above the flags' limits.", ""]
    lines += [f"- {md_escape(s['source'])} -> {md_escape(s['target'])}: {'; '.join(s['flags'])}" for s in warned]
    if table["label_curve"]:
        lines += ["", "Label curve (threshold refitted on n labelled target queries):", "",
                  "| policy | target | n | draws | mean FE | share within budget | mean answer rate |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for key, rows in table["label_curve"].items():
            policy, target = key.split("|", 1)
            for r in rows:
                n = f"all ({r['labelled_queries']})" if r["all"] else str(r["labelled_queries"])
                lines.append(f"| {policy} | {md_escape(target)} | {n} | {r['draws']} | {fmt_number(r['fe_mean'])} | "
                             f"{fmt_number(r['within_budget_share'])} | {fmt_number(r['answer_rate_mean'])} |")
    return lines
