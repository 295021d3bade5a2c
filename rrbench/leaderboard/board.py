"""The leaderboard: published result records under ``leaderboard/<task>@<version>/<split>/``, and a README built
from the verified records alone.

``publish`` is the submission: every check of :mod:`rrbench.leaderboard.verify`, then the record is filed under its
derived name (never outside the leaderboard folder) with a ``SHA256SUMS`` manifest, and a line is appended to
``CHANGELOG.md``. ``build`` regenerates the README from verified records only, and ``check`` is what a leaderboard's
CI runs: every record verified, the README exactly what ``build`` would write, the test ledger append-only since the
base revision.

Every number and name on the board is derived by the verifier, never read from a record: the order follows the
task's main score, names come from the hashed claims (a name shared by two configurations gets the config hash),
outside runs are listed apart as *claimed, not re-scored*, and records of superseded task versions as *archived,
not re-verified*. Each table shows a seeded 95% bootstrap interval over queries, compares every row with the leader
by paired randomisation tests corrected for multiple comparisons (Holm by default, randomised Tukey HSD as an
option), marks rows not significantly different from the leader as tied, and folds records that differ only in the
training seed into one row (mean ± std).
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.leaderboard.changes import changed_record_folders
from rrbench.leaderboard.cross_task import cross_task, render_cross_task
from rrbench.leaderboard.settings import BoardSettings, read_settings, settings_change, settings_path, update_settings
from rrbench.leaderboard.verify import LEDGER_FILE, PUBLISHED_FILES, Verified, verify_record, write_sums
from rrbench.measures.significance import (
    ALPHA,
    SAMPLES,
    bootstrap_ci,
    compare_with_leader,
    mean_std,
    per_query_values,
)
from rrbench.records import ledger as test_ledger
from rrbench.records.naming import folder_name
from rrbench.records.record import load_record
from rrbench.records.schema import RESULTS_FILE, RecordError, RunClaims
from rrbench.util.io import atomic_dir, atomic_write_text, canonical_hash
from rrbench.util.text import fmt_number, md_escape

#: the board's cells: rrbench's number format, with a dash for what a record does not have
_cell = partial(fmt_number, missing="—")

DEFAULT_DIR = "leaderboard"
README = "README.md"
CHANGELOG = "CHANGELOG.md"
METHODS = ("holm", "tukey")


# -- publish ---------------------------------------------------------------------------------------------------------
def _inside(root: Path, target: Path, what: str) -> Path:
    """``target`` resolved, refused unless it lies inside ``root``."""
    resolved = target.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise RecordError(f"{what}: {target} would be written outside the leaderboard folder {root}")
    return resolved


def publish(path: str | Path, leaderboard_dir: str | Path = DEFAULT_DIR, replace: bool = False,
            task_dir: str | Path | None = None) -> Path:
    """Verify a record and file it (its files and ``SHA256SUMS``) under its derived name; returns its folder."""
    root = Path(leaderboard_dir)
    verified = verify_record(path, ledger=root / LEDGER_FILE, task_dir=task_dir)
    if verified.status == "archived":
        raise RecordError(f"{verified.folder}: {verified.note}; it cannot be published")
    record = verified.record
    claims = record.config
    base = _inside(root, root / f"{claims.task.id}@{claims.task.version}" / claims.split, "publish")
    target = _inside(root, base / folder_name(claims, record.config_hash), "publish")
    replaced = False
    for other in sorted(base.glob(f"*/{RESULTS_FILE}")) if base.is_dir() else []:
        try:
            same = load_record(other).config_hash == record.config_hash
        except RecordError:
            continue
        if same and not replace:
            raise RecordError(f"{other.parent}: this configuration (config hash {record.config_hash[:12]}...) is "
                              "already published; pass --replace to overwrite it")
        if same:
            shutil.rmtree(other.parent)
            replaced = True
    with atomic_dir(target) as tmp:
        for name in PUBLISHED_FILES:
            if (verified.folder / name).is_file():
                shutil.copyfile(verified.folder / name, tmp / name)
        write_sums(tmp)
    _append_changelog(root, verified, target, replaced)
    return target


def _append_changelog(root: Path, verified: Verified, target: Path, replaced: bool) -> None:
    main = verified.record.main_score
    day = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    line = (f"- {day} {'replaced' if replaced else 'added'} `{target.relative_to(root.resolve()).as_posix()}`: "
            f"{md_escape(verified.name)}, {md_escape(main)} {_cell(verified.metrics.get(main))}\n")
    log = root / CHANGELOG
    text = log.read_text(encoding="utf-8") if log.is_file() else (
        "# Leaderboard changelog\n\nOne line per record `rrbench publish` added, newest last.\n\n")
    atomic_write_text(log, text + line)


# -- collect ---------------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """A published record as the verifier derived it."""

    path: Path  # results.json
    verified: Verified
    name: str = ""

    @property
    def record(self) -> Any:
        return self.verified.record

    @property
    def main_score(self) -> str:
        return str(self.verified.record.main_score)

    @property
    def main_value(self) -> float | None:
        value = self.verified.metrics.get(self.main_score)
        return None if value is None else float(value)

    @property
    def identity(self) -> str:
        return self.name or self.verified.name

    @property
    def config_hash(self) -> str:
        return str(self.verified.record.config_hash)


@dataclass
class Board:
    """The published records of one task version and split, by standing."""

    verified: list[Entry] = field(default_factory=list)
    claimed: list[Entry] = field(default_factory=list)
    archived: list[Entry] = field(default_factory=list)


def collect(leaderboard_dir: str | Path = DEFAULT_DIR, task_dir: str | Path | None = None) -> dict[tuple[str, str],
                                                                                                   Board]:
    """Every published record, verified, grouped by (``task@version``, split); the first bad record stops it."""
    root = Path(leaderboard_dir)
    strays = sorted(p for p in root.glob("*@*/*/*") if p.is_dir() and not (p / RESULTS_FILE).is_file())
    if strays:
        raise RecordError(f"{strays[0]}: a folder in the leaderboard without {RESULTS_FILE}")
    groups: dict[tuple[str, str], Board] = {}
    for file in sorted(root.glob(f"*@*/*/*/{RESULTS_FILE}")):
        verified = verify_record(file.parent, published=True, ledger=root / LEDGER_FILE, task_dir=task_dir)
        claims = verified.record.config
        board = groups.setdefault((f"{claims.task.id}@{claims.task.version}", claims.split), Board())
        getattr(board, verified.status).append(Entry(file, verified))
    for board in groups.values():
        _unique_names(board.verified + board.claimed + board.archived)
        for entries in (board.verified, board.claimed, board.archived):
            entries.sort(key=lambda e: (e.main_value is None, -(e.main_value or 0.0), e.identity, e.config_hash))
    return groups


def _unique_names(entries: Sequence[Entry]) -> None:
    """Two configurations never share a displayed name: a name used twice gets its config hash."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.verified.name] = counts.get(entry.verified.name, 0) + 1
    for entry in entries:
        base = entry.verified.name
        entry.name = base if counts[base] == 1 else f"{base} #{entry.config_hash[:8]}"


# -- rows: seed groups, intervals, ties ------------------------------------------------------------------------------
def _strip_seeds(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_seeds(v) for k, v in obj.items() if k != "seed"}
    if isinstance(obj, list):
        return [_strip_seeds(v) for v in obj]
    return obj


_TRAINING_KEYS = ("regime", "loss", "miner", "data_options", "base_model", "teacher")


def seed_group_key(entry: Entry) -> str:
    """Equal for records whose configurations differ only in the training seed of their checkpoints."""
    claims = entry.record.config
    if not isinstance(claims, RunClaims) or not any(r.checkpoint for r in claims.rerankers):
        return entry.config_hash
    body = claims.model_dump(mode="json")
    for member in body["rerankers"]:
        checkpoint = member.get("checkpoint")
        if checkpoint:
            training = checkpoint["training_manifest"]
            member.update(id=None, weights_sha256=None, checkpoint=_strip_seeds(
                {k: training.get(k) for k in _TRAINING_KEYS}))
    return canonical_hash(body)


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
        if len(self.entries) > 1:  # the checkpoints' weight hashes differ per seed: name the group without them
            name = re.sub(r"(trained:[^ ]*)@[0-9a-f]{8}", r"\1", name) + f" ({len(self.entries)} seeds)"
        return name

    def metric(self, key: str) -> float | None:
        values = [e.verified.metrics.get(key) for e in self.entries]
        if any(v is None for v in values):
            return None
        return mean_std([float(v) for v in values if v is not None])[0]



def build_rows(entries: Sequence[Entry], method: str = "holm", alpha: float = ALPHA,
               samples: int = SAMPLES) -> list[Row]:
    """Rows sorted by the main score, with bootstrap intervals and the corrected comparison with the leader."""
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        grouped.setdefault(seed_group_key(entry), []).append(entry)
    rows = []
    for members in grouped.values():
        main = members[0].main_score
        systems = [per_query_values(e.verified.per_query, main) for e in members]
        shared = sorted(set.intersection(*(set(s) for s in systems)))
        row = Row(members, main, {q: float(np.mean([s[q] for s in systems])) for q in shared})
        values = [e.main_value for e in members]
        if all(v is not None for v in values):
            row.value, row.std = mean_std(values)  # type: ignore[arg-type]
            row.std = row.std if len(members) > 1 else None
        if row.per_query:
            row.ci = bootstrap_ci([row.per_query[q] for q in shared], samples=samples)
        rows.append(row)
    rows.sort(key=lambda r: (r.value is None, -(r.value or 0.0), r.name, r.first.config_hash))
    scored = [r for r in rows if r.per_query]
    if len(scored) >= 2:
        results = compare_with_leader([r.per_query for r in scored], method=method, alpha=alpha, samples=samples)
        for row, result in zip(scored, results, strict=True):
            row.p, row.p_adjusted, row.tied = result["p"], result["p_adjusted"], result["tied"]
    return rows


# -- render ----------------------------------------------------------------------------------------------------------
def notes(entry: Entry) -> str:
    """The decision, in a few words (the settings are in the name)."""
    decision = entry.record.decision
    if decision is None:
        threshold = entry.record.config.threshold if entry.verified.status == "claimed" else None
        return "outside run; " + ("no threshold" if threshold is None else f"threshold {float(threshold):g}")
    if decision.threshold is None:
        return "cross-fitted threshold" if decision.folds else "no threshold"
    return f"threshold {decision.threshold:g}" + (" (natural)" if decision.source.startswith("natural") else "")


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
        value = _cell(row.metric("nDCG@10"))
        if row.std is not None and row.main_score == "nDCG@10":
            value = f"{_cell(row.value)} ± {_cell(row.std)}"
        ci = "—" if row.ci is None or row.main_score != "nDCG@10" else f"[{_cell(row.ci[0])}, {_cell(row.ci[1])}]"
        name = md_escape(row.name)
        name = f"**{name}**" if i == 0 else name
        rate = row.first.record.provenance.pairs_per_s if len(row.entries) == 1 else None
        links = ", ".join(f"[{e.path.parent.name[-8:]}]({e.path.relative_to(base).as_posix()})" for e in row.entries)
        lines.append(f"| {i + 1} | {name} | {value} | {ci} | {vs_leader(row, i)} | {_cell(row.metric('RR@10'))} | "
                     f"{_cell(row.metric('R@10'))} | {_cell(row.metric('false_evidence_rate'), 2)} | "
                     f"{'—' if rate is None else f'{float(rate):.1f}'} | {md_escape(notes(row.first))} | {links} |")
    return lines


def _apart_table(entries: Sequence[Entry], base: Path, what: str) -> list[str]:
    lines = ["| System | Main score | Standing | Record |", "|--------|------------|----------|--------|"]
    for e in entries:
        lines.append(f"| {md_escape(e.identity)} | {md_escape(e.main_score)} {_cell(e.main_value)} | {what} | "
                     f"[{e.path.parent.name[-8:]}]({e.path.relative_to(base).as_posix()}) |")
    return lines


def render(leaderboard_dir: str | Path = DEFAULT_DIR, settings: BoardSettings | None = None,
           groups: dict[tuple[str, str], Board] | None = None) -> str:
    """The leaderboard README as a string, from verified records only (the same records and settings give the same
    bytes); ``settings`` default to the folder's ``board.yaml``."""
    base = Path(leaderboard_dir)
    settings = read_settings(base) if settings is None else settings
    method = settings.method
    groups = collect(base) if groups is None else groups
    test = "Holm-Bonferroni-corrected paired sign-flip tests" if method == "holm" else "the randomised Tukey HSD test"
    out = ["# rrbench leaderboard", "",
           "<!-- Generated by `rrbench leaderboard build` from the records in this folder; do not edit by hand. -->",
           "",
           ("Built from the published result records alone, every number re-derived by the verifier from each "
            "record's claims, its raw scores and the task's own labels (see docs/leaderboard.md for the trust "
            "model). One table per task version and split, sorted by the task's main score; names are derived from "
            "each record's hashed configuration, with the settings that tell configurations apart (K pool size, N "
            "rerank depth, the decision). Rank metrics average over has-evidence queries; **95% CI** is a seeded "
            f"percentile bootstrap interval of the mean over queries ({SAMPLES} resamples). **vs leader**: every row "
            f"against the first by {test} over common queries ({SAMPLES} samples); **≈ tied** marks an adjusted "
            f"p ≥ {ALPHA}, a difference from the leader that may be noise. Records that differ only in the "
            "training seed share a row (mean ± std over seeds). **FalseEvid** is the share of no-evidence queries the "
            "system answers (— without a decision). **pairs/s** is the reranker's self-reported throughput on the "
            "hardware in the record (never ranked on). Outside runs (`rrbench evaluate`) are listed apart as "
            "*claimed, not re-scored*; records of superseded task versions as *archived, not re-verified*."),
           ""]
    if not groups:
        out += ["No records published yet.", ""]
    for (board, split), group in sorted(groups.items()):
        entries = group.verified
        out += [f"## {md_escape(board)} · {md_escape(split)}", ""]
        if entries:
            main = entries[0].main_score
            out += [f"Main score: {md_escape(main)}. {len(entries)} verified "
                    f"record{'s' if len(entries) != 1 else ''}.", ""]
            out += render_table(build_rows(entries, method=method), base)
            out.append("")
        if group.claimed:
            out += ["Claimed, not re-scored (outside runs scored with `rrbench evaluate`; not ranked with the "
                    "verified records):", ""]
            out += _apart_table(group.claimed, base, "claimed, not re-scored")
            out.append("")
        if group.archived:
            out += ["Archived, not re-verified (records of a superseded task version; never ranked):", ""]
            out += _apart_table(group.archived, base, "archived, not re-verified")
            out.append("")
    margin = settings.noninferiority_margin
    out += render_cross_task(cross_task(groups, margin=margin), margin=margin)
    return "\n".join(out)


def build(leaderboard_dir: str | Path = DEFAULT_DIR, method: str | None = None, margin: float | None = None) -> Path:
    """Regenerate ``<leaderboard_dir>/README.md`` from the verified records; returns its path. ``method`` and
    ``margin``, when given, become the board's settings (``board.yaml``, which ``check`` reads too)."""
    if method is not None and method not in METHODS:
        raise RecordError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    text = render(leaderboard_dir, update_settings(leaderboard_dir, method, margin))
    target = Path(leaderboard_dir) / README
    atomic_write_text(target, text)
    return target


# -- check -----------------------------------------------------------------------------------------------------------
def check(leaderboard_dir: str | Path = DEFAULT_DIR, base: str | None = None,
          task_dir: str | Path | None = None) -> dict[tuple[str, str], Board]:
    """What a leaderboard's CI runs: verify every record, compare the README with one built from the verified
    records alone, and (with ``base``, a git revision) refuse a test ledger edited since that revision."""
    root = Path(leaderboard_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no leaderboard folder")
    if base is not None:
        test_ledger.check_append_only(root / LEDGER_FILE, base)
        change = settings_change(root, base)
        if change and changed_record_folders(root, base):
            raise RecordError(f"{settings_path(root)}: the board settings changed since {base} ({change}) in a change "
                              f"that also adds or edits records; a maintainer changes them in a change of their own")
    groups = collect(root, task_dir=task_dir)
    readme = root / README
    expected = render(root, groups=groups)
    if not readme.is_file() or readme.read_text(encoding="utf-8") != expected:
        raise RecordError(f"{readme}: not what `rrbench leaderboard build` produces from the verified records; run "
                          "it and commit the result")
    return groups


__all__ = [
    "CHANGELOG",
    "DEFAULT_DIR",
    "README",
    "Board",
    "Entry",
    "Row",
    "build",
    "build_rows",
    "check",
    "collect",
    "publish",
    "render",
    "seed_group_key",
]
