"""What ``rrbench compare`` and ``rrbench gate`` pair up between two records, and how they say who is who.

Both commands take a metric name from the one table (:mod:`rrbench.measures.names`), so they accept the same names,
and both know its direction: a lower false-evidence rate, ECE or Brier score is better. Per-query values come from
the verified record's ``per_query`` (rank metrics; ``false_evidence`` for the false-evidence rate) or its decision
(``answered`` of the has-evidence queries, for the answer rate); ECE and Brier are aggregates only, so they can be
shown side by side but not tested query by query.

Two systems are named by their derived names (the config hash added when the names are equal) *and* the hashed
claims that differ between them, so a reader sees what was compared without opening either record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rrbench.leaderboard.verify import Verified
from rrbench.measures.names import AGGREGATE_ONLY, COMPARABLE, canonical_metric, higher_is_better, per_query_key
from rrbench.measures.significance import per_query_values
from rrbench.records.naming import component_name
from rrbench.records.schema import ComponentClaim, OutsideClaims, RunClaims
from rrbench.util.errors import UsageError


def comparable_metric(name: str) -> str:
    """The record name of ``name`` (any accepted spelling) among the metrics compare and gate accept."""
    return canonical_metric(name, COMPARABLE)


def metric_values(verified: Verified, metric: str) -> dict[str, float] | None:
    """``{query id: value}`` of ``metric`` in one record; None for a metric that has no per-query values."""
    if metric in AGGREGATE_ONLY:
        return None
    if metric == "answer_rate_has_evidence":
        decision = verified.derived.decision if verified.derived is not None else verified.record.decision
        answered = decision.answered if decision is not None else None
        if not answered:
            return {}
        evidence = per_query_values(verified.per_query, "nDCG@10")  # exactly the has-evidence queries
        return {q: float(bool(answered[q])) for q in evidence if q in answered}
    return per_query_values(verified.per_query, per_query_key(metric))


def aggregate(verified: Verified, metric: str) -> float | None:
    value = verified.metrics.get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            _flat(item, f"{prefix}.{key}", out)
    else:
        out[prefix] = value


def _component(prefix: str, claim: ComponentClaim, out: dict[str, Any]) -> None:
    """A component's options, settings and pinned weights as ``<prefix>.<name>.<key>`` lines."""
    name = component_name(claim)
    for key, value in sorted({**claim.options, **claim.settings}.items()):
        _flat(value, f"{prefix}.{name}.{key}", out)
    for key in ("revision", "weights_sha256"):
        value = getattr(claim, key)
        if value:
            out[f"{prefix}.{name}.{key}"] = value[:12] + "..." if len(value) == 64 else value


def _settings(claims: RunClaims | OutsideClaims) -> dict[str, Any]:
    """A record's hashed claims as ``setting: value`` lines, components by their display names."""
    out: dict[str, Any] = {"task": f"{claims.task.id}@{claims.task.version}", "split": claims.split}
    if isinstance(claims, OutsideClaims):
        out.update({"run": f"{claims.run.sha256[:12]}...", "threshold": claims.threshold})
        return out
    generator = claims.generator
    out["retrievers"] = " + ".join(component_name(r) for r in generator.retrievers)
    out["fusion"] = component_name(generator.fusion) if generator.fusion is not None else None
    out["context"] = generator.context
    out["top_k_retriever"] = claims.top_k_retriever
    out["rerankers"] = " + ".join(component_name(r) for r in claims.rerankers) or "none"
    out["top_k_rerank"] = claims.top_k_rerank if claims.rerankers else None
    for component in [*generator.retrievers, *([generator.fusion] if generator.fusion else [])]:
        _component("retriever", component, out)
    for component in claims.rerankers:
        _component("reranker", component, out)
    _flat(claims.combination.model_dump(mode="json"), "combination", out)
    decision = claims.decision
    out["decision.policy"] = decision.policy
    out["decision.calibrator"] = component_name(decision.calibrator) if decision.calibrator is not None else None
    _flat(decision.threshold.model_dump(mode="json"), "decision.threshold", out)
    if decision.fit is not None:
        _flat(decision.fit.model_dump(mode="json", exclude_none=True), "decision.fit", out)
    return out


def distinguishing_settings(a: Verified, b: Verified) -> list[tuple[str, Any, Any]]:
    """``(setting, value in A, value in B)`` for every hashed claim that differs between two records (task and split
    first)."""
    left, right = _settings(a.record.config), _settings(b.record.config)
    only_one = _prefixes(a.record.config) ^ _prefixes(b.record.config)
    keys = [k for k in dict.fromkeys([*left, *right]) if not any(k.startswith(p) for p in only_one)]
    return [(k, left.get(k), right.get(k)) for k in keys if left.get(k) != right.get(k)]


def _prefixes(claims: RunClaims | OutsideClaims) -> set[str]:
    """The components' setting prefixes: a component on one side only is named once (``rerankers``), not once per
    setting."""
    if isinstance(claims, OutsideClaims):
        return set()
    generator = claims.generator
    return ({f"retriever.{component_name(c)}." for c in [*generator.retrievers, *filter(None, [generator.fusion])]}
            | {f"reranker.{component_name(c)}." for c in claims.rerankers})


def names(a: Verified, b: Verified) -> tuple[str, str]:
    """Both systems' derived names; the config hash is added when they are equal."""
    if a.name == b.name:
        return f"{a.name} #{a.record.config_hash[:8]}", f"{b.name} #{b.record.config_hash[:8]}"
    return a.name, b.name


def describe_pair(a: Verified, b: Verified) -> dict[str, Any]:
    """Both systems' names and what tells them apart (for compare's and gate's reports)."""
    first, second = names(a, b)
    return {"a": first, "b": second, "differences": distinguishing_settings(a, b)}


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def settings_line(differences: list[tuple[str, Any, Any]], first: str = "A", second: str = "B") -> str:
    if not differences:
        return "settings: identical claims (the records differ only in what produced their scores)"
    return "settings that differ: " + "; ".join(f"{k}: {first} {_shown(va)}, {second} {_shown(vb)}"
                                                for k, va, vb in differences)


def direction_word(metric: str) -> str:
    return "higher is better" if higher_is_better(metric) else "lower is better"


def require_per_query(values: dict[str, float] | None, metric: str, what: str) -> dict[str, float]:
    if values is None:
        raise UsageError(f"{metric} is an aggregate without per-query values, so {what} cannot test it query by "
                         f"query; use `rrbench compare --metric {metric}` to see both values")
    return values
