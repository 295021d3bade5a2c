"""From a record's claims and evidence to everything derived: the one function ``rrbench run`` writes a record with
and ``rrbench leaderboard check`` verifies one with.

Given the hashed claims, the raw per-stage scores (:mod:`rrbench.records.evidence`) and the registered task, this
rebuilds the arrays every run and sweep trial evaluates (:class:`rrbench.pipeline.combine.SplitArrays`), refits the
calibrator or threshold deterministically, and recomputes the final order, ``run.trec``'s lines, the per-query
decisions and every metric. Nothing is read from the record's own derived fields, and what the registry knows about
a component (its score kind, its plugin) wins over what a record says.

The evidence must be complete and consistent with the claims: every query of the split once and no other, pools
drawn from the task's candidates (the query's own post in post scope) in retriever order and no larger than the
claimed pool, and one raw score per reranked candidate. A missing query is refused, never counted as abstaining.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rrbench.components.registry import get_registry
from rrbench.measures.trec import final_ranking, run_lines
from rrbench.pipeline.combine import Combination, Outcome, SplitArrays, evaluate_split
from rrbench.pipeline.decide import DecisionConfig
from rrbench.records.evidence import Evidence
from rrbench.records.naming import BUILTIN_PLUGIN, checkpoint_name, system_name
from rrbench.records.schema import ComponentClaim, DerivedDecision, RecordError, RunClaims, TaskClaim
from rrbench.retrievers.fusion import load_fuser
from rrbench.tasks.loader import Query, Task
from rrbench.util.errors import UnknownComponentError, UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.text import run_tag

#: Score kinds of components that run through the generic cross-encoder backend without a registry entry of their own
LOCAL_MODEL_PREFIXES = ("trained:", "local-model@")


@dataclass
class Derived:
    """Everything that follows from claims and evidence."""

    system: str
    main_score: str
    metrics: dict[str, Any]
    per_query: dict[str, dict[str, float]]
    decision: DerivedDecision
    run_lines: list[str]
    outcome: Outcome


def _missing_plugin(component: ComponentClaim) -> str:
    if component.distribution and component.distribution != BUILTIN_PLUGIN:
        pin = f"{component.distribution}=={component.version}" if component.version else component.distribution
        install = f"it comes from plugin {component.plugin!r}; install it: pip install '{pin}'"
    else:
        install = "no installed plugin registers it"
    return f"{component.kind[:-1]} {component.qualified!r} is not registered here ({install})"


def check_registered(claims: RunClaims, where: str) -> None:
    """Every claimed component resolves in the registry (before anything else, so a missing plugin is named
    first, with what to install)."""
    components = [*claims.generator.retrievers, *claims.rerankers]
    components += [c for c in (claims.generator.fusion, claims.decision.calibrator) if c is not None]
    for component in components:
        if component.checkpoint is not None or component.id.startswith(LOCAL_MODEL_PREFIXES):
            continue
        registered_kind(component, f"{where}: config.{component.kind}")


def registered_kind(component: ComponentClaim, where: str) -> str:
    """The score kind the registry gives a claimed component; the claim must agree, and say who provides it."""
    if component.checkpoint is not None or component.id.startswith(LOCAL_MODEL_PREFIXES):
        _check_local_model(component, where)
        return str(component.score_kind)
    registry = get_registry()
    try:
        entry = registry.get(component.kind, component.qualified)
    except UnknownComponentError:
        raise RecordError(f"{where}: {_missing_plugin(component)}") from None
    if entry.distribution != component.distribution:
        raise RecordError(f"{where}: {component.qualified!r} is provided by distribution {entry.distribution!r} "
                          f"here, not {component.distribution!r} as claimed")
    kind = getattr(entry.spec, "score_kind", None)
    if component.score_kind is not None and kind is not None and component.score_kind != kind:
        raise RecordError(f"{where}: score_kind {component.score_kind!r}, but {component.qualified!r} gives {kind} "
                          f"scores")
    return str(kind or component.score_kind or "")


def _check_local_model(component: ComponentClaim, where: str) -> None:
    """A local model is named by its weights: ``local-model@<hash16>``, or, for an rrbench-trained checkpoint,
    from its hashed training manifest. Neither name can be chosen freely."""
    if component.plugin != BUILTIN_PLUGIN or component.kind != "rerankers" or not component.score_kind \
            or component.weights_sha256 is None:
        raise RecordError(f"{where}: {component.id!r}: a local model is an rrbench reranker with weights and a score "
                          f"kind")
    checkpoint = component.checkpoint
    if checkpoint is None:
        if component.id != f"local-model@{component.weights_sha256[:16]}":
            raise RecordError(f"{where}: {component.id!r} is not the name of its weights "
                              f"(local-model@{component.weights_sha256[:16]})")
        return
    if canonical_hash(checkpoint.training_manifest) != checkpoint.training_manifest_sha256:
        raise RecordError(f"{where}: {component.id!r}: checkpoint.training_manifest_sha256 is not the hash of its "
                          f"training manifest")
    if component.id != checkpoint_name(checkpoint):
        raise RecordError(f"{where}: {component.id!r} is not the name its training manifest and weights give "
                          f"({checkpoint_name(checkpoint)!r})")


def generator_kind(claims: RunClaims, where: str) -> str:
    kinds = [registered_kind(r, f"{where}.generator.retrievers") for r in claims.generator.retrievers]
    fusion = claims.generator.fusion
    if fusion is None:
        return kinds[0]
    registered_kind(fusion, f"{where}.generator.fusion")
    return str(load_fuser(fusion.qualified, fusion.options).score_kind)


def _pool_indices(task: Task, query: Query, pool: Sequence[str], where: str) -> np.ndarray:
    out = np.empty(len(pool), dtype=np.int64)
    for i, docno in enumerate(pool):
        index = task.index_of(docno)
        if index is None:
            raise RecordError(f"{where}: candidate {docno!r} is not a candidate of task {task.id!r}")
        out[i] = index
    if task.spec.scope == "post" and len(out):
        start, end = task.post_slice(query.post_id)
        stray = out[(out < start) | (out >= end)]
        if len(stray):
            raise RecordError(f"{where}: candidate {task.docno(int(stray[0]))!r} is not a sentence of the query's "
                              f"post {query.post_id!r} (task scope is 'post')")
    return out


def build_arrays(claims: RunClaims, task: Task, split: str, evidence: Evidence, where: str,
                 retriever_kind: str, reranker_kinds: Sequence[str]) -> tuple[list[Query], SplitArrays]:
    """The arrays of one split, checked against the claims and the task (see the module docstring)."""
    try:
        queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    except UsageError as exc:
        raise RecordError(f"{where}: config.split: {exc}") from None
    if evidence.split != split:
        raise RecordError(f"{where}: scores of split {evidence.split!r}, the claims say {split!r}")
    names = [r.qualified for r in claims.rerankers]
    if list(evidence.rerankers) != names:
        raise RecordError(f"{where}: scores of rerankers {list(evidence.rerankers)}, the claims say {names}")
    by_query = evidence.by_query()
    wanted = {q.query_id for q in queries}
    missing = sorted(wanted - set(by_query))
    if missing:
        raise RecordError(f"{where}: query {missing[0]!r} of split {split!r} has no scores ({len(missing)} missing): "
                          f"a record covers every query of its split")
    extra = sorted(set(by_query) - wanted)
    if extra:
        raise RecordError(f"{where}: query {extra[0]!r} is not a query of split {split!r}")
    pools: list[tuple[np.ndarray, np.ndarray]] = []
    heads: list[list[np.ndarray]] = [[] for _ in names]
    depth = claims.top_k_rerank if claims.rerankers else 0
    for query in queries:
        row = by_query[query.query_id]
        at = f"{where} query {query.query_id}"
        ids = _pool_indices(task, query, row.pool, at)
        if len(ids) > claims.top_k_retriever:
            raise RecordError(f"{at}: a pool of {len(ids)} candidates, larger than top_k_retriever "
                              f"{claims.top_k_retriever}")
        in_scope = len(task.candidates(query))
        if task.spec.scope == "post" and len(ids) < min(claims.top_k_retriever, in_scope):
            raise RecordError(f"{at}: a pool of {len(ids)} of the post's {in_scope} sentences; the retriever scores "
                              f"every sentence of the post, so the pool holds min(K, post size)")
        scores = np.asarray(row.retriever, dtype=np.float64)
        if len(scores) > 1 and np.any(np.diff(scores) > 0):
            raise RecordError(f"{at}: the pool is not in retriever order (scores must not increase)")
        pools.append((ids, scores))
        for j, head in enumerate(row.heads):
            if len(head) != min(depth, len(ids)):
                raise RecordError(f"{at}: {len(head)} scores of reranker {names[j]!r}, the claims rerank the top "
                                  f"{min(depth, len(ids))}")
            heads[j].append(np.asarray(head, dtype=np.float64))
    arrays = SplitArrays.build(task, queries, pools, retriever_kind)
    for name, member_heads, kind in zip(names, heads, reranker_kinds, strict=True):
        arrays.add_reranker(name, member_heads, kind)
    return queries, arrays


def combination_of(claims: RunClaims) -> Combination:
    combo = claims.combination
    return Combination(tuple(r.qualified for r in claims.rerankers), tuple(float(w) for w in combo.weights),
                       claims.top_k_rerank, combo.ensemble_norm, float(combo.beta), combo.interpolate_norm)


def decision_config_of(claims: RunClaims) -> DecisionConfig:
    decision = claims.decision
    fit = decision.fit
    value = None if decision.threshold.value is None else float(decision.threshold.value)
    budget = decision.threshold.mode == "max-fe"  # its value is the FE budget, not a threshold
    return DecisionConfig(
        policy=decision.policy, calibrator=decision.calibrator.qualified if decision.calibrator else "none",
        threshold_mode=decision.threshold.mode, threshold=None if budget else value,
        threshold_max_fe=value if budget else None,
        fit_split=None if fit is None or fit.cross_fit else fit.split,
        fit_task=None if fit is None or fit.task is None else fit.task.id,
        cross_fit=fit.cross_fit if fit is not None else None,
        cross_fit_seed=fit.seed if fit is not None and fit.seed is not None else 13)


def checkpoint_threshold_of(training: Mapping[str, Any], task: TaskClaim, split: str, name: str) -> float:
    """The decision threshold an rrbench-trained checkpoint carries, refused on the split it was fitted on.

    The checkpoint's training manifest says where (``threshold_fitted_on``: task id, version, data hash and split);
    the guard compares task and split, so another task's ``dev_select`` is allowed and this task's is not (nor a
    copy of this task's data under another id). A checkpoint from before that field names only the split, and is
    refused on that split name of any task: it cannot say which task it saw.
    """
    value = (training.get("threshold_calibration") or {}).get("threshold")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise UsageError(f"--threshold checkpoint: {name} carries no calibrated threshold")
    fitted = training.get("threshold_fitted_on")
    if isinstance(fitted, Mapping):
        same_data = fitted.get("task") == task.id or fitted.get("data_sha256") == task.data_sha256
        if same_data and fitted.get("split") == split:
            raise UsageError(f"--threshold checkpoint: {name}'s threshold was fitted on {task.id}:{split}, the split "
                             f"being evaluated; evaluate another split or fit one (--threshold fit --calibrate-on ...)")
    elif training.get("eval_split") == split:
        raise UsageError(f"--threshold checkpoint: {name}'s threshold was calibrated on {split!r} of a task the "
                         f"checkpoint does not record (trained before rrbench recorded it); evaluate another split, "
                         f"or fit one (--threshold fit --calibrate-on ...)")
    return float(value)


def _check_claimed_checkpoint_threshold(claims: RunClaims, where: str) -> None:
    """A claimed checkpoint threshold is the value the claimed checkpoint's training manifest carries, used off the
    split it was fitted on."""
    threshold = claims.decision.threshold
    if threshold.mode != "checkpoint":
        return
    checkpoint = claims.rerankers[0].checkpoint if len(claims.rerankers) == 1 else None
    if checkpoint is None:
        raise RecordError(f"{where}: config.decision.threshold: mode 'checkpoint' needs exactly one reranker that is "
                          f"an rrbench-trained checkpoint")
    try:
        value = checkpoint_threshold_of(checkpoint.training_manifest, claims.task, claims.split,
                                        claims.rerankers[0].id)
    except UsageError as exc:
        raise RecordError(f"{where}: config.decision.threshold: {exc}") from None
    if threshold.value is None or float(threshold.value) != value:
        raise RecordError(f"{where}: config.decision.threshold.value: {threshold.value}, but the checkpoint's "
                          f"training manifest carries {value}")


def derive(claims: RunClaims, task: Task, evidence: Evidence, fit_task: Task | None = None,
           fit_evidence: Evidence | None = None, where: str = "record") -> Derived:
    """Recompute everything a record derives (see the module docstring); one :class:`RecordError` on any fault."""
    if claims.task.id != task.id or claims.task.version != task.version or claims.task.data_sha256 != \
            task.data_sha256:
        raise RecordError(f"{where}: config.task: the claims name {claims.task.id}@{claims.task.version} "
                          f"({claims.task.data_sha256[:12]}...), not the task given ({task.id}@{task.version})")
    retriever_kind = generator_kind(claims, f"{where}: config")
    reranker_kinds = [registered_kind(r, f"{where}: config.rerankers") for r in claims.rerankers]
    if claims.decision.calibrator is not None:
        registered_kind(claims.decision.calibrator, f"{where}: config.decision.calibrator")
    queries, arrays = build_arrays(claims, task, claims.split, evidence, where, retriever_kind, reranker_kinds)
    combination = combination_of(claims)
    decision_config = decision_config_of(claims)
    _check_claimed_checkpoint_threshold(claims, where)
    _check_fit_task(claims, fit_task, where)
    try:
        combination.validate()
        decision_config.validate(claims.split)
        fit = None
        fit_claim = claims.decision.fit
        if decision_config.needs_fit and not decision_config.cross_fit:
            if fit_evidence is None or fit_claim is None or fit_claim.split is None:
                raise RecordError(f"{where}: the decision is fitted on another split, but the record has no scores "
                                  f"of it")
            _, fit_arrays = build_arrays(claims, fit_task or task, fit_claim.split, fit_evidence,
                                         f"{where} (calibration scores)", retriever_kind, reranker_kinds)
            fit = (fit_arrays, combination)
        folds = arrays.folds(int(decision_config.cross_fit), decision_config.cross_fit_seed) \
            if decision_config.cross_fit else None
        outcome = evaluate_split(arrays, combination, decision_config, fit=fit, cross_fit_folds=folds,
                                 pool_k=claims.top_k_retriever)
    except RecordError:
        raise
    except UsageError as exc:
        fit_claim = claims.decision.fit
        fitted = (f" (its decision is fitted on {(fit_task or task).id} {fit_claim.split})"
                  if fit_claim is not None and fit_claim.split is not None else "")
        raise RecordError(f"{where}: the configuration cannot be evaluated{fitted}: {exc}") from None
    main = task.spec.main_score
    if main not in outcome.metrics:
        raise RecordError(f"{where}: the task's main score {main!r} is not among the recomputed metrics")
    decision = outcome.decision
    statistic = {q: (float(v) if np.isfinite(v) else None)
                 for q, v in zip(arrays.query_ids, decision.statistic, strict=True)}
    answered = ({q: bool(a) for q, a in zip(arrays.query_ids, decision.answered, strict=True)}
                if decision.threshold is not None or decision.folds else None)
    derived_decision = DerivedDecision(
        threshold=decision.threshold, source=decision.source, scale=decision.scale, statistic=statistic,
        answered=answered, calibrator=decision.calibrator, folds=decision.folds or None,
        reliability=outcome.reliability)
    return Derived(system_name(claims), main, dict(outcome.metrics), outcome.per_query, derived_decision,
                   final_run_lines(claims, task, queries, arrays, outcome), outcome)


def _check_fit_task(claims: RunClaims, fit_task: Task | None, where: str) -> None:
    """The task a decision was fitted on, when the claims name one, is the one given (id, version and data)."""
    fit = claims.decision.fit
    claimed = fit.task if fit is not None else None
    if claimed is None:
        if fit_task is not None:
            raise RecordError(f"{where}: config.decision.fit: a fit task was given, but the claims fit on their own "
                              f"task")
        return
    if fit_task is None:
        raise RecordError(f"{where}: config.decision.fit.task: the decision was fitted on {claimed.id}@"
                          f"{claimed.version}, which was not resolved")
    if (fit_task.id, fit_task.version, fit_task.data_sha256) != (claimed.id, claimed.version, claimed.data_sha256):
        raise RecordError(f"{where}: config.decision.fit.task: the claims name {claimed.id}@{claimed.version} "
                          f"({claimed.data_sha256[:12]}...), not the task given ({fit_task.id}@{fit_task.version})")


def final_run_lines(claims: RunClaims, task: Task, queries: Sequence[Query], arrays: SplitArrays,
                    outcome: Outcome) -> list[str]:
    """``run.trec``'s lines: the measured order, with strictly decreasing scores for trec_eval."""
    combined = outcome.combined
    tag = run_tag("+".join(r.id for r in claims.rerankers) if claims.rerankers and claims.top_k_rerank else
                  "+".join(r.id for r in claims.generator.retrievers))
    lines: list[str] = []
    for row, query in enumerate(queries):
        valid = arrays.valid[row]
        pool = arrays.ids[row][valid]
        retr = arrays.retriever[row][valid]
        head = int(combined.head[row].sum()) if combined.reranked else 0
        ranked, scores = final_ranking(pool, combined.rank_scores[row, :head] if head else None, retr)
        expected = arrays.ids[row, outcome.order[row]][:len(pool)]
        if not np.array_equal(ranked, expected):  # the file must say exactly what was measured
            raise AssertionError(f"internal error: run order differs from the measured order for {query.query_id}")
        lines += run_lines(query.query_id, (task.docno(int(i)) for i in ranked), scores, tag)
    return lines
