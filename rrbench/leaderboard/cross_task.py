"""The cross-task view of the board: does a system hold on every task it was run on, or fail on some?

Derived from verified per-task records only (what :func:`rrbench.leaderboard.board.collect` returns). A *system*
is a configuration without its task: records of the same split whose claims are equal once the task is removed
belong to one system (a decision fitted on another task stays part of the system). Per task the system is compared
with **BM25 pinned on that task**: the BM25-alone record of the same split with the same pool size (``K``) and,
where the system retrieves with BM25, the same BM25 options (its idf scope); a task without such a record shows no
delta.

Per (system, task): the main score, the FE rate, the delta to BM25 with a bootstrap 95% interval and two one-sided
paired sign-flip tests:

- **fails on which tasks**: H1 "worse than BM25", Holm-adjusted over the system's tasks; a task whose adjusted
  p < alpha is one it fails on;
- **holds everywhere**: non-inferiority with margin ``delta`` on each task (H1 "the mean difference is above
  -delta"), combined as an intersection-union test: the system holds everywhere when every task's p < alpha. The
  IUT needs no multiplicity correction, and it is only as strong as the weakest (smallest, noisiest) task.

What a mean over a few tasks can and cannot tell is in docs/leaderboard.md ("Across tasks").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rrbench.measures.significance import ALPHA, SAMPLES, bootstrap_ci, holm, per_query_values, sign_flip_test
from rrbench.records.naming import system_name
from rrbench.records.schema import RunClaims
from rrbench.util.io import canonical_hash
from rrbench.util.text import fmt_number, md_escape

if TYPE_CHECKING:  # board.py renders this view, so the types are named, not imported at run time
    from rrbench.leaderboard.board import Board, Entry

#: the default non-inferiority margin on the main score (nDCG@10)
MARGIN = 0.01
BM25 = "bm25"


def system_key(claims: RunClaims) -> str:
    """The hash of the claims without the task: one system across tasks."""
    body = claims.model_dump(mode="json")
    body.pop("task")
    return canonical_hash(body)


def is_bm25_alone(claims: RunClaims) -> bool:
    retrievers = claims.generator.retrievers
    return (len(retrievers) == 1 and retrievers[0].id == BM25 and claims.generator.fusion is None
            and not (claims.rerankers and claims.top_k_rerank))


def pinned_bm25(entry: Entry, candidates: Sequence[Entry]) -> Entry | None:
    """The BM25-alone record of the entry's task and split with its pool size (and BM25 options, when it retrieves
    with BM25); None when the board has none."""
    claims = entry.record.config
    wanted_options = None
    if len(claims.generator.retrievers) == 1 and claims.generator.retrievers[0].id == BM25:
        wanted_options = claims.generator.retrievers[0].options
    for other in candidates:
        theirs = other.record.config
        if theirs.top_k_retriever != claims.top_k_retriever:
            continue
        if wanted_options is not None and theirs.generator.retrievers[0].options != wanted_options:
            continue
        return other
    return None


@dataclass
class TaskCell:
    task: str
    value: float | None
    fe: float | None
    bm25: float | None = None
    delta: float | None = None
    ci: tuple[float, float] | None = None
    p_worse: float | None = None
    p_worse_holm: float | None = None
    p_noninferior: float | None = None
    queries: int = 0
    #: folder names of the system's record and of the pinned BM25 record (the HTML board links their pages)
    record: str | None = None
    bm25_record: str | None = None


@dataclass
class CrossSystem:
    name: str
    split: str
    cells: list[TaskCell] = field(default_factory=list)
    #: BM25 alone: the reference the other systems are compared with, so it has no delta of its own
    reference: bool = False

    def fails_on(self, alpha: float = ALPHA) -> list[str]:
        return [c.task for c in self.cells if c.p_worse_holm is not None and c.p_worse_holm < alpha]

    def holds_everywhere(self, alpha: float = ALPHA) -> bool | None:
        """The IUT: every task non-inferior at level alpha; None when a task has no pinned BM25."""
        if any(c.p_noninferior is None for c in self.cells):
            return None
        return all(float(c.p_noninferior) < alpha for c in self.cells)  # type: ignore[arg-type]

    def worst_delta(self) -> float | None:
        """The smallest per-task difference to BM25; None when a task has none."""
        deltas = [c.delta for c in self.cells if c.delta is not None]
        return float(min(deltas)) if deltas and len(deltas) == len(self.cells) else None

    def mean(self) -> float | None:
        values = [c.value for c in self.cells if c.value is not None]
        return float(np.mean(values)) if values and len(values) == len(self.cells) else None


def _paired(entry: Entry, base: Entry, margin: float, samples: int) -> dict[str, Any]:
    main = entry.main_score
    a = per_query_values(entry.verified.per_query, main)
    b = per_query_values(base.verified.per_query, main)
    shared = sorted(set(a) & set(b))
    if not shared:
        return {}
    diff = np.asarray([a[q] - b[q] for q in shared])
    return {"delta": float(diff.mean()), "ci": bootstrap_ci(diff, samples=samples), "queries": len(shared),
            "p_worse": sign_flip_test(diff, samples, alternative="less"),
            "p_noninferior": sign_flip_test(diff, samples, alternative="greater", null_mean=-margin)}


def cross_task(groups: Mapping[tuple[str, str], Board], margin: float = MARGIN,
               samples: int = SAMPLES) -> list[CrossSystem]:
    """Every system with verified records on two or more tasks of one split (see the module docstring)."""
    by_system: dict[tuple[str, str], list[Entry]] = {}
    bm25: dict[tuple[str, str], list[Entry]] = {}
    for (task, split), board in sorted(groups.items()):
        for entry in board.verified:
            claims = entry.record.config
            if not isinstance(claims, RunClaims):
                continue
            by_system.setdefault((split, system_key(claims)), []).append(entry)
            if is_bm25_alone(claims):
                bm25.setdefault((task, split), []).append(entry)
    out = []
    for (split, _), entries in sorted(by_system.items()):
        tasks = {f"{e.record.config.task.id}@{e.record.config.task.version}" for e in entries}
        if len(tasks) < 2 or len(tasks) != len(entries):
            continue  # one task only, or several seeds/records of one task (the per-task board shows those)
        system = CrossSystem(system_name(entries[0].record.config), split,
                             reference=is_bm25_alone(entries[0].record.config))
        for entry in sorted(entries, key=lambda e: e.record.config.task.id):
            claims = entry.record.config
            task = f"{claims.task.id}@{claims.task.version}"
            cell = TaskCell(task, entry.main_value, entry.verified.metrics.get("false_evidence_rate"),
                            record=entry.path.parent.name)
            base = None if is_bm25_alone(claims) else pinned_bm25(entry, bm25.get((task, split), []))
            if base is not None:
                cell.bm25_record = base.path.parent.name
                test = _paired(entry, base, margin, samples)
                if test:
                    cell.bm25, cell.delta, cell.ci = base.main_value, test["delta"], test["ci"]
                    cell.p_worse, cell.p_noninferior, cell.queries = (test["p_worse"], test["p_noninferior"],
                                                                      test["queries"])
            system.cells.append(cell)
        tested = [c for c in system.cells if c.p_worse is not None]
        for c, adjusted in zip(tested, holm([float(c.p_worse) for c in tested]), strict=True):  # type: ignore[arg-type]
            c.p_worse_holm = adjusted
        out.append(system)
    return out


def render_cross_task(systems: Sequence[CrossSystem], margin: float = MARGIN, alpha: float = ALPHA) -> list[str]:
    """The board's "Across tasks" section (Markdown lines); empty when no system ran on two tasks."""
    if not systems:
        return []
    lines = ["## Across tasks", "",
             (f"Systems with verified records on two or more tasks of one split. Δ BM25 is the difference of the "
              f"main score to BM25 pinned on that task (same split, pool size and BM25 options), with a bootstrap "
              f"95% interval. **Fails on**: tasks where the system is worse than BM25 (one-sided paired sign-flip "
              f"test, Holm over the system's tasks, adjusted p < {alpha}). **Holds everywhere**: non-inferior to "
              f"BM25 by margin {margin:g} on every task (an intersection-union test: each task's one-sided test at "
              f"{alpha}). The mean over tasks is shown for reference only; see docs/leaderboard.md."), "",
             "| System | Split | Task | Score | FE | BM25 | Δ BM25 | 95% CI | p worse (Holm) | Fails on | Holds "
             "everywhere | Mean over tasks |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for system in systems:
        holds = system.holds_everywhere(alpha)
        verdict = "—" if holds is None else ("yes" if holds else "no")
        fails = ", ".join(system.fails_on(alpha)) or "none"
        for i, c in enumerate(system.cells):
            first = i == 0
            ci = "—" if c.ci is None else f"[{c.ci[0]:+.4f}, {c.ci[1]:+.4f}]"
            lines.append(
                f"| {md_escape(system.name) if first else ''} | {md_escape(system.split) if first else ''} | "
                f"{md_escape(c.task)} | {fmt_number(c.value)} | {fmt_number(c.fe, 2)} | {fmt_number(c.bm25)} | "
                f"{'—' if c.delta is None else f'{c.delta:+.4f}'} | {ci} | "
                f"{'—' if c.p_worse_holm is None else f'{c.p_worse_holm:.3f}'} | "
                f"{md_escape(fails) if first else ''} | {verdict if first else ''} | "
                f"{fmt_number(system.mean()) if first else ''} |")
    return [*lines, ""]
