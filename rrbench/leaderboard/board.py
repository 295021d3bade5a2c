"""The leaderboard: published result records under ``leaderboard/<task>@<version>/<split>/``, and a README built
from them.

``publish`` is the submission: it runs every check of :mod:`rrbench.leaderboard.verify` and files the record under its derived
name with a ``SHA256SUMS`` manifest, appending a line to ``CHANGELOG.md``. ``build`` regenerates the README from the
records alone (so the table never drifts from its evidence), and ``check`` is what a leaderboard's CI runs: every
record verified, and the committed README exactly what ``build`` would write.

Each table shows the main score with a seeded 95% bootstrap interval over queries, compares every row with the
leader by the paired randomisation test corrected for multiple comparisons (Holm by default, randomised Tukey HSD
as an option), marks rows not significantly different from the leader as tied, and folds records that differ only in
the training seed into one row (mean ± std). A board whose task version was bumped is marked superseded.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.leaderboard.verify import LEDGER_FILE, registered_version, verify_record, write_sums
from rrbench.measures.significance import (
    ALPHA,
    SAMPLES,
    bootstrap_ci,
    compare_with_leader,
    mean_std,
    per_query_values,
)
from rrbench.records.record import (
    RESULTS_FILE,
    RUN_FILE,
    RecordError,
    ensure_record_dir,
    load_record,
    record_folder_name,
    require_valid,
    system_identity,
)
from rrbench.util.io import atomic_dir, atomic_write_text, canonical_hash
from rrbench.util.text import fmt_number

#: the board's cells: rrbench's number format, with a dash for what a record does not have
_cell = partial(fmt_number, missing="—")

DEFAULT_DIR = "leaderboard"
README = "README.md"
CHANGELOG = "CHANGELOG.md"
METHODS = ("holm", "tukey")


# -- publish ---------------------------------------------------------------------------------------------------------
def board_dir(leaderboard_dir: str | Path, manifest: Mapping[str, Any]) -> Path:
    return Path(leaderboard_dir) / f"{manifest['task']['id']}@{manifest['task']['version']}" / manifest["split"]


def publish(path: str | Path, leaderboard_dir: str | Path = DEFAULT_DIR, replace: bool = False) -> Path:
    """Verify a record and file it (``results.json``, ``run.trec``, ``SHA256SUMS``); returns its folder."""
    record = verify_record(path, ledger=Path(leaderboard_dir) / LEDGER_FILE)
    folder = ensure_record_dir(path)
    manifest = record["manifest"]
    base = board_dir(leaderboard_dir, manifest)
    target = base / record_folder_name(manifest)
    replaced = False
    for other in sorted(base.glob(f"*/{RESULTS_FILE}")) if base.is_dir() else []:
        try:
            same = load_record(other)["manifest"].get("config_hash") == manifest["config_hash"]
        except RecordError:
            continue
        if same and not replace:
            raise RecordError(f"{other.parent}: this configuration (config hash {manifest['config_hash'][:12]}...) "
                              "is already published; pass --replace to overwrite it")
        if same:
            shutil.rmtree(other.parent)
            replaced = True
    with atomic_dir(target) as tmp:
        shutil.copyfile(folder / RESULTS_FILE, tmp / RESULTS_FILE)
        shutil.copyfile(folder / RUN_FILE, tmp / RUN_FILE)
        write_sums(tmp)
    _append_changelog(Path(leaderboard_dir), record, target, replaced)
    return target


def _append_changelog(root: Path, record: Mapping[str, Any], target: Path, replaced: bool) -> None:
    manifest = record["manifest"]
    main = manifest["task"]["main_score"]
    value = record["metrics"].get(main)
    day = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    line = (f"- {day} {'replaced' if replaced else 'added'} `{target.relative_to(root).as_posix()}`: "
            f"{system_identity(manifest)}, {main} {_cell(value)}\n")
    log = root / CHANGELOG
    text = log.read_text(encoding="utf-8") if log.is_file() else (
        "# Leaderboard changelog\n\nOne line per record `rrbench publish` added, newest last.\n\n")
    atomic_write_text(log, text + line)


# -- collect ---------------------------------------------------------------------------------------------------------
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

    @property
    def identity(self) -> str:
        return system_identity(self.manifest)


def collect(leaderboard_dir: str | Path = DEFAULT_DIR) -> dict[tuple[str, str], list[Entry]]:
    """Published records grouped by (``task@version``, split); a malformed or misfiled record stops it, naming it."""
    root = Path(leaderboard_dir)
    groups: dict[tuple[str, str], list[Entry]] = {}
    for file in sorted(root.glob(f"*@*/*/*/{RESULTS_FILE}")):
        record = load_record(file)
        require_valid(record, str(file))
        manifest = record["manifest"]
        task = manifest["task"]
        expected = f"{task['id']}@{task['version']}"
        if file.parent.parent.parent.name != expected or file.parent.parent.name != manifest["split"]:
            raise RecordError(f"{file}: folder: record for {expected} split {manifest['split']} is filed in the "
                              "wrong folder")
        groups.setdefault((expected, manifest["split"]), []).append(Entry(file, record))
    for entries in groups.values():
        entries.sort(key=lambda e: (e.main_value is None, -(e.main_value or 0.0), e.identity,
                                    e.manifest["config_hash"]))
    return groups


# -- rows: seed groups, intervals, ties ------------------------------------------------------------------------------
_TRAINING_KEYS = ("regime", "loss", "miner", "data_options", "base_model", "teacher")


def _strip_seeds(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _strip_seeds(v) for k, v in obj.items() if k != "seed"}
    if isinstance(obj, list):
        return [_strip_seeds(v) for v in obj]
    return obj


def seed_group_key(manifest: Mapping[str, Any]) -> str:
    """Equal for records whose configurations differ only in the training seed of their checkpoint."""
    checkpoint = manifest.get("checkpoint")
    training = checkpoint.get("training_manifest") if isinstance(checkpoint, Mapping) else None
    if not isinstance(training, Mapping) or not isinstance(manifest.get("config", {}).get("reranker"), Mapping):
        return str(manifest["config_hash"])
    config = dict(manifest["config"])
    config["reranker"] = {k: v for k, v in config["reranker"].items() if k not in ("id", "revision", "fingerprint")}
    return canonical_hash({"config": config, "training": _strip_seeds({k: training.get(k) for k in _TRAINING_KEYS})})


@dataclass
class Row:
    """One leaderboard row: a record, or several that differ only in the training seed."""

    entries: list[Entry]
    main_score: str
    per_query: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    std: float | None = None
    ci: tuple[float, float] | None = None
    p: float | None = None
    p_adjusted: float | None = None
    tied: bool = False

    @property
    def first(self) -> Entry:
        return self.entries[0]

    @property
    def name(self) -> str:
        name = self.first.identity
        if len(self.entries) > 1:
            name = name.rsplit("@", 1)[0] + f" ({len(self.entries)} seeds)"
        return name

    def metric(self, key: str) -> float | None:
        values = [e.record["metrics"].get(key) for e in self.entries]
        if any(v is None for v in values):
            return None
        return mean_std(values)[0]


def build_rows(entries: Sequence[Entry], method: str = "holm", alpha: float = ALPHA,
               samples: int = SAMPLES) -> list[Row]:
    """Rows sorted by main score, with bootstrap intervals and the corrected comparison with the leader."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(seed_group_key(entry.manifest), []).append(entry)
    rows = []
    for members in grouped.values():
        main = members[0].main_score
        systems = [per_query_values(e.record["per_query"], main) for e in members]
        shared = sorted(set.intersection(*(set(s) for s in systems)))
        row = Row(members, main, {q: float(np.mean([s[q] for s in systems])) for q in shared})
        values = [e.main_value for e in members]
        if all(v is not None for v in values):
            row.value, row.std = mean_std(values)  # type: ignore[arg-type]
            row.std = row.std if len(members) > 1 else None
        if row.per_query:
            row.ci = bootstrap_ci([row.per_query[q] for q in shared], samples=samples)
        rows.append(row)
    rows.sort(key=lambda r: (r.value is None, -(r.value or 0.0), r.name, r.first.manifest["config_hash"]))
    scored = [r for r in rows if r.per_query]
    if len(scored) >= 2:
        results = compare_with_leader([r.per_query for r in scored], method=method, alpha=alpha, samples=samples)
        for row, result in zip(scored, results, strict=True):
            row.p, row.p_adjusted, row.tied = result["p"], result["p_adjusted"], result["tied"]
    return rows


# -- render ----------------------------------------------------------------------------------------------------------
def notes(manifest: Mapping[str, Any]) -> str:
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


def vs_leader(row: Row, index: int) -> str:
    if index == 0:
        return "leader"
    if row.p_adjusted is None:
        return "—"
    return f"{'≈ tied' if row.tied else 'below'} (p={row.p_adjusted:.3f})"


def render_table(rows: Sequence[Row], base: Path) -> list[str]:
    lines = ["| Rank | System | nDCG@10 | 95% CI | vs leader | RR@10 | R@10 | FalseEvid | pairs/s | Notes | Record |",
             "|------|--------|---------|--------|-----------|-------|------|-----------|---------|-------|--------|"]
    for i, row in enumerate(rows):
        manifest = row.first.manifest
        value = _cell(row.metric("nDCG@10"))
        if row.std is not None and row.main_score == "nDCG@10":
            value = f"{_cell(row.value)} ± {_cell(row.std)}"
        ci = "—" if row.ci is None or row.main_score != "nDCG@10" else f"[{_cell(row.ci[0])}, {_cell(row.ci[1])}]"
        name = f"**{row.name}**" if i == 0 else row.name
        rate = manifest.get("pairs_per_s") if len(row.entries) == 1 else None
        links = ", ".join(f"[{e.path.parent.name[-8:]}]({e.path.relative_to(base).as_posix()})" for e in row.entries)
        lines.append(f"| {i + 1} | {name} | {value} | {ci} | {vs_leader(row, i)} | {_cell(row.metric('RR@10'))} | "
                     f"{_cell(row.metric('R@10'))} | {_cell(row.metric('false_evidence_rate'), 2)} | "
                     f"{'—' if rate is None else f'{rate:.1f}'} | {notes(manifest)} | {links} |")
    return lines


def superseded_by(board: str) -> str | None:
    """``task@N`` when the registered task is now at a later version, else None."""
    task_id, _, version = board.rpartition("@")
    now = registered_version(task_id)
    return f"{task_id}@{now}" if now is not None and version.isdigit() and now > int(version) else None


def render(leaderboard_dir: str | Path = DEFAULT_DIR, method: str = "holm") -> str:
    """The leaderboard README as a string (deterministic: the same records always give the same bytes)."""
    base = Path(leaderboard_dir)
    groups = collect(base)
    test = "Holm-Bonferroni-corrected paired sign-flip tests" if method == "holm" else "the randomised Tukey HSD test"
    out = ["# rrbench leaderboard", "",
           "<!-- Generated by `rrbench leaderboard build` from the records in this folder; do not edit by hand. -->",
           "",
           ("Built from the published result records alone (`rrbench publish DIR` adds one after re-checking it "
           "against its own run file and the task's data; `rrbench leaderboard check` re-checks them all). One table "
           "per task version and split, sorted by the task's main score. System names are derived from each record's "
           "hashed configuration. Rank metrics average over has-evidence queries; **95% CI** is a seeded percentile "
           f"bootstrap interval of the mean over queries ({SAMPLES} resamples). **vs leader**: every row against the "
           f"first by {test} over common queries ({SAMPLES} samples); **≈ tied** marks an adjusted p ≥ {ALPHA}, "
           "a difference from the leader that may be noise. Records that differ only in the training seed share a row "
           "(mean ± std over seeds). **FalseEvid** is the share of no-evidence queries whose list holds a score at "
           "or above the record's threshold (— without a threshold). **pairs/s** is the reranker's self-reported "
           "throughput on the hardware in the record."),
           ""]
    if not groups:
        out += ["No records published yet.", ""]
    for (board, split), entries in sorted(groups.items()):
        newer = superseded_by(board)
        heading = f"## {board} · {split}" + (f" (superseded by {newer})" if newer else "")
        rows = build_rows(entries, method=method)
        out += [heading, ""]
        if newer:
            out += [(f"This board is superseded: the task is now at {newer}. Its records stay readable; new "
                    "submissions go to the new board."), ""]
        out += [f"Main score: {entries[0].main_score}. {len(entries)} record{'s' if len(entries) != 1 else ''}.", ""]
        out += render_table(rows, base)
        out.append("")
    return "\n".join(out)


def build(leaderboard_dir: str | Path = DEFAULT_DIR, method: str = "holm") -> Path:
    """Regenerate ``<leaderboard_dir>/README.md`` from the records; returns its path."""
    if method not in METHODS:
        raise RecordError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    text = render(leaderboard_dir, method)
    target = Path(leaderboard_dir) / README
    atomic_write_text(target, text)
    return target


# -- check -----------------------------------------------------------------------------------------------------------
def check(leaderboard_dir: str | Path = DEFAULT_DIR) -> int:
    """What a leaderboard's CI runs: verify every record and the README; returns the number of records checked."""
    root = Path(leaderboard_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no leaderboard folder")
    strays = sorted(p for p in root.glob("*@*/*/*") if p.is_dir() and not (p / RESULTS_FILE).is_file())
    if strays:
        raise RecordError(f"{strays[0]}: a folder in the leaderboard without {RESULTS_FILE}")
    files = sorted(root.glob(f"*@*/*/*/{RESULTS_FILE}"))
    for file in files:
        verify_record(file.parent, published=True, ledger=root / LEDGER_FILE)
    readme = root / README
    expected = render(root)
    if not readme.is_file() or readme.read_text(encoding="utf-8") != expected:
        raise RecordError(f"{readme}: not what `rrbench leaderboard build` produces from the records; run it and "
                          "commit the result")
    return len(files)


__all__ = [
    "CHANGELOG",
    "DEFAULT_DIR",
    "README",
    "Entry",
    "Row",
    "board_dir",
    "build",
    "build_rows",
    "check",
    "collect",
    "publish",
    "render",
    "seed_group_key",
    "superseded_by",
]
