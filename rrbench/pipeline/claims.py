"""What a run claims, built from its configuration and the components the registry resolved: the hashed part of
its record (:class:`rrbench.records.schema.RunClaims`).

Every component is named as the registry knows it (spec id, the plugin and distribution that registered it), never
as the user typed it: ``--reranker minilm`` (an alias) and ``--reranker rrbench:minilm-l6`` make the same claim.
Weights are named by content: a local folder never appears, only its weights' hash, and an rrbench-trained
checkpoint is named from its hashed training manifest (:mod:`rrbench.records.naming`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rrbench.components.identity import NOT_SCORE_OPTIONS, weights_fingerprint
from rrbench.components.registry import Entry, resolve
from rrbench.components.specs import validate_options
from rrbench.pipeline.candidates import GeneratorConfig, retriever_identity
from rrbench.pipeline.decide import DecisionConfig
from rrbench.records.naming import BUILTIN_PLUGIN, checkpoint_name
from rrbench.records.schema import (
    CheckpointClaim,
    CombinationClaim,
    ComponentClaim,
    DecisionClaim,
    FitClaim,
    GeneratorClaim,
    RunClaims,
    TaskClaim,
    ThresholdClaim,
)
from rrbench.tasks.loader import Task
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash


def task_claim(task: Task) -> TaskClaim:
    return TaskClaim(id=task.id, version=task.version, data_sha256=task.data_sha256)


def _entry_fields(entry: Entry) -> dict[str, Any]:
    """Who provides a component: rrbench's own version is provenance, a third-party plugin's is part of the claim."""
    return {"plugin": entry.plugin, "distribution": entry.distribution,
            "version": entry.version if entry.plugin != BUILTIN_PLUGIN else None}


def retriever_claim(name: str, options: Mapping[str, Any], model_path: str | None = None) -> ComponentClaim:
    entry = resolve("retrievers", name)
    identity = retriever_identity(name, model_path, **dict(options))
    return ComponentClaim(kind="retrievers", id=entry.spec.id, **_entry_fields(entry), revision=entry.spec.revision,
                          weights_sha256=identity.get("weights_sha256"), score_kind=entry.spec.score_kind,
                          options=dict(identity["options"]))


def fuser_claim(name: str, options: Mapping[str, Any]) -> ComponentClaim:
    entry = resolve("fusers", name)
    return ComponentClaim(kind="fusers", id=entry.spec.id, **_entry_fields(entry),
                          options=validate_options(entry.spec, dict(options)))


def generator_claim(generator: GeneratorConfig, model_path: str | None = None) -> GeneratorClaim:
    retrievers = [retriever_claim(name, generator.retriever_options.get(name, {}),
                                  model_path if len(generator.retrievers) == 1 else None)
                  for name in generator.retrievers]
    fusion = fuser_claim(generator.fusion, generator.fusion_options) if generator.fusion else None
    return GeneratorClaim(retrievers=retrievers, fusion=fusion, context=generator.context)


def checkpoint_claim(info: Mapping[str, Any]) -> CheckpointClaim:
    manifest = dict(info.get("training_manifest") or {})
    return CheckpointClaim(weights_sha256=str(info["weights_sha256"]), training_manifest=manifest,
                           training_manifest_sha256=canonical_hash(manifest))


def reranker_claim(name: str, member: Any, checkpoint: Mapping[str, Any] | None, max_length: int | None,
                   dtype: str, instruction: str | None) -> ComponentClaim:
    """A reranker as it scored: registered (id, plugin, revision, weights hash), an rrbench-trained checkpoint
    (named from its training manifest) or another local model (named by its weights' hash)."""
    spec = member.spec
    options = {k: v for k, v in sorted(member.options.extra.items()) if k not in NOT_SCORE_OPTIONS}
    settings: dict[str, Any] = {"max_length": max_length or spec.max_length, "dtype": dtype}
    if instruction is not None:
        settings["instruction"] = instruction
    if member.options.trust_remote_code:
        settings["trust_remote_code"] = True
    weights = weights_fingerprint(member.weights_path) if member.weights_path else None
    if checkpoint is not None and checkpoint.get("weights_sha256"):
        ck = checkpoint_claim(checkpoint)
        return ComponentClaim(kind="rerankers", id=checkpoint_name(ck), plugin=BUILTIN_PLUGIN,
                              distribution=BUILTIN_PLUGIN, weights_sha256=weights, score_kind=member.score_kind,
                              options=options, settings=settings, checkpoint=ck)
    if member.weights_source == "local-path" and weights is not None:
        try:  # --reranker SPEC --model-path DIR: other weights under a registered spec's backend and template
            entry = resolve("rerankers", name)
            settings["spec"] = entry.qualified_name
        except UsageError:
            pass
        return ComponentClaim(kind="rerankers", id=f"local-model@{weights[:16]}", plugin=BUILTIN_PLUGIN,
                              distribution=BUILTIN_PLUGIN, weights_sha256=weights, score_kind=member.score_kind,
                              options=options, settings=settings)
    try:
        entry = resolve("rerankers", name)
        fields = _entry_fields(entry)
    except UsageError:  # an unregistered hub id runs through the generic backend; check refuses it
        fields = {"plugin": BUILTIN_PLUGIN, "distribution": BUILTIN_PLUGIN, "version": None}
    return ComponentClaim(kind="rerankers", id=spec.id, **fields, revision=member.revision, weights_sha256=weights,
                          score_kind=member.score_kind, options=options, settings=settings)


def calibrator_claim(name: str) -> ComponentClaim:
    entry = resolve("calibrators", name)
    return ComponentClaim(kind="calibrators", id=entry.spec.id, **_entry_fields(entry),
                          options=dict(entry.spec.options))


def decision_claim(config: DecisionConfig, fit_task: Task | None = None) -> DecisionClaim:
    fit = None
    if config.needs_fit:
        fit = (FitClaim(cross_fit=config.cross_fit, seed=config.cross_fit_seed) if config.cross_fit else
               FitClaim(split=config.fit_split, task=task_claim(fit_task) if fit_task is not None else None))
    if fit_task is not None and fit_task.id != config.fit_task:
        raise UsageError(f"internal error: the decision is fitted on task {config.fit_task!r}, not {fit_task.id!r}")
    if config.fit_task is not None and fit_task is None:
        raise UsageError(f"the decision is fitted on task {config.fit_task!r}, which the claims must name")
    value = config.threshold if config.threshold_mode in ("fixed", "checkpoint") else None
    if config.threshold_mode == "max-fe":  # the budget is configuration; the threshold it gives is data
        value = config.threshold_max_fe
    return DecisionClaim(policy=config.policy,  # type: ignore[arg-type]
                         calibrator=calibrator_claim(config.calibrator) if config.calibrator != "none" else None,
                         threshold=ThresholdClaim(mode=config.threshold_mode, value=value),  # type: ignore[arg-type]
                         fit=fit)


def run_claims(*, task: Task, split: str, generator: GeneratorConfig, top_k_retriever: int,
               rerankers: Sequence[ComponentClaim], top_k_rerank: int, weights: Sequence[float], ensemble_norm: str,
               beta: float, interpolate_norm: str, decision: DecisionClaim,
               retriever_model_path: str | None = None) -> RunClaims:
    several = len(rerankers) > 1
    combination = CombinationClaim(weights=[float(w) for w in weights] if several else [],
                                   ensemble_norm=ensemble_norm if several else "minmax",  # type: ignore[arg-type]
                                   beta=float(beta) if rerankers else 0.0,
                                   interpolate_norm=interpolate_norm if beta else "minmax")  # type: ignore[arg-type]
    return RunClaims(task=task_claim(task), split=split,
                     generator=generator_claim(generator, retriever_model_path),
                     top_k_retriever=top_k_retriever, rerankers=list(rerankers),
                     top_k_rerank=top_k_rerank if rerankers else 0, combination=combination, decision=decision)
