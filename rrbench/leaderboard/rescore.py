"""Spot-check re-scoring: bind a record's evidence to the models it claims (``leaderboard check --rescore N``).

A verified record is internally consistent: its numbers follow from its raw scores. Whether those scores came from
the claimed models is a separate question: an oracle that writes high scores for the evidence sentences is
consistent too. So the verifier picks ``N`` pairs per reranker and ``N`` queries per record, with a seed derived from
the record's config hash and its evidence's sha256 (the submitter cannot choose them), and

- scores the pairs again with the claimed reranker (the same weights, by hash; the same settings), comparing with
  the recorded raw scores within a tolerance declared per dtype;
- re-generates the queries' candidate pools with the claimed retrievers (and fusion), comparing ids and scores.

What cannot be loaded here (weights not on this machine, a plugin's model behind a paywall) is reported as *not
re-scored*, never as verified. Remote code is never run: a record whose reranker needs ``trust_remote_code`` is not
re-scored here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.calls import component_label, running
from rrbench.components.identity import weights_fingerprint
from rrbench.components.score_checks import check_scores
from rrbench.leaderboard.verify import Verified
from rrbench.models import weights_index
from rrbench.models.factory import load_reranker
from rrbench.pipeline.candidates import GeneratorConfig, generate
from rrbench.records.evidence import read_evidence
from rrbench.records.schema import SCORES_FILE, ComponentClaim, RecordError, RunClaims
from rrbench.tasks.loader import candidate_text
from rrbench.util.errors import RRBenchError

#: Largest accepted |recorded - re-scored| per dtype: batch composition, thread counts and kernels change the last
#: bits of a score (more at reduced precision); a forged score is off by far more.
TOLERANCE = {"float32": 2e-4, "float16": 2e-2, "bfloat16": 6e-2, "int8": 1e-1}
RETRIEVER_TOLERANCE = 1e-4


@dataclass
class Rescored:
    """The outcome for one record: ``status`` is ``re-scored`` or ``not re-scored`` (with the reason)."""

    status: str
    pairs: int = 0
    queries: int = 0
    reasons: list[str] = field(default_factory=list)


def _seed(verified: Verified) -> int:
    digest = hashlib.sha256(verified.record.config_hash.encode() +
                            (verified.folder / SCORES_FILE).read_bytes()).digest()
    return int.from_bytes(digest[:8], "little")


def _find_weights(claim: ComponentClaim, search: Sequence[str | Path]) -> str | None:
    if claim.weights_sha256 is None:
        return None
    found = weights_index.find(claim.weights_sha256, search)
    return None if found is None else str(found)


class ModelPool:
    """Models loaded for re-scoring, kept across records (a board's records share a few models)."""

    def __init__(self, search: Sequence[str | Path] = ()) -> None:
        self.search = list(search)
        self.loaded: dict[str, Any] = {}

    def reranker(self, claim: ComponentClaim, **overrides: Any) -> tuple[Any | None, str]:
        """The claimed model, or None and why not. ``overrides`` are loader options the claims do not hold because
        they never change a score (batch size, device: ``leaderboard check --time``)."""
        key = claim.model_dump_json() + json.dumps(overrides, sort_keys=True, default=str)
        if key in self.loaded:
            return self.loaded[key], ""
        if claim.settings.get("trust_remote_code"):
            return None, f"{claim.qualified} needs remote code, which the verifier never runs"
        local = claim.checkpoint is not None or claim.id.startswith("local-model@")
        model_path = _find_weights(claim, self.search) if local else None
        if local and model_path is None:
            return None, f"the weights of {claim.qualified} ({str(claim.weights_sha256)[:12]}...) are not on this " \
                         f"machine (pass --weights DIR)"
        options = {**dict(claim.options), **overrides}
        try:
            spec = str(claim.settings.get("spec") or (model_path if claim.checkpoint is not None else
                                                     "rrbench:cross-encoder")) if local else claim.qualified
            model = load_reranker(spec, model_path=model_path if spec != model_path else None,
                                  max_length=claim.settings.get("max_length"),
                                  dtype=str(claim.settings.get("dtype", "float32")),
                                  instruction=claim.settings.get("instruction"), deferred=True, **options)
        except RRBenchError as exc:
            return None, f"{claim.qualified} cannot be loaded here: {exc}"
        if claim.weights_sha256 is not None and model.weights_path and \
                weights_fingerprint(model.weights_path) != claim.weights_sha256:
            if not local and (model.spec.revision or getattr(model.spec, "packaged_weights", None)):
                raise RecordError(f"config.rerankers: {claim.qualified} claims weights {claim.weights_sha256[:12]}..., "
                                  f"but its pinned weights hash to {weights_fingerprint(model.weights_path)[:12]}...")
            return None, f"the local weights of {claim.qualified} differ from the claimed ones"
        self.loaded[key] = model
        return model, ""


def _sample(rng: np.random.Generator, items: Sequence[Any], n: int) -> list[Any]:
    if len(items) <= n:
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), size=n, replace=False))]


def rescore(verified: Verified, n: int, models: ModelPool) -> Rescored:
    """Re-score ``n`` sampled pairs per reranker and re-generate ``n`` sampled queries' pools of one record."""
    claims = verified.record.config
    if verified.status != "verified" or not isinstance(claims, RunClaims) or verified.task is None:
        return Rescored("not re-scored", reasons=[verified.note or "not a run rrbench scored"])
    task = verified.task
    evidence = read_evidence(verified.folder / SCORES_FILE)
    rng = np.random.default_rng(_seed(verified))
    queries = {q.query_id: q for q in task.split_queries(claims.split)}
    out = Rescored("re-scored")
    for j, claim in enumerate(claims.rerankers):
        model, why = models.reranker(claim)
        if model is None:
            out.reasons.append(why)
            continue
        pairs = [(row, i) for row in evidence.queries for i in range(len(row.heads[j]))]
        chosen = _sample(rng, pairs, n)
        texts = [(queries[row.query_id].text,
                  candidate_text(task, int(task.index_of(row.pool[i])), claims.generator.context))  # type: ignore[arg-type]
                 for row, i in chosen]
        label = component_label(model)
        with running(label, "score_pairs()"):  # a plugin's fault is one line naming it, as in every other command
            raw = model.score_pairs([q for q, _ in texts], [d for _, d in texts])
        fresh = check_scores(raw, len(texts), label)
        recorded = np.asarray([row.heads[j][i] for row, i in chosen], dtype=np.float64)
        tolerance = TOLERANCE.get(str(claim.settings.get("dtype", "float32")), TOLERANCE["float32"])
        worst = int(np.argmax(np.abs(fresh - recorded))) if len(fresh) else 0
        if len(fresh) and abs(fresh[worst] - recorded[worst]) > tolerance * max(1.0, abs(recorded[worst])):
            row, i = chosen[worst]
            raise RecordError(f"{verified.folder / SCORES_FILE}: query {row.query_id} candidate {row.pool[i]}: "
                              f"{claim.qualified} scores it {fresh[worst]:.6g}, the record says "
                              f"{recorded[worst]:.6g}: the scores are not the claimed model's")
        out.pairs += len(chosen)
    out.queries = _check_pools(verified, claims, evidence.queries, rng, n, out)
    if out.reasons:
        out.status = "not re-scored"
    return out


def _check_pools(verified: Verified, claims: RunClaims, rows: Iterable[Any], rng: np.random.Generator, n: int,
                 out: Rescored) -> int:
    task = verified.task
    assert task is not None
    chosen = _sample(rng, list(rows), n)
    if not chosen:
        return 0
    retrievers = tuple(r.qualified for r in claims.generator.retrievers)
    for claim in claims.generator.retrievers:
        if claim.weights_sha256 and _find_weights(claim, ()) is None and claim.plugin == "rrbench" and \
                claim.id.startswith("local"):
            out.reasons.append(f"the weights of retriever {claim.qualified} are not on this machine")
            return 0
    fusion = claims.generator.fusion
    config = GeneratorConfig(retrievers, fusion.qualified if fusion else None,
                             dict(fusion.options) if fusion else {}, claims.generator.context,
                             {r.qualified: dict(r.options) for r in claims.generator.retrievers})
    by_id = {q.query_id: q for q in task.split_queries(claims.split)}
    try:
        fresh = generate(task, claims.split, [by_id[r.query_id] for r in chosen], config, claims.top_k_retriever)
    except RRBenchError as exc:
        out.reasons.append(f"the claimed retrievers cannot run here: {exc}")
        return 0
    for row, (ids, scores) in zip(chosen, fresh.pools, strict=True):
        docnos = [task.docno(int(i)) for i in ids]
        recorded = np.asarray(row.retriever, dtype=np.float64)
        if docnos != list(row.pool) or len(scores) != len(recorded) or \
                np.max(np.abs(np.asarray(scores) - recorded), initial=0.0) > RETRIEVER_TOLERANCE * max(
                    1.0, float(np.max(np.abs(recorded), initial=0.0))):
            raise RecordError(f"{verified.folder / SCORES_FILE}: query {row.query_id}: the claimed retrievers give "
                              f"another candidate pool: the pool is not the claimed generator's")
    return len(chosen)
