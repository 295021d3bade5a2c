"""Tier A: ``rrbench sweep``, inference-only hyper-parameter search over cached scores.

The research plan selects the best end-to-end system under a false-evidence budget, and most of that choice
(pool sizes, fusion, which rerankers and how they are combined, interpolation with the retriever, calibration,
abstention, the threshold) needs no new model call: it is a different reading of scores already computed. So a
sweep first proves that every score its space can ask for is cached (``rrbench sweep fill`` computes the missing
ones, once), then runs an Optuna study whose trials never call a model.

A trial is a :class:`rrbench.pipeline.runner.RunConfig`. It is evaluated by :func:`rrbench.pipeline.combine.evaluate_split`, the
function ``rrbench run`` uses, on arrays built the way ``rrbench run`` builds them, so a trial's metrics equal an
ordinary run of the same configuration. Fits (calibrators, fitted thresholds) are cross-fitted over grouped folds of
the sweep's split, so no query's decision uses a fit that saw it; ``best.yaml`` fits them on the sweep's split and
is meant for the next split (``rrbench run --config best.yaml --split dev_final``).

The objective is nDCG@10 subject to false-evidence rate <= ``max_fe`` (Optuna's ``constraints_func``; a trial
without any decision counts as infeasible).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.hpo.space import Range, Space
from rrbench.hpo.study import make_sampler, suggest_value
from rrbench.models.factory import load_reranker
from rrbench.pipeline.candidates import generate
from rrbench.pipeline.combine import SplitArrays, combine, evaluate_split
from rrbench.pipeline.decide import query_statistic
from rrbench.pipeline.runner import RunConfig
from rrbench.pipeline.score_cache import open_cache, wrap
from rrbench.records.ledger import test_split_use
from rrbench.tasks.resolve import candidate_text, get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.progress import progress as _bar
from rrbench.util.storage import open_storage, redact_url

CROSS_FIT_FOLDS = 5
STUDY_FILE = "study.sqlite"


@dataclass
class SweepSetup:
    """What a sweep is about: the task split, the components it may combine, and where caches live."""

    task: str = "scifact-evidence"
    split: str = "dev_select"
    retrievers: tuple[str, ...] = ("bm25",)
    rerankers: tuple[str, ...] = ()
    max_fe: float = 0.1
    seed: int = 13
    context: tuple[int, ...] = (0,)
    batch_size: int = 32
    device: str | None = None
    dtype: str = "float32"
    cache_dir: str | None = None
    reranker_options: dict[str, Any] = field(default_factory=dict)
    show_progress: bool | None = None

    def validate(self) -> None:
        if not 0.0 <= self.max_fe <= 1.0 or math.isnan(self.max_fe):
            raise UsageError(f"--max-fe must be within [0, 1], got {self.max_fe}")
        test_split_use(self.split, False, "rrbench sweep", reads_labels_for="selecting a configuration")
        if len(set(self.rerankers)) != len(self.rerankers):
            raise UsageError("the same --reranker is given twice")

    def identity(self, space: Space) -> dict[str, Any]:
        """What a stored study must match to be resumed."""
        return {"task": self.task, "split": self.split, "retrievers": list(self.retrievers),
                "rerankers": list(self.rerankers), "max_fe": self.max_fe, "seed": self.seed,
                "context": list(self.context), "dtype": self.dtype, "space": space.describe()}


# -- what the space needs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorKey:
    fusion: str
    rrf_k: float = 60
    alpha: float = 0.5
    norm: str = "minmax"
    context: int = 0


def _values(space: Space, name: str) -> list[Any]:
    value = space.dims[name]
    if isinstance(value, Range):
        if value.step:
            count = round((value.high - value.low) / value.step)
            return [round(value.low + i * value.step, 10) for i in range(count + 1)]
        return [value.low, value.high]
    return list(value)


def generator_keys(setup: SweepSetup, space: Space) -> list[GeneratorKey]:
    """Every candidate generator a trial can pick (the first retriever alone, or each fusion setting)."""
    fusions = _values(space, "fusion") if len(setup.retrievers) > 1 else ["none"]
    keys = []
    for context in setup.context:
        for fusion in fusions:
            if fusion == "rrf":
                keys += [GeneratorKey("rrf", rrf_k=float(k), context=context) for k in _values(space, "rrf_k")]
            elif fusion == "weighted":
                keys += [GeneratorKey("weighted", alpha=float(a), norm=n, context=context)
                         for a in _values(space, "alpha") for n in _values(space, "norm")]
            else:
                keys.append(GeneratorKey("none", context=context))
    return keys


def _variants(space: Space) -> list[tuple[int | None, str | None]]:
    lengths = space.dims.get("max_length") or [None]
    instructions = space.dims.get("instruction") or [None]
    return [(None if m is None else int(m), i) for m in lengths for i in instructions]


# -- trial configurations ------------------------------------------------------------------------------------------
def base_config(setup: SweepSetup, key: GeneratorKey, top_k: int) -> RunConfig:
    retrievers = setup.retrievers if key.fusion != "none" else setup.retrievers[:1]
    return RunConfig(task=setup.task, split=setup.split,
                     retriever=retrievers if len(retrievers) > 1 else retrievers[0],
                     fusion=None if key.fusion == "none" else key.fusion, rrf_k=key.rrf_k, alpha=key.alpha,
                     norm=key.norm, context=key.context, top_k_retriever=int(top_k), seed=setup.seed,
                     batch_size=setup.batch_size, device=setup.device, dtype=setup.dtype, cache_dir=setup.cache_dir,
                     reranker_options=dict(setup.reranker_options), show_progress=False)


class ScoreSource:
    """Cached head scores of every reranker variant, for the candidate pools a sweep can build."""

    def __init__(self, setup: SweepSetup, space: Space) -> None:
        self.setup, self.space = setup, space
        self.task = get_task(setup.task)
        self.queries = sorted(self.task.split_queries(setup.split), key=lambda q: q.query_id)
        if not self.queries:
            raise UsageError(f"task {self.task.id!r} split {setup.split!r} has no queries")
        self.k_values = sorted({int(k) for k in _values(space, "top_k_retriever")})
        self.n_max = max(int(n) for n in _values(space, "top_k_rerank")) if setup.rerankers else 0
        self._pools: dict[tuple[GeneratorKey, int], Any] = {}
        self._arrays: dict[tuple[GeneratorKey, int, Any], SplitArrays] = {}
        self._scores: dict[tuple[str, Any], list[dict[int, float]]] = {}
        self._kinds: dict[str, str] = {}
        self._need: list[set[int]] | None = None

    # pools ---------------------------------------------------------------------------------------------------------
    def candidates(self, key: GeneratorKey, top_k: int) -> Any:
        memo = (key, top_k)
        if memo not in self._pools:
            config = base_config(self.setup, key, top_k)
            deepest = max(self.k_values)
            if top_k != deepest:
                self.candidates(key, deepest)  # one deep ranking serves every shallower pool from the cache
            self._pools[memo] = generate(self.task, self.setup.split, self.queries, config.generator(), top_k,
                                         device=self.setup.device)
        return self._pools[memo]

    def needed_pairs(self) -> list[set[int]]:
        """Per query: every candidate any trial can rerank (the head of each generator's deepest pool)."""
        if self._need is not None:
            return self._need
        need: list[set[int]] = [set() for _ in self.queries]
        deepest = max(self.k_values)
        for key in generator_keys(self.setup, self.space):
            for row, (ids, _) in enumerate(self.candidates(key, deepest).pools):
                need[row].update(int(i) for i in ids[:self.n_max])
        self._need = need
        return need

    # scores --------------------------------------------------------------------------------------------------------
    def member(self, name: str, variant: tuple[int | None, str | None]) -> Any:
        max_length, instruction = variant
        reranker = load_reranker(name, deferred=True, device=self.setup.device, max_length=max_length,
                                 batch_size=self.setup.batch_size, dtype=self.setup.dtype, instruction=instruction,
                                 **self.setup.reranker_options)
        if reranker.interaction == "listwise":
            raise UsageError(f"reranker {name!r} is listwise: its scores depend on the candidate list, so Tier A "
                             f"sweeps cannot recombine them; sweep pointwise rerankers")
        cache = open_cache(self.setup.cache_dir, True)
        if cache is None:
            raise UsageError("a sweep reads the score cache; it is disabled (RRBENCH_CACHE=off)")
        wrapped = wrap(reranker, cache)
        if not hasattr(wrapped, "cache_stats"):
            raise UsageError(f"reranker {name!r} cannot be cached (no weights on disk, no revision): a sweep "
                             f"cannot use it")
        return wrapped

    def _needed_pairs(self, context: int) -> tuple[list[str], list[str], list[tuple[int, int]]]:
        """Every (query, candidate text) pair a trial can ask for, and its (row, candidate id)."""
        queries, texts, where = [], [], []
        for row, (query, ids) in enumerate(zip(self.queries, self.needed_pairs(), strict=True)):
            for i in sorted(ids):
                queries.append(query.text)
                texts.append(candidate_text(self.task, i, context))
                where.append((row, i))
        return queries, texts, where

    def _stored(self) -> Iterator[tuple[str, tuple[int | None, str | None], int, Any, list[str], list[str],
                                        list[tuple[int, int]], list[float | None]]]:
        """For every reranker, variant and context: the member, the needed pairs and what the cache holds."""
        for context in self.setup.context:
            for name in self.setup.rerankers:
                for variant in _variants(self.space):
                    member = self.member(name, variant)
                    queries, texts, where = self._needed_pairs(context)
                    try:
                        yield name, variant, context, member, queries, texts, where, \
                            member.cached_scores(queries, texts)
                    finally:
                        member.close()

    def missing(self) -> list[tuple[str, tuple[int | None, str | None], int, int]]:
        """``(reranker, variant, missing, needed)`` for every variant with scores absent from the cache."""
        report = []
        for name, variant, _, _, queries, _, _, stored in self._stored():
            lacking = sum(1 for s in stored if s is None)
            if lacking:
                report.append((name, variant, lacking, len(queries)))
        return report

    def fill(self, progress: bool | None = None) -> dict[str, int]:
        """Score every missing pair through the engine (each model loaded once); returns pairs scored per model."""
        done: dict[str, int] = {}
        for name, variant, _, member, queries, texts, _, stored in self._stored():
            todo = list(dict.fromkeys((q, d) for q, d, s in zip(queries, texts, stored, strict=True) if s is None))
            chunk = max(256, self.setup.batch_size * 8)
            label = f"filling {name}" + (f" max_length={variant[0]}" if variant[0] else "")
            with _bar(len(todo), label, progress, unit="pair") as bar:
                for start in range(0, len(todo), chunk):
                    part = todo[start:start + chunk]
                    member.score_pairs([p[0] for p in part], [p[1] for p in part])
                    bar.update(len(part))
            done[f"{name}{'' if variant == (None, None) else variant}"] = len(todo)
        return done

    def head_scores(self, name: str, variant: Any, context: int) -> list[dict[int, float]]:
        """Per query: candidate id -> cached score, for every needed candidate (fails if any is missing)."""
        memo = (name, (variant, context))
        if memo not in self._scores:
            member = self.member(name, variant)
            try:
                queries, texts, where = self._needed_pairs(context)
                stored = member.cached_scores(queries, texts)
                self._kinds[name] = member.score_kind
            finally:
                member.close()
            if any(s is None for s in stored):
                raise UsageError(f"reranker {name!r} lacks cached scores; run `rrbench sweep fill` first")
            out: list[dict[int, float]] = [{} for _ in self.queries]
            for (row, i), score in zip(where, stored, strict=True):
                out[row][i] = float(score)  # type: ignore[arg-type]
            self._scores[memo] = out
        return self._scores[memo]

    def arrays(self, config: RunConfig) -> SplitArrays:
        """The arrays ``rrbench run`` would build for ``config`` (pools, grades, every member's head scores)."""
        key = GeneratorKey("none" if config.fusion is None else config.fusion, float(config.rrf_k),
                           float(config.alpha), config.norm, config.context)
        variant = (config.max_length, config.instruction)
        memo = (key, config.top_k_retriever, variant)
        if memo not in self._arrays:
            cands = self.candidates(key, config.top_k_retriever)
            data = SplitArrays.build(self.task, self.queries, cands.pools, cands.score_kind)
            for name in self.setup.rerankers:
                lookup = self.head_scores(name, variant, config.context)
                heads = [np.asarray([lookup[row][int(i)] for i in ids[:self.n_max]], dtype=np.float64)
                         for row, (ids, _) in enumerate(cands.pools)]
                data.add_reranker(name, heads, self._kinds[name])
            self._arrays[memo] = data
        return self._arrays[memo]


# -- one trial -----------------------------------------------------------------------------------------------------
def suggest(trial: Any, setup: SweepSetup, space: Space) -> dict[str, Any]:
    """Sample one configuration (define-by-run: conditional dimensions only when they apply)."""
    dims = space.dims

    def cat(name: str, choices: Sequence[Any] | None = None) -> Any:
        return suggest_value(trial, name, list(choices if choices is not None else dims[name]))

    def num(name: str, label: str | None = None) -> float:
        return float(suggest_value(trial, label or name, dims[name]))

    params: dict[str, Any] = {"top_k_retriever": int(cat("top_k_retriever"))}
    if len(setup.retrievers) > 1:
        params["fusion"] = cat("fusion")
        if params["fusion"] == "rrf":
            params["rrf_k"] = float(cat("rrf_k"))
        elif params["fusion"] == "weighted":
            params["alpha"] = num("alpha")
            params["norm"] = cat("norm")
    if len(setup.context) > 1:
        params["context"] = int(cat("context", setup.context))
    if setup.rerankers:
        members = str(cat("rerankers")).split("+")
        params["rerankers"] = members
        params["top_k_rerank"] = int(cat("top_k_rerank"))
        if len(members) > 1:
            params["ensemble_weights"] = [num("ensemble_weight", f"weight:{m}") for m in members]
            params["ensemble_norm"] = cat("ensemble_norm")
        params["interpolate"] = num("interpolate")
        if params["interpolate"] > 0:
            params["interpolate_norm"] = cat("interpolate_norm")
        for name in ("max_length", "instruction"):
            if dims.get(name):
                params[name] = cat(name)
    params["abstain"] = cat("abstain")
    params["calibrator"] = cat("calibrator")
    params["threshold_mode"] = cat("threshold_mode")
    if params["threshold_mode"] == "fixed":
        if params["calibrator"] == "none":
            params["threshold_quantile"] = num("threshold_quantile")
        else:
            params["prob_threshold"] = num("prob_threshold")
    return params


def cross_fit_folds(groups: int) -> int:
    """Folds for cross-fitting a calibrator/threshold on the selection split: ``CROSS_FIT_FOLDS``, fewer when the
    split has fewer independent groups (at least 2, which grouped k-fold itself insists on)."""
    return max(2, min(CROSS_FIT_FOLDS, groups))


def config_for(params: dict[str, Any], setup: SweepSetup, source: ScoreSource) -> RunConfig:
    """The run configuration of a trial (a fixed raw threshold is resolved from its quantile here)."""
    key = GeneratorKey(params.get("fusion", "none"), params.get("rrf_k", 60.0), params.get("alpha", 0.5),
                       params.get("norm", "minmax"), params.get("context", setup.context[0]))
    config = base_config(setup, key, params["top_k_retriever"])
    members = [m for m in params.get("rerankers", [])]
    weights = list(params.get("ensemble_weights", []))
    if weights:  # a zero weight drops the member: the run then has exactly the members that count
        kept = [(m, w) for m, w in zip(members, weights, strict=True) if w > 0]
        members, weights = [m for m, _ in kept], [w for _, w in kept]
        if len(members) <= 1:
            weights = []
    needs_fit = params["calibrator"] != "none" or params["threshold_mode"] == "fit"
    config = replace(
        config, reranker=tuple(members) if len(members) > 1 else (members[0] if members else "none"),
        top_k_rerank=int(params.get("top_k_rerank", 0)) if members else config.top_k_rerank,
        ensemble_weights=tuple(weights), ensemble_norm=params.get("ensemble_norm", "minmax"),
        interpolate=float(params.get("interpolate", 0.0)), interpolate_norm=params.get("interpolate_norm", "minmax"),
        abstain=params["abstain"], calibrator=params["calibrator"],
        calibrate_on=setup.split if needs_fit else None,
        threshold="fit" if params["threshold_mode"] == "fit" else None,
        max_length=params.get("max_length"), instruction=params.get("instruction"))
    if needs_fit:  # a small selection split (a toy task, a narrow domain) is cross-fitted on as many folds as it has
        config = replace(config, cross_fit=cross_fit_folds(source.arrays(config).group_count()))
    if params["threshold_mode"] == "fixed":
        if params["calibrator"] != "none":
            config = replace(config, threshold=float(params["prob_threshold"]))
        else:
            data = source.arrays(config)

            combined = combine(data, config.combination())
            stat = query_statistic(combined.decision, combined.head, config.abstain)
            finite = stat[np.isfinite(stat)]
            value = float(np.quantile(finite, params["threshold_quantile"])) if len(finite) else 0.0
            config = replace(config, threshold=value)
    return config


def evaluate_config(config: RunConfig, source: ScoreSource, per_query: bool = False) -> Any:
    """Metrics of one configuration on the sweep's split: the arrays and function ``rrbench run`` uses."""
    data = source.arrays(config)
    folds = data.folds(int(config.cross_fit), config.seed) if config.cross_fit else None
    return evaluate_split(data, config.combination(), config.decision(), cross_fit_folds=folds,
                          pool_k=config.top_k_retriever, per_query=per_query)


# -- the study -----------------------------------------------------------------------------------------------------
METRIC_ATTRS = ("nDCG@10", "RR@10", "R@10", "false_evidence_rate", "answer_rate_has_evidence", "ece", "brier")


def objective_factory(setup: SweepSetup, space: Space, source: ScoreSource, counter: dict[str, int] | None = None
                      ) -> Callable[[Any], float]:
    import optuna  # lazy: optional: only sweeps and the matrix use it

    def objective(trial: Any) -> float:
        params = suggest(trial, setup, space)
        try:
            config = config_for(params, setup, source)
            outcome = evaluate_config(config, source)
        except UsageError as exc:  # e.g. a calibrator that cannot read this score kind: not a configuration
            trial.set_user_attr("invalid", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        metrics = outcome.metrics
        fe = metrics.get("false_evidence_rate")
        for name in METRIC_ATTRS:
            if metrics.get(name) is not None:
                trial.set_user_attr(name, float(metrics[name]))
        violation = constraint_violation(fe, setup.max_fe)
        trial.set_user_attr("constraint", violation)
        if hasattr(trial, "set_constraint"):  # Optuna >= 5: samplers read the constraint from the trial
            trial.set_constraint("false_evidence_rate", violation)
        trial.set_user_attr("config", config.to_file_dict())
        if counter is not None:
            counter["trials"] = counter.get("trials", 0) + 1
        value = metrics.get("nDCG@10")
        return float(value) if value is not None else 0.0

    return objective


def constraints(trial: Any) -> list[float]:
    return [float(trial.user_attrs.get("constraint", 1.0))]


def open_study(setup: SweepSetup, space: Space, output: Path, storage_url: str | None, sampler: str) -> Any:
    """Create or resume the study; refuse one made for another setup."""
    import optuna  # lazy: optional: only sweeps and the matrix use it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    identity = setup.identity(space)
    name = "tier-a-" + canonical_hash(identity)[:12]
    output.mkdir(parents=True, exist_ok=True)
    storage = open_storage(storage_url, output / STUDY_FILE)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                sampler=make_sampler(sampler, setup.seed, constraints_func=constraints),
                                load_if_exists=True)
    stored = study.user_attrs.get("setup")
    if stored is None:
        study.set_user_attr("setup", identity)
    others = [s.study_name for s in optuna.get_all_study_summaries(storage) if s.study_name != name
              and s.study_name.startswith("tier-a-")]
    if others and storage_url is None:
        raise UsageError(f"{output / STUDY_FILE} holds a sweep with another setup ({others[0]}); use another "
                         f"--output, or delete the folder to start over")
    if storage_url is None:  # one machine: a RUNNING trial left here belongs to a killed process
        from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study._storage.set_trial_state_values(stale._trial_id, TrialState.FAIL)
    study.set_user_attr("storage", redact_url(storage_url) if storage_url else f"sqlite:///{output / STUDY_FILE}")
    return study


def run_trials(study: Any, objective: Callable[[Any], float], trials: int, progress: bool | None) -> int:
    """Run trials until ``trials`` have completed in total (a resumed study counts what it has); returns how many
    are still missing. A round in which no trial completes (every sample invalid, hence pruned) ends it early:
    sampling such a space again would loop forever."""
    from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    remaining = max(0, trials - done)
    if remaining:
        with _bar(remaining, "tier A trials", progress, unit="trial") as bar:
            while remaining > 0:
                study.optimize(objective, n_trials=remaining, callbacks=[lambda s, t: bar.update(
                    1 if t.state == TrialState.COMPLETE else 0)])
                before, done = done, len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
                remaining = max(0, trials - done)
                if done == before:  # a whole round of invalid (pruned) trials: the space cannot do better
                    break
    return remaining


def shortfall_note(study: Any, missing: int) -> str | None:
    """Why fewer trials than asked completed: the most recent reason a sampled configuration was invalid."""
    if not missing:
        return None
    reasons = [t.user_attrs["invalid"] for t in study.get_trials(deepcopy=False) if "invalid" in t.user_attrs]
    why = f" (e.g. {reasons[-1]})" if reasons else ""
    return f"{missing} trial(s) short: a whole round of sampled configurations was invalid{why}"


#: Slack of the false-evidence budget, so that a rate equal to the budget up to rounding counts as within it.
FE_SLACK = 1e-12


def constraint_violation(fe: float | None, max_fe: float) -> float:
    """How far a trial's false-evidence rate is over the budget (<= 0: within it), as Optuna's constrained samplers
    read it; a trial without any decision is over by 1."""
    return (float(fe) - max_fe) if fe is not None else 1.0


def feasible(fe: float | None, max_fe: float) -> bool:
    """The one definition of a feasible trial: it made decisions and its FE rate is within the budget."""
    return fe is not None and constraint_violation(fe, max_fe) <= FE_SLACK


@dataclass
class TrialRow:
    number: int
    ndcg: float
    fe: float | None
    answer: float | None
    params: dict[str, Any]
    config: dict[str, Any]
    attrs: dict[str, Any]


def completed_rows(study: Any) -> list[TrialRow]:
    from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = t.user_attrs
        rows.append(TrialRow(t.number, float(t.value), attrs.get("false_evidence_rate"),
                             attrs.get("answer_rate_has_evidence"), dict(t.params), attrs.get("config", {}), attrs))
    return rows


def pareto_front(rows: Sequence[TrialRow], maximise_second: bool = False, key: str = "fe") -> list[TrialRow]:
    """Non-dominated rows: higher nDCG@10 and lower FE rate (or higher answer rate with ``maximise_second``)."""
    points = [(r, getattr(r, key)) for r in rows if getattr(r, key) is not None]
    front = []
    for r, second in points:
        better = (lambda a, b: a >= b) if maximise_second else (lambda a, b: a <= b)
        dominated = any(o.ndcg >= r.ndcg and better(s, second) and (o.ndcg > r.ndcg or s != second)
                        for o, s in points)
        if not dominated:
            front.append(r)
    unique: dict[tuple[float, float], TrialRow] = {}
    for r in sorted(front, key=lambda r: (getattr(r, key), -r.ndcg, r.number)):
        unique.setdefault((round(r.ndcg, 12), round(getattr(r, key), 12)), r)
    return sorted(unique.values(), key=lambda r: getattr(r, key))
