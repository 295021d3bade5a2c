"""``rrbench reproduce``: re-run a verified record from its hashed claims, safely, and insist on the same result.

Reproduction is the documented defence against forgery, so it must not be a way to attack the reviewer:

- the run is rebuilt from the **hashed claims only** (never from free-form fields a submitter could add): components
  by their registry names, local weights by their hash (:mod:`rrbench.models.weights_index`), never by a path the
  record names;
- **remote code is never run** unless the person reproducing passes ``allow_remote_code`` (``--allow-remote-code``,
  with a loud warning): a record whose reranker needs ``trust_remote_code`` would otherwise import Python from a
  model repository the submitter controls;
- it is **binding**: the reproduction fails (exit 1) when the configuration hash, the system name or any metric or
  per-query value differs.

It sits above both writers of records (``rrbench.pipeline.runner``, ``rrbench.leaderboard.outside_runs``).
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rrbench.leaderboard.outside_runs import evaluate_run
from rrbench.leaderboard.verify import verify_record
from rrbench.models import weights_index
from rrbench.pipeline.runner import RunConfig, execute
from rrbench.records.schema import RUN_FILE, ComponentClaim, RecordError, RunClaims
from rrbench.util.errors import MissingWeightsError


def _weights_path(claim: ComponentClaim, search: Sequence[str | Path], file: Path) -> str:
    found = weights_index.find(str(claim.weights_sha256), search)
    if found is None:
        how = ""
        if claim.checkpoint is not None:
            how = "; " + obtain_hint(claim.checkpoint.training_manifest)
        raise MissingWeightsError(f"{file}: the weights of {claim.id} ({str(claim.weights_sha256)[:12]}...) are not "
                                  f"on this machine{how}")
    return str(found)


def obtain_hint(training: Mapping[str, Any]) -> str:
    """How to obtain an rrbench-trained checkpoint that is not on this machine: the training command its hashed
    manifest carries (or, for checkpoints trained before manifests carried one, the settings it does keep)."""
    command = training.get("command")
    exact = isinstance(command, str) and command.startswith("rrbench train")
    if not exact:
        command = _approximate_command(training)
    base = _mapping(training.get("base_model"))
    chained = (f"; its base {base.get('base')} is itself a local checkpoint: obtain that first"
               if base.get("weights_source") == "local-path" and base.get("base") else "")
    return (f"it was trained by rrbench: obtain it with `{command}`"
            f"{'' if exact else ' (rebuilt from the training manifest: check lr and epochs)'}{chained}, then pass "
            f"--weights DIR (a retrained checkpoint has other weights, so it reproduces the metrics only within "
            f"training noise)")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _approximate_command(training: Mapping[str, Any]) -> str:
    parts = ["rrbench", "train"]
    miner = _mapping(training.get("miner"))
    for flag, value in (("--regime", training.get("regime")), ("--loss", training.get("loss")),
                        ("--miner", miner.get("id")), ("--seed", miner.get("seed")),
                        ("--base", _mapping(training.get("base_model")).get("base")),
                        ("--eval-split", training.get("eval_split"))):
        if value is not None and value != "":
            parts += [flag, str(value)]
    return shlex.join([*parts, "--output", "DIR"])


def run_config_from_claims(claims: RunClaims, file: Path, allow_remote_code: bool = False,
                           weights: Sequence[str | Path] = ()) -> RunConfig:
    """The RunConfig that makes exactly these claims (and nothing a record could add beside them)."""
    retrievers = [r.qualified for r in claims.generator.retrievers]
    if len(retrievers) == 1:
        retriever_options = dict(claims.generator.retrievers[0].options)
    else:
        retriever_options = {f"{r.qualified}:{k}": v for r in claims.generator.retrievers for k, v in r.options.items()}
    rerankers: list[str] = []
    options: dict[str, Any] = {}
    settings: Mapping[str, Any] = {}
    model_path = None
    for claim in claims.rerankers:
        local = claim.checkpoint is not None or claim.id.startswith("local-model@")
        if local and claim.settings.get("spec"):  # a registered spec with other weights
            if len(claims.rerankers) > 1:
                raise RecordError(f"{file}: an ensemble member with --model-path cannot be reproduced")
            model_path = _weights_path(claim, weights, file)
            rerankers.append(str(claim.settings["spec"]))
        else:
            rerankers.append(_weights_path(claim, weights, file) if local else claim.qualified)
        options.update(claim.options)
        settings = claim.settings
        if claim.settings.get("trust_remote_code"):
            if not allow_remote_code:
                raise RecordError(f"{file}: reranker {claim.id} runs Python code from its model repository "
                                  f"(trust_remote_code); reproduce never runs it unless you pass --allow-remote-code "
                                  f"after reading that code")
            print(f"rrbench: WARNING: --allow-remote-code: running code from the model repository of {claim.id}, "
                  f"as the record asks", file=sys.stderr)
            options["trust_remote_code"] = True
    decision = claims.decision
    threshold: float | str | None = None
    if decision.threshold.mode == "fixed":
        threshold = float(decision.threshold.value) if decision.threshold.value is not None else None
    elif decision.threshold.mode in ("fit", "checkpoint", "max-fe"):
        threshold = decision.threshold.mode
    max_fe = decision.threshold.value if decision.threshold.mode == "max-fe" else None
    fit = decision.fit
    combination = claims.combination
    return RunConfig(
        task=claims.task.id, split=claims.split, retriever=tuple(retrievers),
        fusion=claims.generator.fusion.qualified if claims.generator.fusion else None,
        fusion_options=dict(claims.generator.fusion.options) if claims.generator.fusion else {},
        retriever_options=retriever_options, context=claims.generator.context,
        top_k_retriever=claims.top_k_retriever, reranker=tuple(rerankers) or "none",
        top_k_rerank=claims.top_k_rerank if rerankers else RunConfig.top_k_rerank,
        max_length=settings.get("max_length"), dtype=str(settings.get("dtype", "float32")),
        instruction=settings.get("instruction"), reranker_options=options, model_path=model_path,
        ensemble_weights=tuple(float(w) for w in combination.weights),
        ensemble_norm=combination.ensemble_norm, interpolate=float(combination.beta),
        interpolate_norm=combination.interpolate_norm,
        calibrator=decision.calibrator.qualified if decision.calibrator else "none",
        calibrate_on=fit.split if fit is not None and not fit.cross_fit else None,
        calibrate_task=fit.task.id if fit is not None and fit.task is not None else None,
        cross_fit=fit.cross_fit if fit is not None else None,
        seed=fit.seed if fit is not None and fit.seed is not None else 13,
        abstain=decision.policy, threshold=threshold,
        threshold_max_fe=float(max_fe) if max_fe is not None else None)


def _compare(old: Mapping[str, Any], new: Mapping[str, Any], tolerance: float) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            ok, delta = a is None and b is None, None
        else:
            delta = float(b) - float(a)
            ok = abs(delta) <= tolerance
        rows.append({"metric": key, "recorded": a, "reproduced": b, "delta": delta, "ok": ok})
    return rows


def reproduce(path: str | Path, output: str | Path | None = None, tolerance: float = 1e-9,
              cache_dir: str | None = None, use_cache: bool = True, show_progress: bool | None = None,
              allow_remote_code: bool = False, weights: Sequence[str | Path] = (),
              task_dir: str | Path | None = None) -> dict[str, Any]:
    """Verify a record, re-run its claims and compare. Returns ``{"record", "comparison", "fields", "ok"}``."""
    verified = verify_record(path, task_dir=task_dir)
    record, file = verified.record, verified.folder / "results.json"
    if verified.status == "archived":
        raise RecordError(f"{file}: {verified.note}; it cannot be reproduced")
    with tempfile.TemporaryDirectory(prefix="rrbench-reproduce-") as scratch:
        target = Path(output) if output else Path(scratch) / "out"
        if record.kind == "outside":
            claims = record.config
            new = evaluate_run(task=str(task_dir or claims.task.id), split=claims.split,  # type: ignore[union-attr]
                               run=str(verified.folder / RUN_FILE),
                               threshold=claims.threshold, output=str(target))  # type: ignore[union-attr]
        else:
            config = run_config_from_claims(record.run_claims, file, allow_remote_code, weights)
            if task_dir is not None:
                config.task = str(task_dir)
            config.output, config.cache_dir, config.use_cache = str(target), cache_dir, use_cache
            config.show_progress = show_progress
            new = execute(config)
    rows = _compare(verified.metrics, new["metrics"], tolerance)
    old_pq, new_pq = verified.per_query, new["per_query"]
    differing = sum(1 for q, values in old_pq.items() if set(new_pq.get(q, {})) != set(values) or any(
        abs(float(new_pq[q][k]) - float(v)) > tolerance for k, v in values.items()))
    fields = [
        {"field": "per_query", "recorded": f"{len(old_pq)} queries", "reproduced":
            f"{len(new_pq)} queries, {differing} differ", "ok": differing == 0 and set(old_pq) == set(new_pq)},
        {"field": "config_hash", "recorded": record.config_hash[:12], "reproduced": str(new["config_hash"])[:12],
         "ok": new["config_hash"] == record.config_hash},
        {"field": "system", "recorded": record.system, "reproduced": new["system"],
         "ok": new["system"] == record.system},
    ]
    return {"record": new, "comparison": rows, "fields": fields,
            "ok": all(r["ok"] for r in rows) and all(f["ok"] for f in fields)}
