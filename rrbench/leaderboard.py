"""The leaderboard: published result records under ``leaderboard/<task>@<version>/``, and a README built from them.

``publish`` is the gate: a record gets in only if it is strict JSON with every manifest field, was made on exactly
the data the task has now (data hash), and its metrics follow from its own ``run.trec`` (recomputed here, so a
hand-edited number is caught). ``build`` regenerates ``leaderboard/README.md`` from those records alone, so the
table can never drift from the evidence behind it. Adjacent rows carry a paired randomisation test over queries, so
that two systems whose difference is noise look that way.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.io import atomic_dir, atomic_write_text
from rrbench.records import (
    RESULTS_FILE,
    RUN_FILE,
    RecordError,
    describe_system,
    ensure_record_dir,
    load_record,
    require_valid,
)

DEFAULT_DIR = "leaderboard"
README = "README.md"
METRIC_TOLERANCE = 1e-9
PERMUTATIONS = 10_000
SIGNIFICANCE = 0.05


# -- publish ---------------------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("→", "to")).strip("-").lower()[:80] or "record"


def verify_for_publication(path: str | Path) -> dict[str, Any]:
    """Every check ``publish`` makes; returns the record or raises :class:`RecordError` naming the first problem."""
    from rrbench.errors import UsageError
    from rrbench.evaluation import score_run
    from rrbench.tasks import get_task

    folder = ensure_record_dir(path)
    file = folder / RESULTS_FILE
    record = load_record(file)
    require_valid(record, str(file))
    manifest = record["manifest"]
    fallback = manifest.get("reranker_fallback") or manifest.get("fallback")
    if fallback:
        raise RecordError(f"{file}: the reranker was replaced by the retriever's ranking (--on-oom fallback: "
                          f"{fallback.get('reason') if isinstance(fallback, dict) else fallback}); such records "
                          "are not published")
    task_info = manifest["task"]
    try:
        task = get_task(task_info["id"])
    except UsageError as exc:
        raise RecordError(f"{file}: task {task_info['id']!r} is not a registered task ({exc})") from None
    if task.version != task_info["version"]:
        raise RecordError(f"{file}: record is for {task.id}@{task_info['version']}, the registered task is "
                          f"version {task.version}")
    if task.data_sha256 != task_info["data_sha256"]:
        raise RecordError(f"{file}: manifest.task.data_sha256 {str(task_info['data_sha256'])[:12]}... does not match "
                          f"task {task.id}@{task.version} ({task.data_sha256[:12]}...)")
    metrics = record["metrics"]
    cutoffs = tuple(int(k[2:]) for k in metrics if re.fullmatch(r"R@\d+", k))
    threshold = manifest["threshold"]["value"]
    recomputed, _, counts = score_run(task, manifest["split"], folder / RUN_FILE, threshold,
                                      pool_k=max(cutoffs, default=None), extra_cutoffs=cutoffs)
    for key, value in metrics.items():
        if key not in recomputed:
            continue
        fresh = recomputed[key]
        if (value is None) != (fresh is None) or (value is not None and abs(float(value) - float(fresh)) > METRIC_TOLERANCE):
            raise RecordError(f"{file}: metrics.{key} = {value!r} does not follow from {RUN_FILE} "
                              f"(recomputed {fresh!r}): the record was altered or belongs to another run")
    return record


def publish(path: str | Path, leaderboard_dir: str | Path = DEFAULT_DIR, replace: bool = False) -> Path:
    """Verify a record and copy it (``results.json`` + ``run.trec``) into the leaderboard; returns its folder."""
    record = verify_for_publication(path)
    folder = ensure_record_dir(path)
    manifest = record["manifest"]
    base = Path(leaderboard_dir) / f"{manifest['task']['id']}@{manifest['task']['version']}" / manifest["split"]
    target = base / f"{_slug(describe_system(manifest))}-{manifest['config_hash'][:8]}"
    if base.is_dir():
        for other in sorted(base.glob(f"*/{RESULTS_FILE}")):
            try:
                same = load_record(other)["manifest"].get("config_hash") == manifest["config_hash"]
            except RecordError:
                continue
            if same and not replace:
                raise RecordError(f"{other.parent}: this configuration (config hash {manifest['config_hash'][:12]}...) "
                                  "is already published; pass --replace to overwrite it")
            if same:
                shutil.rmtree(other.parent)
    with atomic_dir(target) as tmp:
        shutil.copyfile(folder / RESULTS_FILE, tmp / RESULTS_FILE)
        shutil.copyfile(folder / RUN_FILE, tmp / RUN_FILE)
    return target


# -- build -----------------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    path: Path  # results.json
    record: dict[str, Any]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.record["manifest"]

    @property
    def main_score(self) -> str:
        return self.manifest["task"]["main_score"]

    @property
    def main_value(self) -> float | None:
        value = self.record["metrics"].get(self.main_score)
        return None if value is None else float(value)


def collect(leaderboard_dir: str | Path = DEFAULT_DIR) -> dict[tuple[str, str], list[Entry]]:
    """Published records grouped by (``task@version``, split); a malformed record stops the build, naming it."""
    root = Path(leaderboard_dir)
    groups: dict[tuple[str, str], list[Entry]] = {}
    for file in sorted(root.glob(f"*@*/*/*/{RESULTS_FILE}")):
        record = load_record(file)
        require_valid(record, str(file))
        task = record["manifest"]["task"]
        expected = f"{task['id']}@{task['version']}"
        if file.parent.parent.parent.name != expected or file.parent.parent.name != record["manifest"]["split"]:
            raise RecordError(f"{file}: record for {expected} split {record['manifest']['split']} is filed in the "
                              "wrong folder")
        groups.setdefault((expected, record["manifest"]["split"]), []).append(Entry(file, record))
    for entries in groups.values():
        entries.sort(key=lambda e: (e.main_value is None, -(e.main_value or 0.0), describe_system(e.manifest),
                                    e.manifest["config_hash"]))
    return groups


def paired_randomization(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], metric: str,
                         permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[float | None, int]:
    """Two-sided paired randomisation (sign-flip) test of the mean difference over queries both records scored.

    Returns ``(p, n_queries)``; ``p`` is None when fewer than two common queries have the metric. Seeded, so the
    README is identical every time it is rebuilt.
    """
    common = sorted(q for q in a if q in b and metric in a[q] and metric in b[q])
    if len(common) < 2:
        return None, len(common)
    diff = np.asarray([a[q][metric] - b[q][metric] for q in common], dtype=np.float64)
    observed = abs(diff.mean())
    if observed == 0.0:
        return 1.0, len(common)
    rng = np.random.default_rng(seed)
    signs = rng.integers(0, 2, size=(permutations, len(diff)), dtype=np.int8) * 2 - 1
    means = np.abs((signs * diff).mean(axis=1))
    extreme = int(np.count_nonzero(means >= observed - 1e-15))
    return (extreme + 1) / (permutations + 1), len(common)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    return f"{float(value):.{digits}f}"


def _notes(manifest: Mapping[str, Any]) -> str:
    threshold = manifest.get("threshold", {})
    value = threshold.get("value")
    thr = "no threshold" if value is None else f"threshold {value:g}" + (
        " (natural)" if str(threshold.get("source", "")).startswith("natural") else "")
    if manifest.get("kind") == "evaluate":
        return f"outside run; {thr}"
    options = manifest.get("options", {})
    parts = [f"K={options.get('top_k_retriever')}"]
    if manifest.get("components", {}).get("reranker"):
        parts.append(f"N={options.get('top_k_rerank')}")
        if options.get("dtype") and options.get("dtype") != "float32":
            parts.append(str(options["dtype"]))
    return " ".join(parts) + f"; {thr}"


def render_table(entries: Sequence[Entry], base: Path) -> list[str]:
    main = entries[0].main_score
    lines = ["| Rank | System | nDCG@10 | MRR@10 | R@10 | FalseEvid | pairs/s | p vs next | Notes | Record |",
             "|------|--------|---------|--------|------|-----------|---------|-----------|-------|--------|"]
    best = entries[0].main_value
    for i, entry in enumerate(entries):
        metrics, manifest = entry.record["metrics"], entry.manifest
        cells = {"nDCG@10": _fmt(metrics.get("nDCG@10")), "MRR@10": _fmt(metrics.get("RR@10")),
                 "R@10": _fmt(metrics.get("R@10")), "FalseEvid": _fmt(metrics.get("false_evidence_rate"), 2)}
        main_key = {"RR@10": "MRR@10"}.get(main, main)
        if main_key in cells and entry.main_value is not None and entry.main_value == best:
            cells[main_key] = f"**{cells[main_key]}**"
        name = describe_system(manifest)
        if i == 0:
            name = f"**{name}**"
        p_cell = ""
        if i + 1 < len(entries):
            p, n = paired_randomization(entry.record["per_query"], entries[i + 1].record["per_query"], main)
            p_cell = "—" if p is None else (f"{p:.3f}" + ("" if p < SIGNIFICANCE else " ≈"))
        rate = manifest.get("pairs_per_s")
        link = entry.path.relative_to(base).as_posix()
        lines.append(f"| {i + 1} | {name} | {cells['nDCG@10']} | {cells['MRR@10']} | {cells['R@10']} | "
                     f"{cells['FalseEvid']} | {'—' if rate is None else f'{rate:.1f}'} | {p_cell} | "
                     f"{_notes(manifest)} | [results.json]({link}) |")
    return lines


def render(leaderboard_dir: str | Path = DEFAULT_DIR) -> str:
    """The leaderboard README as a string (deterministic: the same records always give the same bytes)."""
    base = Path(leaderboard_dir)
    groups = collect(base)
    out = ["# rrbench leaderboard", "",
           "<!-- Generated by `rrbench leaderboard build` from the records in this folder; do not edit by hand. -->",
           "",
           "Built from the published result records alone (`rrbench publish DIR` adds one after checking it). "
           "One table per task version and split, sorted by the task's main score. Rank metrics average over "
           "has-evidence queries; **FalseEvid** is the share of no-evidence queries whose list holds a score at or "
           "above the record's threshold (— when the record has no threshold). **pairs/s** is the reranker's "
           "measured throughput on the hardware in the record (— for retrieval-only runs and outside runs). "
           f"**p vs next**: two-sided paired randomisation test ({PERMUTATIONS} sign flips, over common queries) "
           f"of the main score against the next row; ≈ marks p ≥ {SIGNIFICANCE}, a difference that may be noise.",
           ""]
    if not groups:
        out += ["No records published yet.", ""]
    for (task, split), entries in sorted(groups.items()):
        out += [f"## {task} · {split}", "", f"Main score: {entries[0].main_score}. "
                f"{len(entries)} record{'s' if len(entries) != 1 else ''}.", ""]
        out += render_table(entries, base)
        out.append("")
    return "\n".join(out)


def build(leaderboard_dir: str | Path = DEFAULT_DIR) -> Path:
    """Regenerate ``<leaderboard_dir>/README.md`` from the records; returns its path."""
    text = render(leaderboard_dir)
    target = Path(leaderboard_dir) / README
    atomic_write_text(target, text)
    return target
