"""``rrbench matrix report``: one summary of a research program, read from its artifacts alone.

The report never calls a model: everything in it comes from the records the workers wrote (cell files, run records
with per-query values, sweep summaries), so it can be rebuilt anywhere the artifacts folder is visible, and every
number in it can be traced to a record a user can verify. With a shared score store (PostgreSQL), it also reads the
store's counters of the matrix's workers: how many pairs each sent to a model, and whether any pair was scored twice. Paired tests use :mod:`rrbench.measures.significance` on the
records' per-query values (two-sided sign-flip randomisation over queries).

Sections: Tier B (every cell on the selection split), the levers (what changing one factor did), the finalists
(Tier A settings, seeds and folds as mean +- std), the confirmation split against the baselines, transfer, and the
scoring done through a shared score store.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrbench.hpo.matrix_tiers import (
    DECISION_TRANSFER_FILE,
    SELECTED_FILE,
    TIER_C_FILE,
    cell_info,
    headline,
    ranked_cells,
    slug,
)
from rrbench.hpo.sweep_report import settings_label
from rrbench.hpo.transfer import decision_lines
from rrbench.measures.significance import compare_pair, mean_std, per_query_values
from rrbench.pipeline.score_cache import open_store
from rrbench.util.cache_paths import database_from_env, is_database_url
from rrbench.util.io import atomic_write_text, read_json_object, strict_json_dumps
from rrbench.util.text import fmt_number, fmt_p, md_escape

if TYPE_CHECKING:
    from rrbench.hpo.matrix import Plan

METRIC = "nDCG@10"


def _record(folder: Path) -> dict[str, Any] | None:
    path = folder / "results.json"
    return read_json_object(path) if path.is_file() else None


def _per_query(record: dict[str, Any]) -> dict[str, float]:
    return per_query_values(record.get("per_query", {}), METRIC)


def _paired(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    result = compare_pair(_per_query(a), _per_query(b), METRIC)
    return {"diff": result.mean_diff, "p": result.p_value, "ci": list(result.ci_diff), "queries": result.queries,
            "wins": result.wins, "losses": result.losses}


def worker_label(plan: Plan) -> str:
    """How a matrix's workers name themselves in a shared score store's worker table."""
    return f"matrix:{plan.spec.name}"


def scoring(plan: Plan, cache_dir: str | None) -> dict[str, Any] | None:
    """The matrix's workers' counters in a shared score store (None for a store of one machine): pairs each one
    sent to a model, how many were new to the store and how many were stored already (scored twice)."""
    location = cache_dir or database_from_env()
    if location is None or not is_database_url(location):
        return None
    with open_store(location) as store:
        workers = store.worker_rows(worker_label(plan))
        shown = store.location
    if not workers:
        return None
    total = {k: sum(w[k] for w in workers) for k in ("units", "pairs_scored", "pairs_new", "pairs_duplicate")}
    return {"store": shown, "workers": workers, **total, "seconds": round(sum(w["seconds"] for w in workers), 3)}


def collect(plan: Plan, output: Path, cache_dir: str | None = None) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data."""

    spec = plan.spec
    confirm = spec.budgets.tier_c.confirm_on
    ranked = ranked_cells(plan, output)
    rows = []
    for rank, (cell, info) in enumerate(ranked, 1):
        rows.append({"rank": rank, **cell.as_dict(), "trials": info.get("trials", {}),
                     "best_params": info.get("best_params"), "dev_select": info.get("dev_select")})
    unfinished = [c.key for c in plan.cells if cell_info(output, c) is None]
    baselines = {}
    for name in spec.baseline_configs():
        record = _record(output / "leaderboards" / "baselines" / slug(name) / confirm)
        if record is not None:
            baselines[name] = record
    finals = []
    for cell, _ in ranked[:spec.budgets.tier_c.finalists]:
        folder = output / "train_runs" / cell.key
        selected = read_json_object(folder / SELECTED_FILE) if (folder / SELECTED_FILE).is_file() else None
        tier_c = read_json_object(folder / TIER_C_FILE) if (folder / TIER_C_FILE).is_file() else None
        entry: dict[str, Any] = {"cell": cell.as_dict(), "selected": selected, "tier_c": tier_c}
        system = _record(output / "leaderboards" / cell.key / f"seed-{spec.seeds[0]}" / confirm)
        plain = _record(output / "leaderboards" / cell.key / "plain" / confirm)
        if system is not None:
            entry["confirm"] = {"metrics": headline(system), "against": {
                name: _paired(system, record) for name, record in baselines.items()}}
            if plain is not None:
                entry["confirm"]["plain"] = {"metrics": headline(plain), "tier_a_lever": _paired(system, plain)}
        transfers = []
        for target in spec.transfers():
            base = output / "leaderboards" / "transfer" / slug(target.task)
            ours, bm25 = _record(base / cell.key / target.split), _record(base / "bm25" / target.split)
            if ours is not None and bm25 is not None:
                decision = base / cell.key / target.split / DECISION_TRANSFER_FILE
                transfers.append({"task": target.task, "split": target.split, "G": target.G or cell.G,
                                  "system": headline(ours), "bm25": headline(bm25),
                                  "paired": _paired(ours, bm25),
                                  "decision": read_json_object(decision) if decision.is_file() else None})
        entry["transfer"] = transfers
        finals.append(entry)
    levers = _levers(rows)
    seeds = [f["tier_c"] for f in finals if f.get("tier_c")]
    for tier_c in seeds:
        tier_c["confirm_std"] = mean_std([r[confirm][METRIC] for r in tier_c["seeds"].values()])[1]
    return {"name": spec.name, "task": spec.task, "task_data_sha256": plan.task_hash, "confirm_on": confirm,
            "cells": rows, "unfinished": unfinished,
            "skipped": [{"combination": s.combination, "reason": s.reason} for s in plan.skipped],
            "baselines": {name: headline(r) for name, r in baselines.items()}, "finalists": finals,
            "levers": levers, "scoring": scoring(plan, cache_dir)}


def _levers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each factor: the mean selection-split change between cells that differ in that factor only."""
    out = []
    for factor in ("R", "L", "N", "G", "M"):
        groups: dict[tuple, dict[str, float]] = {}
        for row in rows:
            if not row.get("dev_select") or (row["shape"] == "none" and factor in ("L", "N")):
                continue
            rest = tuple(row[f] for f in ("G", "M", "R", "L", "N") if f != factor and not (
                factor == "R" and f in ("L",)))
            groups.setdefault(rest, {})[str(row[factor])] = row["dev_select"][METRIC]
        values: dict[str, list[float]] = {}
        for group in groups.values():
            if len(group) < 2:
                continue
            best = max(group.values())
            for level, value in group.items():
                values.setdefault(level, []).append(value - best)
        for level, diffs in sorted(values.items()):
            out.append({"factor": factor, "level": level, "mean_gap_to_best": sum(diffs) / len(diffs),
                        "comparisons": len(diffs)})
    return out


def render(data: dict[str, Any]) -> str:
    """The report as Markdown (what the README quotes)."""
    confirm = data["confirm_on"]
    lines = [f"# Matrix {md_escape(data['name'])} on {md_escape(data['task'])}", "",
             f"Task data sha256 {data['task_data_sha256'][:12]}; {len(data['cells'])} finished cells"
             + (f", {len(data['unfinished'])} unfinished" if data["unfinished"] else "")
             + f", {len(data['skipped'])} skipped combinations.", "",
             "## Tier B: every cell on dev_select", "",
             "| rank | cell | R | L | N | trials (done/pruned/failed) | best parameters | nDCG@10 | RR@10 | R@10 |",
             "| ---: | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
    for row in data["cells"]:
        t = row["trials"] or {}
        params = md_escape(", ".join(f"{k}={fmt_number(v, 6) if isinstance(v, float) else v}"
                                     for k, v in sorted((row["best_params"] or {}).items())) or "-")
        d = row["dev_select"]
        lines.append(f"| {row['rank']} | {md_escape(row['key'])} | {md_escape(row['R'])} | {md_escape(row['L'] or '-')} | "
                     f"{md_escape(row['N'] or '-')} | "
                     f"{t.get('complete', 0)}/{t.get('pruned', 0)}/{t.get('fail', 0)} | {params} | "
                     f"{fmt_number(d.get(METRIC))} | {fmt_number(d.get('RR@10'))} | {fmt_number(d.get('R@10'))} |")
    if data["levers"]:
        lines += ["", "## Levers (dev_select nDCG@10, mean gap to the best level among cells differing only in that "
                  "factor)", "", "| factor | level | mean gap to best | comparisons |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {md_escape(lv['factor'])} | {md_escape(lv['level'])} | {lv['mean_gap_to_best']:+.4f} | {lv['comparisons']} |"
                  for lv in data["levers"]]
    for final in data["finalists"]:
        cell = final["cell"]
        lines += ["", "## Finalist " + md_escape(f"{cell['key']}: R={cell['R']} L={cell['L'] or '-'} "
                                                f"N={cell['N'] or '-'} G={cell['G']}"), ""]
        selected = final.get("selected")
        if selected:
            tier_a = selected.get("tier_a")
            if tier_a:
                best = tier_a["best"]
                lines.append(f"Tier A: {tier_a['trials']} trials, FE <= {tier_a['max_fe']:g}: "
                             + (f"selected {md_escape(settings_label(selected['config']))} (dev_select nDCG@10 "
                                f"{fmt_number(best['metrics']['nDCG@10'])}, FE {fmt_number(best['metrics']['false_evidence_rate'])})"
                                if tier_a["feasible"] else selected.get("note", "infeasible")))
            else:
                lines.append(f"No Tier A sweep: {md_escape(settings_label(selected['config']))}.")
        tier_c = final.get("tier_c")
        if tier_c:
            lines += ["", f"| seed | dev_select nDCG@10 | {confirm} nDCG@10 | {confirm} FE | {confirm} answer rate |",
                      "| ---: | ---: | ---: | ---: | ---: |"]
            for seed, row in tier_c["seeds"].items():
                c = row[confirm]
                lines.append(f"| {seed} | {fmt_number(row['dev_select'][METRIC])} | {fmt_number(c[METRIC])} | "
                             f"{fmt_number(c['false_evidence_rate'])} | {fmt_number(c['answer_rate_has_evidence'])} |")
            m1, s1 = tier_c["dev_select_nDCG@10_mean_std"]
            m2, s2 = tier_c[f"{confirm}_nDCG@10_mean_std"]
            lines.append(f"| mean +- std ({len(tier_c['seeds'])} seeds) | {m1:.4f} +- {s1:.4f} | "
                         f"{m2:.4f} +- {s2:.4f} | | |")
            if tier_c.get("folds"):
                m, s = tier_c["folds_nDCG@10_mean_std"]
                lines.append("")
                lines.append(f"Grouped {len(tier_c['folds'])}-fold over train (held-out fold nDCG@10): "
                             f"{m:.4f} +- {s:.4f} (" + ", ".join(fmt_number(r[METRIC]) for r in tier_c["folds"].values())
                             + ")")
        conf = final.get("confirm")
        if conf:
            lines += ["", f"On {confirm} (seed {next(iter(tier_c['seeds'])) if tier_c else ''} model, selected "
                      f"configuration): nDCG@10 {fmt_number(conf['metrics'][METRIC])}, FE "
                      f"{fmt_number(conf['metrics']['false_evidence_rate'])}.", "",
                      "| against | its nDCG@10 | difference | 95% CI | p (paired randomisation) | wins/losses |",
                      "| --- | ---: | ---: | --- | ---: | ---: |"]
            rows = list(conf["against"].items())
            if conf.get("plain"):
                rows.append(("the same model without Tier A settings", {**conf["plain"]["tier_a_lever"],
                             "theirs": conf["plain"]["metrics"][METRIC]}))
            for name, test in rows:
                theirs = test.get("theirs", data["baselines"].get(name, {}).get(METRIC))
                lines.append(f"| {md_escape(name)} | {fmt_number(theirs)} | {test['diff']:+.4f} | [{test['ci'][0]:+.4f}, "
                             f"{test['ci'][1]:+.4f}] | {fmt_p(test['p'])} | {test['wins']}/{test['losses']} |")
        if final.get("transfer"):
            lines += ["", "Transfer (model and settings unchanged; the decision refits on the target's dev_select):", "",
                      "| task | split | generator | nDCG@10 | BM25 nDCG@10 | difference | p | FE | answer rate |",
                      "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for t in final["transfer"]:
                lines.append(f"| {md_escape(t['task'])} | {md_escape(t['split'])} | {md_escape(t['G'])} | {fmt_number(t['system'][METRIC])} | "
                             f"{fmt_number(t['bm25'][METRIC])} | {t['paired']['diff']:+.4f} | {fmt_p(t['paired']['p'])} | "
                             f"{fmt_number(t['system'].get('false_evidence_rate'))} | "
                             f"{fmt_number(t['system'].get('answer_rate_has_evidence'))} |")
            for t in final["transfer"]:
                if t.get("decision"):
                    lines += ["", f"Transfer of the decision to {md_escape(t['task'])} {md_escape(t['split'])} "
                                  f"(fitted on the source's {t['decision']['fit_split']}, applied on the target's "
                                  f"split; within budget judged on the Wilson 95% upper bound):", "",
                              *decision_lines(t["decision"])]
    if data["baselines"]:
        lines += ["", f"## Baselines on {confirm}", "", "| baseline | nDCG@10 | RR@10 | R@10 | FE |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {md_escape(name)} | {fmt_number(m[METRIC])} | {fmt_number(m['RR@10'])} | {fmt_number(m['R@10'])} | "
                  f"{fmt_number(m['false_evidence_rate'])} |" for name, m in data["baselines"].items()]
    if data.get("scoring"):
        lines += _render_scoring(data["scoring"])
    return "\n".join(lines) + "\n"


def _render_scoring(info: dict[str, Any]) -> list[str]:
    twice = info["pairs_duplicate"]
    lines = ["", f"## Scoring through the shared score store ({info['store']})", "",
             f"{len(info['workers'])} workers sent {info['pairs_scored']} pairs to the models in {info['units']} fill "
             f"units; {info['pairs_new']} were new to the store, "
             + ("so each pair was scored once." if not twice and info["pairs_scored"] == info["pairs_new"]
                else f"{twice} were stored already (scored twice)."), "",
             "| worker | units | pairs scored | new | stored already | model seconds | pairs/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in info["workers"]:
        lines.append(f"| {w['worker']} | {w['units']} | {w['pairs_scored']} | {w['pairs_new']} | "
                     f"{w['pairs_duplicate']} | {w['seconds']:.1f} | {fmt_number(w['pairs_per_s'], 1)} |")
    return lines


def write_report(plan: Plan, output: Path, cache_dir: str | None = None) -> dict[str, Any]:
    """``report.json`` and ``report.md`` in the output folder (atomically); returns the data. ``cache_dir``: the
    score store the workers used (a shared one adds the scoring section)."""

    data = collect(plan, output, cache_dir)
    for final in data["finalists"]:  # the finalists' Tier A trade-off curves beside the report
        key = final["cell"]["key"]
        png = output / "hpo" / "tier-a" / key / "pareto.png"
        if png.is_file():
            (output / "plots").mkdir(exist_ok=True)
            shutil.copyfile(png, output / "plots" / f"tier-a-{key}.png")
    atomic_write_text(output / "report.json", strict_json_dumps(data))
    atomic_write_text(output / "report.md", render(data))
    return data
