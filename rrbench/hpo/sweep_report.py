"""What a finished (or resumed) sweep leaves in its folder, and the summary it prints.

- ``best.json``: the best feasible trial: its parameters, its run configuration and its metrics on the sweep's split
  (the record keys: ``nDCG@10``, ``false_evidence_rate``...), or ``{"feasible": false, ...}`` when no trial met the
  budget;
- ``best.yaml``: that configuration as a ``rrbench run --config`` file; it names the split it was selected on, the
  budget and the confidence of the FE bound it was selected under, and fits (calibrator, fitted threshold) on that
  split;
- ``pareto.json`` and ``pareto.png`` (nDCG@10 against FE rate), ``pareto_answer.png`` (against the answer rate on
  has-evidence queries); ``trials.csv`` (every completed trial); ``report.md`` (the tables).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rrbench.hpo.plots import pareto_png
from rrbench.hpo.space import Space
from rrbench.hpo.sweep import FE_BOUND_ATTR, SweepSetup, TrialRow, completed_rows, feasible, pareto_front
from rrbench.util.io import atomic_write_text, strict_json_dumps
from rrbench.util.text import fmt_number, md_escape


def settings_label(config: Mapping[str, Any]) -> str:
    """A configuration's inference settings in a few words (pool, fusion, rerankers, combination, decision): the
    one description every sweep and matrix table uses."""
    rerankers = config.get("reranker")
    rerankers = rerankers if isinstance(rerankers, list) else [rerankers]
    parts = [f"K={config.get('top_k_retriever')}"]
    if config.get("fusion"):
        fusion = config["fusion"]
        parts.append(f"{fusion}(k0={config.get('rrf_k'):g})" if fusion == "rrf" else
                     f"{fusion}(alpha={config.get('alpha'):g},{config.get('norm')})")
    if rerankers and rerankers != ["none"]:
        parts.append("+".join(str(r) for r in rerankers) + f"@N={config.get('top_k_rerank')}")
        if config.get("ensemble_weights"):
            parts.append("w=" + "/".join(f"{w:g}" for w in config["ensemble_weights"]))
        if config.get("interpolate"):
            parts.append(f"beta={config['interpolate']:g}")
    threshold = config.get("threshold")
    decision = config.get("abstain", "max")
    if config.get("calibrator", "none") != "none":
        decision += f",{config['calibrator']}"
    decision += f",t={threshold:.4g}" if isinstance(threshold, float) else f",t={threshold}"
    parts.append(decision)
    return " ".join(parts)


def best_key(row: TrialRow) -> tuple[float, float, int]:
    """Highest nDCG@10; among equal rankings, the decision that answers the most has-evidence queries; then the
    earliest trial. nDCG@10 does not depend on the decision, so without the second key a budget is met for free by
    abstaining on nearly everything."""
    return (round(row.ndcg, 9), row.answer if row.answer is not None else -1.0, -row.number)


def best_config_file(config: dict[str, Any], split: str, max_fe: float | None = None,
                     fe_confidence: float | None = None) -> dict[str, Any]:
    """The trial's configuration as a ``--config`` file: fits on the selection split, no cross-fitting, no split;
    where, under which false-evidence budget and with which confidence of the FE bound it was selected (recorded,
    never hashed)."""
    out = {k: v for k, v in config.items() if k not in ("split", "cross_fit", "show_progress", "cache_dir")}
    if out.get("calibrate_on"):
        out["calibrate_on"] = split
    out["selected_on"] = split
    if max_fe is not None:
        out["selected_max_fe"] = max_fe
    if fe_confidence is not None:
        out["selected_fe_confidence"] = fe_confidence
    return out


def next_step(task: Any, selected_on: str, best_yaml: Path) -> str:
    """How to confirm the chosen configuration on a split it was not selected on, among the splits the task has:
    dev_final when there is one, else the test split once (``--final``), else any other evaluation split."""
    names = [n for n in task.split_names if n not in (selected_on, "train")]
    command = f"rrbench run --config {best_yaml} --split"
    if "dev_final" in names:
        return f"confirm it: {command} dev_final"
    if "test" in names:
        return f"confirm it, once, at the end (task {task.id!r} has no dev_final): {command} test --final"
    if names:
        return f"confirm it on a split it was not selected on: {command} {names[0]}"
    return f"task {task.id!r} has no split besides {selected_on!r} to confirm it on"


def _judged(setup: SweepSetup) -> str:
    """What the budget constrains, in words: the rate, or its upper confidence bound."""
    return f"rate's {setup.fe_confidence:.0%} Wilson upper bound" if setup.fe_confidence else "rate"


def write_reports(study: Any, setup: SweepSetup, space: Space, source: Any, output: Path,
                  seconds: float) -> dict[str, Any]:
    rows = completed_rows(study)
    feasible_rows = [r for r in rows if feasible(r.bound, setup.max_fe)]
    within = {r.number for r in feasible_rows}
    best: TrialRow | None = max(feasible_rows, key=best_key) if feasible_rows else None
    front = pareto_front(rows)
    answer_front = pareto_front(rows, maximise_second=True, key="answer")
    output.mkdir(parents=True, exist_ok=True)
    if best is not None:
        body = {"feasible": True, "trial": best.number, "split": setup.split, "max_fe": setup.max_fe,
                "fe_confidence": setup.fe_confidence, "params": best.params, "config": best.config,
                "metrics": {k: best.attrs.get(k) for k in ("nDCG@10", "RR@10", "R@10", "false_evidence_rate",
                                                           FE_BOUND_ATTR, "answer_rate_has_evidence", "ece",
                                                           "brier")}}
        chosen = best_config_file(best.config, setup.split, setup.max_fe, setup.fe_confidence)
        atomic_write_text(output / "best.yaml", yaml.safe_dump(chosen, sort_keys=True))
    else:
        lowest = min((r.bound for r in rows if r.bound is not None), default=None)
        body = {"feasible": False, "split": setup.split, "max_fe": setup.max_fe, "fe_confidence": setup.fe_confidence,
                "reason": f"no completed trial has a false-evidence {_judged(setup)} <= {setup.max_fe:g} "
                          f"(lowest seen: {lowest if lowest is not None else 'none: no trial made a decision'})"}
        (output / "best.yaml").unlink(missing_ok=True)
    bundles = sorted(getattr(source, "bundles", ()))
    if bundles:  # imported score bundles the trials read (``rrbench cache import``): provenance, not configuration
        body["provenance"] = {"score_bundles": bundles}
    atomic_write_text(output / "best.json", strict_json_dumps(body))
    atomic_write_text(output / "pareto.json", strict_json_dumps({
        "fe": [{"trial": r.number, "nDCG@10": r.ndcg, "false_evidence_rate": r.fe, "config": r.config}
               for r in front],
        "answer_rate": [{"trial": r.number, "nDCG@10": r.ndcg, "answer_rate_has_evidence": r.answer}
                        for r in answer_front]}))
    title = f"Tier A on {setup.task} {setup.split}: {len(rows)} trials"
    with_fe = [r for r in rows if r.fe is not None]
    pareto_png(output / "pareto.png", [(float(r.fe or 0.0), r.ndcg) for r in with_fe],
               [(float(r.fe), r.ndcg) for r in front if r.fe is not None],
               (float(best.fe), best.ndcg) if best is not None and best.fe is not None else None, setup.max_fe, title,
               feasible=[r.number in within for r in with_fe])
    with_answer = [r for r in rows if r.answer is not None]
    pareto_png(output / "pareto_answer.png", [(float(r.answer or 0.0), r.ndcg) for r in with_answer],
               [(float(r.answer), r.ndcg) for r in answer_front if r.answer is not None],
               (float(best.answer), best.ndcg) if best is not None and best.answer is not None else None,
               setup.max_fe, title, x_label="answer rate on has-evidence queries", budget_line=False,
               feasible=[r.number in within for r in with_answer])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "nDCG@10", "false_evidence_rate", FE_BOUND_ATTR, "answer_rate_has_evidence",
                     "feasible", "settings", "params"])
    for r in sorted(rows, key=lambda r: r.number):
        writer.writerow([r.number, f"{r.ndcg:.6f}", "" if r.fe is None else f"{r.fe:.6f}",
                         "" if r.bound is None else f"{r.bound:.6f}",
                         "" if r.answer is None else f"{r.answer:.6f}", int(r.number in within), settings_label(r.config),
                         json.dumps(r.params, sort_keys=True)])
    atomic_write_text(output / "trials.csv", buffer.getvalue())
    lines = [f"# Tier A sweep: {md_escape(setup.task)} {md_escape(setup.split)}", "",
             f"{len(rows)} completed trials; constraint: false-evidence {_judged(setup)} <= {setup.max_fe:g}; "
             f"{len(feasible_rows)} feasible.", ""]
    if best is not None:
        lines += ["## Best feasible configuration", "",
                  "| trial | nDCG@10 | RR@10 | R@10 | FE rate | FE bound | answer rate | settings |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
                  f"| {best.number} | {fmt_number(best.ndcg)} | {fmt_number(best.attrs.get('RR@10'))} | "
                  f"{fmt_number(best.attrs.get('R@10'))} | {fmt_number(best.fe)} | {fmt_number(best.bound)} | "
                  f"{fmt_number(best.answer)} | "
                  f"{md_escape(settings_label(best.config))} |", ""]
    else:
        lines += [f"**No feasible configuration**: {body['reason']}. The Pareto front below shows what each "
                  f"false-evidence rate costs.", ""]
    lines += ["## Pareto front (nDCG@10 against false-evidence rate)", "",
              "| trial | FE rate | nDCG@10 | answer rate | settings |", "| ---: | ---: | ---: | ---: | --- |"]
    lines += [f"| {r.number} | {fmt_number(r.fe)} | {fmt_number(r.ndcg)} | {fmt_number(r.answer)} | "
              f"{md_escape(settings_label(r.config))} |" for r in front]
    atomic_write_text(output / "report.md", "\n".join(lines) + "\n")
    summary = [f"tier A: {len(rows)} completed trials in {output} ({seconds:.1f}s this call)"]
    if best is not None:
        bound = f" (bound {best.bound:.4f})" if setup.fe_confidence and best.bound is not None else ""
        summary.append(f"best feasible (FE {_judged(setup)} <= {setup.max_fe:g}): trial {best.number}: nDCG@10 "
                       f"{best.ndcg:.4f}, FE rate {best.fe:.4f}{bound}, answer rate {fmt_number(best.answer)}; "
                       f"{settings_label(best.config)}")
        summary.append(next_step(source.task, setup.split, output / "best.yaml"))
    else:
        summary.append(f"infeasible: {body['reason']}; the Pareto front has {len(front)} points "
                       f"({output / 'pareto.png'})")
    return {"summary": "\n".join(summary), "best": body, "front": front}
