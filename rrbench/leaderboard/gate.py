"""``rrbench gate``: a CI regression gate that fails a pull request only on evidence of a real drop.

The question a gate asks is one-sided and has a tolerance: *is the candidate worse than the baseline by more than
``max_drop``?* So it tests H0: mean(candidate - baseline) >= -max_drop against H1: the mean is below -max_drop, with
the paired sign-flip test on the queries both records scored (:func:`rrbench.measures.significance.sign_flip_test`, the
differences shifted by the margin). A noisy small drop passes; a consistent drop larger than the margin fails.

Exit codes (a crash must never read as a regression):

* 0: no significant regression (and the false-evidence rate did not rise beyond its margin);
* 1: regression: p < alpha, or the false-evidence rate rose by more than ``--max-fe-increase``;
* 2: unusable input: unreadable record, different task version or split, no common queries, unknown metric;
* 3: the candidate, given as a run configuration, failed to run (or the gate itself failed unexpectedly).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.leaderboard.compare import (
    comparable_metric,
    direction_word,
    distinguishing_settings,
    metric_values,
    require_per_query,
    settings_line,
)
from rrbench.leaderboard.compare import names as pair_names
from rrbench.leaderboard.verify import LEDGER_FILE, Verified, verify_record
from rrbench.measures.names import higher_is_better
from rrbench.measures.significance import SAMPLES, sign_flip_test
from rrbench.pipeline.runner import RunConfig, execute, load_config_file
from rrbench.records.schema import RESULTS_FILE, RecordError
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.io import atomic_write_text
from rrbench.util.text import md_escape

PASS, REGRESSION, UNUSABLE, CANDIDATE_FAILED = 0, 1, 2, 3
LEADERBOARD_PREFIX = "leaderboard:"


class RegressionFound(RRBenchError):
    """The gate's verdict: a significant regression (exit 1)."""

    exit_code = REGRESSION


class CandidateRunError(RRBenchError):
    """The candidate configuration could not be run: exit 3, never confused with a regression."""

    exit_code = CANDIDATE_FAILED


@dataclass
class GateResult:
    metric: str
    baseline: str
    candidate: str
    queries: int
    baseline_mean: float
    candidate_mean: float
    mean_diff: float
    max_drop: float
    alpha: float
    p_value: float
    fe_baseline: float | None = None
    fe_candidate: float | None = None
    max_fe_increase: float | None = None
    reasons: list[str] = field(default_factory=list)
    #: hashed claims that differ between baseline and candidate: ``(setting, baseline value, candidate value)``
    differences: list[tuple[str, Any, Any]] = field(default_factory=list)
    higher_is_better: bool = True

    @property
    def exit_code(self) -> int:
        return REGRESSION if self.reasons else PASS

    @property
    def verdict(self) -> str:
        return "FAIL: " + "; ".join(self.reasons) if self.reasons else "PASS: no significant regression"


# -- inputs ----------------------------------------------------------------------------------------------------------
def resolve_baseline(spec: str, leaderboard_dir: str | Path = "leaderboard") -> Path:
    """A record folder, or ``leaderboard:<task>@<version>/<split>/<system>`` (a published folder name or its
    system part without the hash; it must match exactly one record)."""
    if not spec.startswith(LEADERBOARD_PREFIX):
        return Path(spec)
    ref = spec[len(LEADERBOARD_PREFIX):].strip("/")
    parts = ref.split("/")
    if len(parts) != 3 or "@" not in parts[0]:
        raise UsageError(f"--baseline {spec!r}: expected leaderboard:<task>@<version>/<split>/<system>")
    board = Path(leaderboard_dir) / parts[0] / parts[1]
    if not board.is_dir():
        raise UsageError(f"--baseline {spec!r}: no board {board}")
    folders = sorted(p for p in board.iterdir() if (p / RESULTS_FILE).is_file())
    exact = [p for p in folders if p.name == parts[2]]
    matches = exact or [p for p in folders if p.name.rsplit("-", 1)[0] == parts[2]]
    if len(matches) != 1:
        names = ", ".join(p.name for p in folders) or "none"
        raise UsageError(f"--baseline {spec!r}: {'several' if matches else 'no'} records match in {board} "
                         f"(records: {names})")
    return matches[0]


def _load(path: str | Path, role: str, leaderboard_dir: str | Path) -> Verified:
    """A gate input is verified exactly as ``leaderboard check`` verifies a record (a candidate's numbers are
    re-derived from its claims and evidence, never read)."""
    try:
        verified = verify_record(path, ledger=Path(leaderboard_dir) / LEDGER_FILE)
    except RecordError as exc:
        raise UsageError(f"--{role} {path}: {exc}") from None
    if verified.status == "archived":
        raise UsageError(f"--{role} {path}: {verified.note}")
    return verified


def run_candidate_config(config_file: str | Path, output: str | Path | None = None,
                         announce: Callable[[str], None] | None = None) -> Path:
    """Run a candidate given as a ``rrbench run --config`` file. A file that cannot be read or holds an invalid
    configuration is unusable input (exit 2); a configuration that fails while running is a
    :class:`CandidateRunError` (exit 3)."""
    config = RunConfig.from_mapping(load_config_file(config_file), str(config_file))
    config.show_progress = False
    if output is not None:
        config.output = str(output)
    config.validate()
    if announce is not None:
        announce(f"rrbench gate: running the candidate configuration {config_file} into "
                 f"{output or 'runs/<timestamp>-<config hash>/'}")
    try:
        record = execute(config)
    except UsageError as exc:
        raise CandidateRunError(f"--candidate {config_file}: {exc}") from None
    except RRBenchError as exc:
        raise CandidateRunError(f"--candidate {config_file}: the run failed: {exc}") from None
    except Exception as exc:
        raise CandidateRunError(f"--candidate {config_file}: the run crashed: {type(exc).__name__}: {exc}") from None
    return Path(record["output_dir"])


# -- the test --------------------------------------------------------------------------------------------------------
def check_gate_parameters(max_drop: float, alpha: float, max_fe_increase: float | None, samples: int) -> None:
    if not math.isfinite(max_drop) or max_drop < 0:
        raise UsageError(f"--max-drop must be a finite number >= 0, got {max_drop}")
    if not math.isfinite(alpha) or not 0 < alpha < 1:
        raise UsageError(f"--alpha must be within (0, 1), got {alpha}")
    if max_fe_increase is not None and (not math.isfinite(max_fe_increase) or not 0 <= max_fe_increase <= 1):
        raise UsageError(f"--max-fe-increase must be within [0, 1], got {max_fe_increase}")
    if samples < 100:
        raise UsageError(f"--samples must be >= 100, got {samples}")


def gate(baseline: Verified, candidate: Verified, metric: str = "nDCG@10", max_drop: float = 0.005,
         alpha: float = 0.05, max_fe_increase: float | None = None, samples: int = SAMPLES, seed: int = 0,
         names: tuple[str, str] | None = None) -> GateResult:
    """Compare two verified records; unusable input raises :class:`UsageError` (exit 2)."""
    check_gate_parameters(max_drop, alpha, max_fe_increase, samples)
    metric = comparable_metric(metric)
    sign = 1.0 if higher_is_better(metric) else -1.0
    b_claims, c_claims = baseline.record.config, candidate.record.config
    for key in ("id", "version", "data_sha256"):
        if getattr(b_claims.task, key) != getattr(c_claims.task, key):
            raise UsageError(f"config.task.{key} differs: baseline {getattr(b_claims.task, key)!r}, candidate "
                             f"{getattr(c_claims.task, key)!r}; the gate compares records of the same task version")
    if b_claims.split != c_claims.split:
        raise UsageError(f"config.split differs: baseline {b_claims.split!r}, candidate {c_claims.split!r}")
    base = require_per_query(metric_values(baseline, metric), metric, "the gate")
    cand = require_per_query(metric_values(candidate, metric), metric, "the gate")
    if not base or not cand:
        raise UsageError(f"no per-query {metric} values in the {'baseline' if not base else 'candidate'} record")
    uncovered = sorted(set(base) - set(cand))
    if uncovered:
        raise UsageError(f"the candidate lacks {len(uncovered)} of the baseline's {len(base)} queries (e.g. "
                         f"{uncovered[0]!r}); a gate compares whole splits")
    common = sorted(base)
    diff = np.asarray([cand[q] - base[q] for q in common])
    # a regression is a move in the metric's bad direction: down for nDCG@10, up for the false-evidence rate
    p = sign_flip_test(sign * diff, samples=samples, seed=seed, alternative="less", null_mean=-max_drop)
    names = names or pair_names(baseline, candidate)
    result = GateResult(metric, names[0], names[1], len(common), float(np.mean([base[q] for q in common])),
                        float(np.mean([cand[q] for q in common])), float(diff.mean()), max_drop, alpha, p)
    result.differences = distinguishing_settings(baseline, candidate)
    result.higher_is_better = sign > 0
    if p < alpha:
        moved = "dropped" if sign > 0 else "rose"
        result.reasons.append(f"{metric} {moved} by {abs(result.mean_diff):.4f} (> {max_drop:g} at p={p:.4f} < "
                              f"{alpha:g}; {direction_word(metric)})")
    if max_fe_increase is not None:
        fe_b = baseline.metrics.get("false_evidence_rate")
        fe_c = candidate.metrics.get("false_evidence_rate")
        if fe_b is None or fe_c is None:
            raise UsageError("--max-fe-increase needs a false-evidence rate in both records (run them with a "
                             "threshold)")
        result.fe_baseline, result.fe_candidate, result.max_fe_increase = float(fe_b), float(fe_c), max_fe_increase
        if fe_c - fe_b > max_fe_increase + 1e-12:
            result.reasons.append(f"false-evidence rate rose by {fe_c - fe_b:.4f} (> {max_fe_increase:g})")
    return result


# -- reports ---------------------------------------------------------------------------------------------------------
def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def table(result: GateResult) -> str:
    rows = [("", "baseline", "candidate", "difference"),
            (result.metric, _f(result.baseline_mean), _f(result.candidate_mean), f"{result.mean_diff:+.4f}")]
    if result.max_fe_increase is not None:
        rows.append(("false_evidence_rate", _f(result.fe_baseline), _f(result.fe_candidate),
                     f"{(result.fe_candidate or 0) - (result.fe_baseline or 0):+.4f}"))
    width = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width[i]) if i == 0 else cell.rjust(width[i]) for i, cell in enumerate(r))
             for r in rows]
    h0 = (f"mean(candidate - baseline) >= -{result.max_drop:g}" if result.higher_is_better
          else f"mean(candidate - baseline) <= {result.max_drop:g}")
    lines.append(f"queries {result.queries}; one-sided paired sign-flip test of H0 {h0}: p = {result.p_value:.4f} "
                 f"(alpha {result.alpha:g}; {direction_word(result.metric)})")
    lines.insert(0, f"baseline {result.baseline}; candidate {result.candidate}")
    lines.insert(1, settings_line(result.differences, "baseline", "candidate"))
    lines.append(result.verdict)
    return "\n".join(lines)


def markdown(result: GateResult) -> str:
    """A pull-request comment."""
    icon = "❌" if result.reasons else "✅"
    out = [f"### {icon} rrbench gate: {result.verdict}", "",
           f"Baseline **{md_escape(result.baseline)}**, candidate **{md_escape(result.candidate)}**, "
           f"{result.queries} common queries.", "",
           md_escape(settings_line(result.differences, "baseline", "candidate")).replace(
               "settings that differ", "Settings that differ"), "",
           "| Metric | Baseline | Candidate | Difference |", "|---|---:|---:|---:|",
           f"| {md_escape(result.metric)} | {_f(result.baseline_mean)} | {_f(result.candidate_mean)} | {result.mean_diff:+.4f} |"]
    if result.max_fe_increase is not None:
        out.append(f"| false_evidence_rate | {_f(result.fe_baseline)} | {_f(result.fe_candidate)} | "
                   f"{(result.fe_candidate or 0) - (result.fe_baseline or 0):+.4f} |")
    h0 = (f"mean(candidate - baseline) ≥ -{result.max_drop:g}" if result.higher_is_better
          else f"mean(candidate - baseline) ≤ {result.max_drop:g}")
    out += ["", f"One-sided paired sign-flip randomisation test over queries of H0: {h0} "
            f"({direction_word(result.metric)}); p = {result.p_value:.4f}, alpha {result.alpha:g}"
            + (f"; false-evidence margin +{result.max_fe_increase:g}" if result.max_fe_increase is not None else "")
            + ".", ""]
    return "\n".join(out)


def write_summaries(result: GateResult, summary: str | Path | None = None) -> list[Path]:
    """Write the Markdown summary to ``summary`` and append it to ``$GITHUB_STEP_SUMMARY`` when set."""

    text = markdown(result)
    written = []
    if summary:
        atomic_write_text(summary, text)
        written.append(Path(summary))
    step = os.environ.get("GITHUB_STEP_SUMMARY")
    if step:
        with open(step, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        written.append(Path(step))
    return written


def load_pair(baseline: str, candidate: str, leaderboard_dir: str | Path = "leaderboard",
              candidate_output: str | Path | None = None,
              announce: Callable[[str], None] | None = None) -> tuple[Verified, Verified]:
    """Resolve and verify both sides; a candidate that is a file (not a run folder) is run first, and ``announce``
    is told where that run goes (``--candidate-output`` or ``runs/<timestamp>-<hash>``) and where it went."""
    base = _load(resolve_baseline(baseline, leaderboard_dir), "baseline", leaderboard_dir)
    cand_path = Path(candidate)
    if cand_path.is_file() and cand_path.name != RESULTS_FILE:
        cand_path = run_candidate_config(cand_path, candidate_output, announce)
        if announce is not None:
            announce(f"rrbench gate: candidate run written to {cand_path}")
    return base, _load(cand_path, "candidate", leaderboard_dir)


__all__ = [
    "CANDIDATE_FAILED",
    "PASS",
    "REGRESSION",
    "UNUSABLE",
    "CandidateRunError",
    "GateResult",
    "RegressionFound",
    "gate",
    "load_pair",
    "markdown",
    "resolve_baseline",
    "run_candidate_config",
    "table",
    "write_summaries",
]
