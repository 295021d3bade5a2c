"""The decision stage: from a query's final scores to "answer" or "abstain".

Everything between scores and the answer lives here, because the research plan's goal is a constrained choice
(maximise nDCG@10 such that the false-evidence rate stays under a budget), and that rate is decided by this stage
alone. Two things are called calibration in the field; rrbench keeps them apart:

- the **decision threshold**: the value the query statistic is compared with. It is *natural* (0 for logits and
  log-odds, 0.5 for probabilities), *fixed* (given by the user), *fitted* (the threshold with the best balanced
  accuracy of answer/abstain on a named split: what ``rrbench train`` records), *fitted to a false-evidence budget*
  (``max-fe``: the lowest threshold whose FE rate on the fit queries stays within ``threshold_max_fe``, so the most
  has-evidence queries are answered), or taken from a *checkpoint* (a raw-score value: refused on combined
  z-scores and on calibrated probabilities, whose scales it does not share);
- the **calibrator**: a monotone map from the query statistic to a probability that the query has evidence
  (``platt``, ``temperature``, ``isotonic``; ``none`` leaves scores as they are). Calibrators are plugins (kind
  ``calibrators``).

The **query statistic** is chosen by the abstention policy: ``max`` (the best score of the final ranking: the plan's
definition of false evidence) or ``margin`` (the best score minus the second best; 0 for a one-candidate list).
Only scores the final ranking's own stage produced count: the reranked head, or the retriever's pool when nothing
was reranked.

Fits never see the queries they decide: they use another split (``fit_split``, of the evaluated task or of another
task, ``fit_task``), or, on the evaluation split itself, grouped k-fold cross-fitting (each fold is decided by a fit
on the other folds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rrbench.components.bases import Calibrator
from rrbench.components.calls import build, component_label, running
from rrbench.components.registry import resolve
from rrbench.components.score_checks import check_non_decreasing, check_probabilities
from rrbench.components.specs import NATURAL_THRESHOLDS
from rrbench.util.errors import UsageError

POLICIES = ("max", "margin")
ECE_BINS = 15


# -- query statistics ------------------------------------------------------------------------------------------------
def query_statistic(values: np.ndarray, valid: np.ndarray, policy: str) -> np.ndarray:
    """Per row of a padded ``(queries, candidates)`` matrix: the max, or the top-1 margin, over valid entries.

    Rows without any valid entry get ``-inf`` (never answered).
    """
    if policy not in POLICIES:
        raise UsageError(f"unknown abstention policy {policy!r}; choose from {', '.join(POLICIES)}")
    masked = np.where(valid, values, -np.inf)
    if policy == "max" or masked.shape[1] == 0:
        return masked.max(axis=1) if masked.shape[1] else np.full(masked.shape[0], -np.inf)
    if masked.shape[1] == 1:
        top = masked[:, 0]
        return np.where(np.isfinite(top), 0.0, -np.inf)
    two = -np.partition(-masked, 1, axis=1)[:, :2]
    margin = two[:, 0] - two[:, 1]
    single = np.isfinite(two[:, 0]) & ~np.isfinite(two[:, 1])
    return np.where(single, 0.0, np.where(np.isfinite(two[:, 0]), margin, -np.inf))


# -- calibrators (plugins) -------------------------------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _finite(x: np.ndarray) -> np.ndarray:
    """Statistics of queries with nothing to rank are -inf: map them below every real value for fitting."""
    x = np.asarray(x, dtype=np.float64)
    if np.isfinite(x).all():
        return x
    finite = x[np.isfinite(x)]
    floor = (finite.min() - 1.0) if len(finite) else 0.0
    return np.where(np.isfinite(x), x, floor)


class NoCalibrator(Calibrator):
    """Scores stay scores (the threshold then applies on the raw scale)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> NoCalibrator:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)


class PlattCalibrator(Calibrator):
    """Platt scaling: ``p = sigmoid(a * x + b)``, maximum likelihood (logistic regression on the statistic) with
    ``a >= 0``, so that a higher statistic never means a lower probability."""

    #: a whisper of L2 on the standardised slope keeps perfectly separable fits finite
    RIDGE = 1e-8

    def fit(self, x: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        x, y = _finite(x), np.asarray(y, dtype=np.float64)
        centre, scale = float(np.mean(x)), float(np.std(x)) or 1.0
        design = np.stack([(x - centre) / scale, np.ones_like(x)], axis=1)
        theta = np.zeros(2)
        ridge = np.diag([self.RIDGE, 0.0])

        def nll(t: np.ndarray) -> float:
            logits = design @ t
            return float(np.sum(np.logaddexp(0.0, logits) - y * logits) + 0.5 * self.RIDGE * t[0] ** 2)

        for _ in range(200):  # Newton-Raphson (IRLS) with step halving: converges to machine precision
            p = _sigmoid(design @ theta)
            grad = design.T @ (p - y) + ridge @ theta
            hess = (design * (p * (1 - p))[:, None]).T @ design + ridge + np.eye(2) * 1e-12
            step = np.linalg.solve(hess, grad)
            current, rate = nll(theta), 1.0
            while rate > 1e-6 and nll(theta - rate * step) > current + 1e-15:
                rate /= 2
            theta = theta - rate * step
            if np.max(np.abs(rate * step)) < 1e-11:
                break
        a = float(theta[0]) / scale
        if a < 0:
            # A calibrator is a non-decreasing map. Where the statistic runs against the outcome, the likelihood's
            # best such map (the problem is convex, so the constrained optimum lies on a = 0) is flat: the base rate.
            rate = min(max(float(np.mean(y)), 1e-12), 1.0 - 1e-12) if len(y) else 0.5
            self.params = {"a": 0.0, "b": math.log(rate / (1.0 - rate))}
            return self
        self.params = {"a": a, "b": float(theta[1]) - a * centre}
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.params["a"] * _finite(np.asarray(x, dtype=np.float64)) + self.params["b"])


class TemperatureCalibrator(Calibrator):
    """Temperature scaling of a logit-scale statistic: ``p = sigmoid(x / T)``; keeps 0 as the 0.5 boundary."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
        from scipy.optimize import minimize_scalar  # lazy: slow to import; few functions need it

        x, y = _finite(x), np.asarray(y, dtype=np.float64)

        def nll(log_t: float) -> float:
            logits = x / math.exp(log_t)
            return float(np.sum(np.logaddexp(0.0, logits) - y * logits))

        result = minimize_scalar(nll, bounds=(-12.0, 12.0), method="bounded", options={"xatol": 1e-10})
        self.params = {"temperature": math.exp(float(result.x))}
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(_finite(np.asarray(x, dtype=np.float64)) / self.params["temperature"])


class IsotonicCalibrator(Calibrator):
    """Isotonic regression (pool-adjacent-violators; SciPy's implementation), clipped outside the fit range.

    Equal statistics are pooled first (their mean outcome, weighted by count), as scikit-learn's
    ``IsotonicRegression`` does; SciPy's solver is used because sweeps fit thousands of these.
    """

    def fit(self, x: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        from scipy.optimize import isotonic_regression  # lazy: slow to import; few functions need it

        x, y = _finite(x), np.asarray(y, dtype=np.float64)
        values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        means = np.bincount(inverse, weights=y) / counts
        fitted = isotonic_regression(means, weights=counts.astype(np.float64), increasing=True).x
        self.params = {"x": [float(v) for v in values], "y": [float(min(max(v, 0.0), 1.0)) for v in fitted]}
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.interp(_finite(np.asarray(x, dtype=np.float64)), self.params["x"], self.params["y"])


def load_calibrator(name: str, options: Mapping[str, Any] | None = None) -> Calibrator:
    """A fresh (unfitted) calibrator by registered id; unknown names fail with a close-match suggestion."""

    entry = resolve("calibrators", name)
    return build("calibrators", entry.spec, entry.spec, dict(options or {}))


class GuardedCalibrator:
    """A calibrator as the decision stage calls it: every ``fit`` and ``transform`` goes through the guarded call
    (an exception becomes one line naming the plugin), and what ``transform`` returns is checked like scores are:
    one finite probability in [0, 1] per statistic, non-decreasing on the statistics it was fitted on. A bad
    calibrator is refused (:class:`~rrbench.util.errors.PluginError`), never turned into a number."""

    def __init__(self, calibrator: Calibrator) -> None:
        self.inner = calibrator
        self.label = component_label(calibrator)

    def check_kind(self, score_kind: str) -> None:
        with running(self.label, "check_kind()"):
            self.inner.check_kind(score_kind)

    def fit(self, x: np.ndarray, y: np.ndarray) -> GuardedCalibrator:
        with running(self.label, "fit()"):
            self.inner.fit(x, y)
        #: the fitted statistics' probabilities, checked for order once here (the stage reuses them)
        self.fitted = self.transform(x)
        check_non_decreasing(x, self.fitted, self.label)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with running(self.label, "transform()"):
            raw = self.inner.transform(x.reshape(-1))
        return check_probabilities(raw, x.size, self.label).reshape(x.shape)

    def describe(self) -> dict[str, Any]:
        with running(self.label, "describe()"):
            return self.inner.describe()


# -- thresholds ------------------------------------------------------------------------------------------------------
def fit_threshold(x: np.ndarray, has_evidence: np.ndarray) -> dict[str, Any]:
    """The threshold with the best balanced accuracy of answer (x >= t) vs abstain, and what it achieves.

    The threshold sits halfway between the chosen statistic and the next lower one: the same decisions on the fit
    queries, more margin on new ones. Needs both has- and no-evidence queries.
    """
    x = np.asarray(x, dtype=np.float64)
    has = np.asarray(has_evidence, dtype=bool)
    if has.all() or (~has).all():
        return {"threshold": None, "reason": "fitting a threshold needs both has- and no-evidence queries"}
    candidates = np.unique(x[np.isfinite(x)])
    if len(candidates) == 0:
        return {"threshold": None, "reason": "no query has a finite score"}
    candidates = np.concatenate([candidates, [candidates[-1] + 1.0]])  # also "never answer"
    answer = x[has][None, :] >= candidates[:, None]
    false = x[~has][None, :] >= candidates[:, None]
    answer_rate, fer = answer.mean(axis=1), false.mean(axis=1)
    balanced = (answer_rate + (1.0 - fer)) / 2.0
    j = int(np.argmax(balanced))
    lower = candidates[j - 1] if j > 0 else candidates[j] - 1.0
    return {"threshold": float((candidates[j] + lower) / 2.0), "false_evidence_rate": float(fer[j]),
            "answer_rate_has_evidence": float(answer_rate[j]), "balanced_accuracy": float(balanced[j]),
            "queries_has_evidence": int(has.sum()), "queries_no_evidence": int((~has).sum()),
            "rule": "max balanced accuracy of answer/abstain; midpoint below the chosen statistic"}


def fe_thresholds(x: np.ndarray, has_evidence: np.ndarray, budgets: Sequence[float] | np.ndarray) -> np.ndarray:
    """For each budget: the lowest threshold whose false-evidence rate on ``(x, has_evidence)`` is within it.

    Answering is ``x >= t``, so both the FE rate and the answer rate are step functions of ``t`` that only change at
    the statistics themselves: one sorted pass over the no-evidence statistics gives every budget's threshold. The
    lowest such threshold answers the most has-evidence queries. Like :func:`fit_threshold` it sits halfway between
    the lowest statistic it answers and the next lower one (same decisions on the fit queries, more margin on new
    ones); a budget met only by answering nothing gets one above every statistic. Needs no-evidence queries.
    """
    x = np.asarray(x, dtype=np.float64)
    has = np.asarray(has_evidence, dtype=bool)
    budgets = np.asarray(budgets, dtype=np.float64)
    candidates = np.unique(x[np.isfinite(x)])
    if len(candidates) == 0 or has.all():
        return np.full(len(budgets), np.nan)
    candidates = np.concatenate([candidates, [candidates[-1] + 1.0]])  # also "never answer"
    negatives = np.sort(x[~has])
    # false[j]: no-evidence queries answered at candidates[j] (non-increasing in j)
    false = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    allowed = np.floor(budgets * len(negatives) + 1e-9)  # at most this many false answers
    # the first candidate whose count is within the budget (the last one, "never answer", always is)
    j = np.searchsorted(-false, -allowed, side="left")
    lower = np.where(j > 0, candidates[np.maximum(j - 1, 0)], candidates[j] - 1.0)
    return (candidates[j] + lower) / 2.0


def fit_fe_threshold(x: np.ndarray, has_evidence: np.ndarray, max_fe: float) -> dict[str, Any]:
    """The lowest threshold whose false-evidence rate on the fit queries is at most ``max_fe``, and what it achieves
    there (see :func:`fe_thresholds`)."""
    x = np.asarray(x, dtype=np.float64)
    has = np.asarray(has_evidence, dtype=bool)
    if has.all() or (~has).all():
        return {"threshold": None, "reason": "fitting a threshold needs both has- and no-evidence queries"}
    if not np.isfinite(x).any():
        return {"threshold": None, "reason": "no query has a finite score"}
    threshold = float(fe_thresholds(x, has, [max_fe])[0])
    return {"threshold": threshold, "false_evidence_rate": float(np.mean(x[~has] >= threshold)),
            "answer_rate_has_evidence": float(np.mean(x[has] >= threshold)), "max_fe": float(max_fe),
            "queries_has_evidence": int(has.sum()), "queries_no_evidence": int((~has).sum()),
            "rule": "lowest threshold with FE rate <= max_fe; midpoint below the lowest answered statistic"}


# -- the stage -------------------------------------------------------------------------------------------------------
THRESHOLD_MODES = ("natural", "fixed", "fit", "max-fe", "checkpoint")
#: modes whose threshold is fitted (data, not configuration: never hashed as a value)
FITTED_MODES = ("fit", "max-fe")
#: the decision scale of combined scores (ensembles, interpolation): split-level z-scores, not any model's raw scale
COMBINED_SCALE = "z-score"


@dataclass(frozen=True)
class DecisionConfig:
    """How a query's final scores become answer/abstain. ``threshold`` is used when ``threshold_mode`` is fixed or
    checkpoint (then it holds the checkpoint's value); ``threshold_max_fe`` is the false-evidence budget of the
    ``max-fe`` mode; ``fit_split`` names where fits come from, a split of ``fit_task`` when that is set (another task than the
    evaluated one); ``cross_fit`` > 1 cross-fits on the evaluation split instead."""

    policy: str = "max"
    calibrator: str = "none"
    threshold_mode: str = "natural"
    threshold: float | None = None
    fit_split: str | None = None
    cross_fit: int | None = None
    cross_fit_seed: int = 13
    #: the false-evidence budget a ``max-fe`` threshold is fitted to
    threshold_max_fe: float | None = None
    fit_task: str | None = None

    @property
    def needs_fit(self) -> bool:
        return self.calibrator != "none" or self.threshold_mode in FITTED_MODES

    @property
    def fit_where(self) -> str:
        """Where fits come from, as text: ``dev_select`` or ``other-task:dev_select``."""
        return f"{self.fit_task}:{self.fit_split}" if self.fit_task else str(self.fit_split)

    def validate(self, eval_split: str) -> None:
        if self.policy not in POLICIES:
            raise UsageError(f"--abstain must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.threshold_mode not in THRESHOLD_MODES:
            raise UsageError(f"unknown threshold mode {self.threshold_mode!r}")
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise UsageError("--threshold must be a finite number")
        if self.cross_fit is not None and self.cross_fit < 2:
            raise UsageError(f"--cross-fit must be >= 2 folds, got {self.cross_fit}")
        if self.threshold_mode == "max-fe":
            budget = self.threshold_max_fe
            if budget is None or not 0.0 <= budget <= 1.0 or math.isnan(budget):
                raise UsageError(f"--threshold max-fe needs --threshold-max-fe within [0, 1], got {budget}")
        elif self.threshold_max_fe is not None:
            raise UsageError("--threshold-max-fe applies to --threshold max-fe only")
        if self.threshold_mode == "checkpoint" and self.calibrator != "none":
            raise UsageError(f"--threshold checkpoint is a raw-score threshold; it cannot be compared with the "
                             f"probabilities of calibrator {self.calibrator!r} (use --threshold fit or a number)")
        if self.fit_task is not None and (self.fit_split is None or self.cross_fit):
            raise UsageError("--calibrate-task names the task of --calibrate-on SPLIT; give --calibrate-on (and no "
                             "--cross-fit, which fits on the evaluated split itself)")
        if self.fit_task is not None and not self.needs_fit:
            raise UsageError("--calibrate-task has nothing to fit: add --calibrator or --threshold fit/max-fe")
        if not self.needs_fit:
            return
        what = (f"calibrator {self.calibrator!r}" if self.calibrator != "none" else "a fitted threshold")
        if self.fit_split is None and not self.cross_fit:
            raise UsageError(f"{what} must be fitted on a named split: pass --calibrate-on SPLIT "
                             f"(another split than {eval_split!r}, or {eval_split!r} with --cross-fit K)")
        if (self.fit_split is None or (self.fit_split == eval_split and self.fit_task is None)) \
                and not self.cross_fit:
            # never suggest the very split being evaluated; a configuration selected on dev_select (a sweep's
            # best.yaml) is confirmed on dev_final
            advice = ("evaluate another split (--split dev_final)" if eval_split == "dev_select"
                      else "fit it on another split (--calibrate-on dev_select)")
            raise UsageError(f"{what} would be fitted on {eval_split!r}, the split it is evaluated on; {advice} or "
                             f"cross-fit on {eval_split!r} itself (--cross-fit 5)")
        if self.cross_fit and self.fit_split not in (None, eval_split):
            raise UsageError(f"--cross-fit fits on the evaluation split itself; drop --calibrate-on "
                             f"{self.fit_split} or --cross-fit")

    def hashed(self) -> dict[str, Any]:
        """What enters the configuration hash (fitted values are data, not configuration; their recipe is hashed)."""
        out: dict[str, Any] = {}
        if self.policy != "max":
            out["abstain"] = self.policy
        if self.calibrator != "none":
            out["calibrator"] = {"id": self.calibrator}
        if self.needs_fit:
            out["fit"] = ({"cross_fit": self.cross_fit, "seed": self.cross_fit_seed} if self.cross_fit
                          else {"split": self.fit_split})
        if self.fit_task is not None and "split" in out.get("fit", {}):
            out["fit"]["task"] = self.fit_task
        if self.threshold_mode == "fit":
            out["threshold_fit"] = "balanced-accuracy"
        if self.threshold_mode == "max-fe":
            out["threshold_fit"] = {"rule": "max-fe", "max_fe": float(self.threshold_max_fe or 0.0)}
        if self.threshold_mode == "checkpoint":
            out["threshold_source"] = "checkpoint"
        return out


@dataclass
class Decision:
    """The stage's output for one split: per-query statistic (on the decision scale) and answer flags."""

    statistic: np.ndarray  # compared with the threshold: probability when calibrated, raw otherwise
    answered: np.ndarray
    threshold: float | None
    source: str
    scale: str  # score kind of the statistic ("probability" when calibrated)
    calibrator: dict[str, Any] | None = None
    folds: list[dict[str, Any]] = field(default_factory=list)
    probabilities: Any = None  # callable mapping raw scores -> probabilities (max policy), for ECE/Brier

    def describe(self, config: DecisionConfig) -> dict[str, Any]:
        return {"policy": config.policy, "scale": self.scale, "threshold": self.threshold, "source": self.source,
                "calibrator": self.calibrator, "fit_split": config.fit_split, "fit_task": config.fit_task,
                "cross_fit": config.cross_fit,
                "folds": self.folds or None}


def _calibrate(config: DecisionConfig, score_kind: str, x_fit: np.ndarray, y_fit: np.ndarray,
               x_eval: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    """Fit the calibrator on ``x_fit``; returns the fit and evaluation statistics on the decision scale, and the
    fitted calibrator (None without one)."""
    if config.calibrator == "none":
        return x_fit, x_eval, None
    calibrator = GuardedCalibrator(load_calibrator(config.calibrator))
    calibrator.check_kind(score_kind)
    calibrator.fit(x_fit, y_fit)
    return calibrator.fitted, calibrator.transform(x_eval), calibrator


def _fit_and_apply(config: DecisionConfig, score_kind: str, x_fit: np.ndarray, y_fit: np.ndarray,
                   x_eval: np.ndarray) -> tuple[np.ndarray, float | None, str, dict[str, Any] | None, Any]:
    """Fit the calibrator (and threshold) on ``x_fit`` and decide ``x_eval``; returns statistic, threshold, ..."""
    stat_fit, stat_eval, calibrator = _calibrate(config, score_kind, x_fit, y_fit, x_eval)
    probabilities = calibrator.transform if calibrator is not None else None
    if config.threshold_mode == "fit":
        fitted = fit_threshold(stat_fit, y_fit)
        if fitted["threshold"] is None:
            raise UsageError(f"cannot fit a threshold: {fitted['reason']}")
        threshold, source = fitted["threshold"], "fitted (max balanced accuracy)"
    elif config.threshold_mode == "max-fe":
        fitted = fit_fe_threshold(stat_fit, y_fit, float(config.threshold_max_fe or 0.0))
        if fitted["threshold"] is None:
            raise UsageError(f"cannot fit a threshold: {fitted['reason']}")
        threshold, source = fitted["threshold"], f"fitted (lowest with FE rate <= {config.threshold_max_fe:g})"
    elif config.threshold_mode in ("fixed", "checkpoint"):
        threshold, source = config.threshold, config.threshold_mode
    else:
        threshold, source = 0.5, "natural boundary of calibrated probabilities"
    return stat_eval, threshold, source, (calibrator.describe() if calibrator else None), probabilities


def check_raw_threshold(config: DecisionConfig, score_kind: str) -> None:
    """A checkpoint's threshold is a value of its model's raw scores; combined scores (an ensemble, interpolation
    with the retriever) are split-level z-scores, so comparing the two would answer by accident. Refused, one line."""
    if config.threshold_mode == "checkpoint" and score_kind == COMBINED_SCALE:
        raise UsageError("--threshold checkpoint is a raw-score threshold of the checkpoint's model; the decision "
                         "reads combined z-scores here (--interpolate or an ensemble): use --threshold fit/max-fe "
                         "with --calibrate-on, or a number on the z-score scale")


def decide(config: DecisionConfig, statistic: np.ndarray, score_kind: str,
           fit: tuple[np.ndarray, np.ndarray] | None = None,
           folds: Sequence[np.ndarray] | None = None, has_evidence: np.ndarray | None = None) -> Decision:
    """Answer/abstain per query.

    ``statistic``: the evaluation split's query statistics (raw scale, see :func:`query_statistic`).
    ``fit``: ``(statistics, has_evidence)`` of the fit split, when fits come from another split.
    ``folds``: for cross-fitting, one array of evaluation-row indices per fold (with ``has_evidence`` of the rows).
    """
    statistic = np.asarray(statistic, dtype=np.float64)
    check_raw_threshold(config, score_kind)
    if not config.needs_fit:
        if config.threshold_mode in ("fixed", "checkpoint"):
            threshold, source = config.threshold, ("cli" if config.threshold_mode == "fixed" else "checkpoint")
        elif config.policy == "max" and score_kind in NATURAL_THRESHOLDS:
            threshold, source = NATURAL_THRESHOLDS[score_kind], f"natural boundary of {score_kind} scores"
        else:
            threshold = None
            source = (f"none: {score_kind} scores have no natural decision boundary (pass --threshold)"
                      if config.policy == "max" else "none: a margin has no natural boundary (pass --threshold)")
        answered = statistic >= threshold if threshold is not None else np.zeros(len(statistic), dtype=bool)
        probabilities = (lambda x: np.asarray(x, dtype=np.float64)) if score_kind == "probability" else None
        return Decision(statistic, answered, threshold, source, score_kind, probabilities=probabilities)

    scale = "probability" if config.calibrator != "none" else score_kind
    if folds is None:
        if fit is None:
            raise UsageError("the decision needs a fit split or cross-fitting folds")
        stat, threshold, source, calib, probs = _fit_and_apply(config, score_kind, fit[0], fit[1], statistic)
        return Decision(stat, stat >= threshold, threshold, source + f" on {config.fit_where}", scale, calib,
                        probabilities=probs)
    if has_evidence is None:
        raise UsageError("cross-fitting needs the evaluation split's labels")
    out = np.empty_like(statistic)
    answered = np.zeros(len(statistic), dtype=bool)
    reports = []
    probs_per_fold: list[tuple[np.ndarray, Any]] = []
    for k, rows in enumerate(folds):
        mask = np.ones(len(statistic), dtype=bool)
        mask[rows] = False
        stat, threshold, source, calib, probs = _fit_and_apply(
            config, score_kind, statistic[mask], has_evidence[mask], statistic[rows])
        out[rows] = stat
        answered[rows] = stat >= threshold
        reports.append({"fold": k, "queries": len(rows), "threshold": threshold, "calibrator": calib})
        probs_per_fold.append((np.asarray(rows), probs))
    return Decision(out, answered, None, f"cross-fitted over {len(folds)} grouped folds", scale,
                    {"id": config.calibrator} if config.calibrator != "none" else None, reports,
                    probabilities=probs_per_fold if config.calibrator != "none" else None)


def cross_fitted_fe_budgets(config: DecisionConfig, statistic: np.ndarray, score_kind: str,
                            folds: Sequence[np.ndarray], has_evidence: np.ndarray,
                            budgets: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The cross-fitted false-evidence rate and answer rate of the ``max-fe`` rule at each of several budgets.

    What :func:`decide` computes for ``config`` with ``threshold_mode="max-fe"`` and one budget, for every budget at
    once: each fold's calibrator is fitted once, and one sorted pass over the other folds' statistics gives every
    budget's threshold (:func:`fe_thresholds`). A sweep reads it to find the largest budget whose held-out FE rate
    stays within its own budget without evaluating each. Returns two arrays indexed like ``budgets``.
    """
    statistic = np.asarray(statistic, dtype=np.float64)
    has = np.asarray(has_evidence, dtype=bool)
    answered = np.zeros((len(budgets), len(statistic)), dtype=bool)
    for rows in folds:
        mask = np.ones(len(statistic), dtype=bool)
        mask[rows] = False
        stat_fit, stat_eval, _ = _calibrate(config, score_kind, statistic[mask], has[mask], statistic[rows])
        thresholds = fe_thresholds(stat_fit, has[mask], budgets)
        answered[:, rows] = np.asarray(stat_eval)[None, :] >= thresholds[:, None]  # NaN (cannot fit): never
    nan = np.full(len(budgets), np.nan)
    fe = answered[:, ~has].mean(axis=1) if (~has).any() else nan
    answer = answered[:, has].mean(axis=1) if has.any() else nan
    return fe, answer


# -- calibration metrics ---------------------------------------------------------------------------------------------
def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE with equal-mass bins: sum over bins of (bin share) * |mean label - mean probability|."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    if len(probs) == 0:
        return float("nan")
    order = np.argsort(probs, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            total += len(chunk) / len(probs) * abs(float(labels[chunk].mean()) - float(probs[chunk].mean()))
    return total


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    return float(np.mean((probs - np.asarray(labels, dtype=np.float64)) ** 2)) if len(probs) else float("nan")


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Equal-mass bins (mean probability, observed frequency, count) for a reliability diagram."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    order = np.argsort(probs, kind="stable")
    out = []
    for chunk in np.array_split(order, min(bins, max(len(order), 1))):
        if len(chunk):
            out.append({"mean_probability": float(probs[chunk].mean()), "frequency": float(labels[chunk].mean()),
                        "count": len(chunk)})
    return out
