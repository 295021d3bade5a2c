"""The one name of a system, derived from its hashed claims: never from free text, a path or a field a record sets.

``bm25 → minilm-l6 [K100 N20]``: the candidate generator, the rerankers, then the settings that tell two
configurations of the same components apart (pool size K, rerank depth N, max length, interpolation, the decision).
A component from a third-party plugin keeps its ``plugin:`` prefix, so a plugin that registers a built-in's name
cannot pass for the built-in. An rrbench-trained checkpoint is named from its hashed training manifest and weights
(``trained:<base>/<regime>/<loss>@<sha8>``). The board adds the config hash when two records would still share a
name, so a displayed name never stands for two configurations.
"""

from __future__ import annotations

from rrbench.records.schema import CheckpointClaim, ComponentClaim, OutsideClaims, RunClaims
from rrbench.util.text import slug

BUILTIN_PLUGIN = "rrbench"


def component_name(component: ComponentClaim) -> str:
    """A component's display name: its id, with ``plugin:`` when a third-party plugin provides it."""
    if component.checkpoint is not None:
        return checkpoint_name(component.checkpoint)
    return component.id if component.plugin == BUILTIN_PLUGIN else f"{component.plugin}:{component.id}"


def checkpoint_name(checkpoint: CheckpointClaim) -> str:
    """``trained:<base>/<regime>/<loss>@<weights sha8>`` from the hashed training manifest."""
    manifest = checkpoint.training_manifest
    found = manifest.get("base_model")
    base: dict[str, object] = found if isinstance(found, dict) else {}
    base_name = base.get("hub_id") or base.get("id") or (None if base.get("weights_source") == "local-path"
                                                           else base.get("base"))
    parts = [str(p) for p in (base_name, manifest.get("regime"), manifest.get("loss")) if p]
    return f"trained:{'/'.join(parts) or 'checkpoint'}@{checkpoint.weights_sha256[:8]}"


def generator_name(claims: RunClaims) -> str:
    names = [component_name(r) for r in claims.generator.retrievers]
    if claims.generator.fusion is None:
        return names[0]
    return f"{component_name(claims.generator.fusion)}({'+'.join(names)})"


def _number(value: float) -> str:
    return f"{value:g}"


def settings_label(claims: RunClaims) -> str:
    """The settings that distinguish configurations of the same components, shortened."""
    parts = [f"K{claims.top_k_retriever}"]
    if claims.generator.context:
        parts.append(f"ctx{claims.generator.context}")
    if claims.rerankers:
        parts.append(f"N{claims.top_k_rerank}")
        lengths = sorted({str(r.settings["max_length"]) for r in claims.rerankers
                          if r.settings.get("max_length") is not None}, key=lambda x: (len(x), x))
        if lengths:
            parts.append("len" + "/".join(lengths))
        if claims.combination.weights and len(set(claims.combination.weights)) > 1:
            parts.append("w" + "/".join(_number(float(w)) for w in claims.combination.weights))
        if claims.combination.beta:
            parts.append(f"β{_number(float(claims.combination.beta))}")
    decision = claims.decision
    if decision.policy != "max":
        parts.append(decision.policy)
    if decision.calibrator is not None:
        parts.append(component_name(decision.calibrator))
    if decision.fit is not None:
        fit = decision.fit
        if fit.cross_fit:
            parts.append(f"cross-fit{fit.cross_fit}")
        else:
            where = f"{fit.task.id}:" if fit.task is not None else ""
            parts.append(f"fit@{where}{fit.split}")
    threshold = decision.threshold
    if threshold.mode == "fixed" and threshold.value is not None:
        parts.append(f"thr{_number(float(threshold.value))}")
    elif threshold.mode in ("fit", "checkpoint"):
        parts.append(f"thr-{threshold.mode}")
    elif threshold.mode == "max-fe" and threshold.value is not None:
        parts.append(f"thr-maxfe{_number(float(threshold.value))}")
    return " ".join(parts)


def base_name(claims: RunClaims | OutsideClaims) -> str:
    """The components alone: ``bm25 → minilm-l6``, ``bm25 (no reranker)``, ``run <tag>@<sha8>``."""
    if isinstance(claims, OutsideClaims):
        tag = claims.run.tags[0] if claims.run.tags else "?"
        return f"run {tag}@{claims.run.sha256[:8]}"
    retriever = generator_name(claims)
    if not claims.rerankers or claims.top_k_rerank == 0:
        return f"{retriever} (no reranker)"
    rerankers = " + ".join(component_name(r) for r in claims.rerankers)
    if claims.combination.beta:
        rerankers += f" + {retriever}"
    return f"{retriever} → {rerankers}"


def system_name(claims: RunClaims | OutsideClaims) -> str:
    """The displayed name of a record: base name plus distinguishing settings."""
    if isinstance(claims, OutsideClaims):
        return base_name(claims) + ("" if claims.threshold is None else f" [thr{_number(float(claims.threshold))}]")
    return f"{base_name(claims)} [{settings_label(claims)}]"


def folder_name(claims: RunClaims | OutsideClaims, config_hash: str) -> str:
    """``<slug of the base name>-<config hash[:8]>``: the only folder a published record may have."""
    text = base_name(claims).replace("→", "to").replace("@", "-").replace(":", "-")
    return f"{slug(text).lower()[:80] or 'record'}-{config_hash[:8]}"
