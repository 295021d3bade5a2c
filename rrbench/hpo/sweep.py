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
without any decision counts as infeasible). By default the rate the constraint reads is not the cross-fitted FE rate
itself but its upper confidence bound (``fe_confidence``: the Wilson score interval's upper end at 95% over the
split's no-evidence queries, :mod:`rrbench.measures.bounds`). Choosing among thousands of solved decisions the one
that answers the most while its measured rate sits just under the budget picks the luckiest measurement, and on the
next split it lands over the budget (the winner's curse: 0.397 on dev_final for a cross-fitted 0.197 against 0.2);
the bound leaves the margin the split's size calls for.

Only the ranking is sampled. nDCG@10 does not depend on the decision, and once a ranking is fixed the FE rate and the
answer rate are step functions of the threshold, so by default (``threshold_mode: [max-fe]``) a trial *solves* its
decision: for every abstention policy and calibrator of the space it reads, in one sorted pass per fold, the
cross-fitted FE rate of the lowest threshold that keeps the other folds' FE rate within each budget of a short
ladder (``BUDGET_LADDER`` times ``max_fe``), and keeps the feasible one answering the most has-evidence queries. The
interpolation weight, and the weights of a two-reranker ensemble, are solved the same way, by one vectorised pass over
their grids (:func:`rrbench.pipeline.combine.ranking_ndcg`). The chosen configuration is then evaluated like any other,
so a trial still equals ``rrbench run`` of its configuration. A space that lists other threshold modes samples the
decision and the interpolation weight as dimensions instead.

Trials are sampled against an in-memory copy of the study and each finished trial is written to the storage in one
transaction, so a storage commit per parameter and attribute no longer paces the sweep, and a kill -9 loses at most
the trial in flight.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.components.calls import component_label, running
from rrbench.components.score_checks import check_scores
from rrbench.hpo.space import Range, Space
from rrbench.hpo.study import make_sampler, suggest_value
from rrbench.measures.bounds import rate_upper_bound
from rrbench.models.factory import load_reranker
from rrbench.pipeline.candidates import generate
from rrbench.pipeline.combine import SplitArrays, combine, evaluate_split, ranking_ndcg
from rrbench.pipeline.decide import DecisionConfig, cross_fitted_fe_budgets, query_statistic
from rrbench.pipeline.fill_queue import plan_units, work_queue
from rrbench.pipeline.runner import RunConfig
from rrbench.pipeline.score_cache import open_cache, worker_label, wrap
from rrbench.records.ledger import test_split_use
from rrbench.tasks.resolve import candidate_text, get_task
from rrbench.util.errors import RRBenchError, UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.progress import progress as _bar
from rrbench.util.storage import open_storage, redact_url

CROSS_FIT_FOLDS = 5
STUDY_FILE = "study.sqlite"
#: the false-evidence budgets a solved decision fits its threshold to, as fractions of the sweep's ``max_fe``,
#: largest first: fitted on the other folds at the full budget, the held-out rate can land just over it
BUDGET_LADDER = tuple(1.0 - j / 8 for j in range(9))
#: points of a scanned range given without a step
SCAN_POINTS = 21
#: default confidence of the upper bound a trial's FE rate must keep within the budget (0: the rate itself)
FE_CONFIDENCE = 0.95


@dataclass
class SweepSetup:
    """What a sweep is about: the task split, the components it may combine, and where caches live."""

    task: str = "scifact-evidence"
    split: str = "dev_select"
    retrievers: tuple[str, ...] = ("bm25",)
    rerankers: tuple[str, ...] = ()
    max_fe: float = 0.1
    #: feasibility reads the upper end of the two-sided Wilson interval of the FE rate at this confidence, over the
    #: split's no-evidence queries; 0: the cross-fitted rate itself
    fe_confidence: float = FE_CONFIDENCE
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
        if not 0.0 <= self.fe_confidence < 1.0 or math.isnan(self.fe_confidence):
            raise UsageError(f"--fe-confidence must be within [0, 1) (0: no bound, the rate itself), got "
                             f"{self.fe_confidence}")
        test_split_use(self.split, False, "rrbench sweep", reads_labels_for="selecting a configuration")
        if len(set(self.rerankers)) != len(self.rerankers):
            raise UsageError("the same --reranker is given twice")

    def identity(self, space: Space) -> dict[str, Any]:
        """What a stored study must match to be resumed."""
        return {"task": self.task, "split": self.split, "retrievers": list(self.retrievers),
                "rerankers": list(self.rerankers), "max_fe": self.max_fe, "fe_confidence": self.fe_confidence,
                "seed": self.seed,
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


def scan_values(space: Space, name: str) -> list[float]:
    """The values a solved dimension is scanned over: its list, its grid, or ``SCAN_POINTS`` points of a range
    without a step."""
    value = space.dims[name]
    if isinstance(value, Range) and not value.step and value.high > value.low:
        return [round(float(v), 10) for v in np.linspace(value.low, value.high, SCAN_POINTS)]
    return [float(v) for v in dict.fromkeys(_values(space, name))]


def weight_pairs(space: Space) -> list[tuple[float, float]]:
    """The weights a two-reranker ensemble is scanned over in a solved trial: ``(w, 1 - w)`` for every value ``w``
    of the ``ensemble_weight`` grid strictly between 0 and 1 (a weight of 0 is a single reranker, its own subset)."""
    return [(w, round(1.0 - w, 10)) for w in scan_values(space, "ensemble_weight") if 0.0 < w < 1.0]


def solves_decision(space: Space) -> bool:
    """Whether trials solve their decision and interpolation weight (the default ``threshold_mode: [max-fe]``)
    rather than sample them."""
    return list(space.dims.get("threshold_mode") or []) == ["max-fe"]


def variant_label(name: str, variant: tuple[int | None, str | None]) -> str:
    """A reranker variant as people read it: ``minilm-l6 max_length=64``, not ``minilm-l6(64, None)``."""
    max_length, instruction = variant
    return " ".join([name, *([f"max_length={max_length}"] if max_length else []),
                     *([f"instruction={instruction!r}"] if instruction else [])])


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
        #: content hashes of imported score bundles among the scores read (provenance of the sweep's reports)
        self.bundles: set[str] = set()

    # pools ---------------------------------------------------------------------------------------------------------
    def candidates(self, key: GeneratorKey, top_k: int) -> Any:
        memo = (key, top_k)
        if memo not in self._pools:
            config = base_config(self.setup, key, top_k)
            deepest = max(self.k_values)
            if top_k != deepest:
                deep = self.candidates(key, deepest)  # one deep ranking serves every shallower pool from the cache
                if all(len(ids) <= top_k for source in deep.sources for ids, _ in source.pools):
                    # no retriever's pool reaches top_k (a post holds fewer sentences): the pools a run would build
                    # at top_k are the deep ones, cut at top_k, without fusing them again
                    self._pools[memo] = replace(deep, pools=[(ids[:top_k], sc[:top_k]) for ids, sc in deep.pools])
                    return self._pools[memo]
            self._pools[memo] = generate(self.task, self.setup.split, self.queries, config.generator(), top_k,
                                         device=self.setup.device)
        return self._pools[memo]

    def needed_pairs(self) -> list[set[int]]:
        """Per query: every candidate any trial can rerank (the head of each generator's deepest pool)."""
        if self._need is not None:
            return self._need
        need: list[set[int]] = [set() for _ in self.queries]
        deepest = max(self.k_values)
        for context in self.setup.context:
            keys = [key for key in generator_keys(self.setup, self.space) if key.context == context]
            fused = [key for key in keys if key.fusion != "none"]
            if fused:
                # A fusion returns each candidate of its retrievers' pools once: where that union fits both the
                # deepest pool and the head, every generator of this context reranks exactly the union, and one
                # fusion (for the retrievers' pools) says so without fusing every generator.
                sources = self.candidates(fused[0], deepest).sources
                unions = [set().union(*(map(int, source.pools[row][0]) for source in sources))
                          for row in range(len(self.queries))]
                if all(len(union) <= min(deepest, self.n_max) for union in unions):
                    for row, union in enumerate(unions):
                        need[row] |= union
                    continue
            for key in keys:
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

    def fill_groups(self, context: int) -> list[list[tuple[str, str]]]:
        """Per query, in post order: the ``(query, candidate)`` texts the space needs (a fill unit is a block of
        these, so the same sweep started on many machines cuts the same units)."""
        need = self.needed_pairs()
        rows = sorted(range(len(self.queries)), key=lambda r: (self.queries[r].post_id, self.queries[r].query_id))
        return [[(self.queries[r].text, candidate_text(self.task, i, context)) for i in sorted(need[r])]
                for r in rows]

    def fill(self, progress: bool | None = None, queue: bool | None = None,
             unit_pairs: int | None = None) -> dict[str, int]:
        """Score every missing pair through the engine (each model loaded once); returns pairs scored per model.

        With ``queue`` (default: when the store is shared, e.g. PostgreSQL) the pairs are cut into units of about
        ``unit_pairs`` (default :func:`rrbench.pipeline.fill_queue.default_unit_pairs`) and filled through the
        store's fill queue, together with every other worker running the same fill; otherwise this process scores
        them alone, committing each batch.
        """
        done: dict[str, int] = {}
        for name, variant, context, member, queries, texts, _, stored in self._stored():
            chunk = max(256, self.setup.batch_size * 8)
            label = f"filling {variant_label(name, variant)}"
            if member.store.shared if queue is None else queue:
                lacking = len({(q, d) for q, d, s in zip(queries, texts, stored, strict=True) if s is None})
                scored = self._fill_queued(member, context, label, chunk, lacking, progress, unit_pairs)
            else:
                todo = list(dict.fromkeys((q, d) for q, d, s in zip(queries, texts, stored, strict=True)
                                          if s is None))
                with _bar(len(todo), label, progress, unit="pair") as bar:
                    for start in range(0, len(todo), chunk):
                        part = todo[start:start + chunk]
                        with running(component_label(member), "score_pairs()"):
                            member.score_pairs([p[0] for p in part], [p[1] for p in part])
                        bar.update(len(part))
                scored = len(todo)
            done[variant_label(name, variant)] = scored
        return done

    def _fill_queued(self, member: Any, context: int, label: str, chunk: int, lacking: int,
                     progress: bool | None, unit_pairs: int | None) -> int:
        """Fill ``member``'s missing pairs through its store's fill queue; returns the pairs this process scored."""
        store = member.store
        store.start_worker(worker_label())
        split = self.setup.split + (f"+context{context}" if context else "")
        planned = plan_units(member.fingerprint, member.store_mid, self.task.id, split, self.fill_groups(context),
                             unit_pairs)

        def model(queries: list[str], documents: list[str]) -> np.ndarray:
            label = component_label(member)
            with running(label, "score_pairs()"):
                raw = member.inner.score_pairs(queries, documents)
            return check_scores(raw, len(queries), label)

        with _bar(lacking, label, progress, unit="pair") as bar:
            return work_queue(store, member.store_mid, planned, model, member.tolerance, batch_pairs=chunk,
                              on_scored=bar.update).scored

    def head_scores(self, name: str, variant: Any, context: int) -> list[dict[int, float]]:
        """Per query: candidate id -> cached score, for every needed candidate (fails if any is missing). One batched
        read for the whole split, so a database store costs a few round trips, not one per query."""
        memo = (name, (variant, context))
        if memo not in self._scores:
            member = self.member(name, variant)
            try:
                queries, texts, where = self._needed_pairs(context)
                stored = member.cached_scores(queries, texts)
                self._kinds[name] = member.score_kind
                self.bundles.update(member.store.bundles_for([member.store_mid], self.task.data_sha256,
                                                             [self.setup.split], context))
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
        # a stepped range gives 0.35000000000000003; configurations and best.yaml hold 0.35
        return round(float(suggest_value(trial, label or name, dims[name])), 10)

    solved = solves_decision(space)

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
            if not (solved and len(members) == 2 and weight_pairs(space)):  # else scanned in the trial
                params["ensemble_weights"] = [num("ensemble_weight", f"weight:{m}") for m in members]
            params["ensemble_norm"] = cat("ensemble_norm")
        if solved:  # the weight is scanned in the trial (solve_config); only its normalisation is sampled
            if any(beta > 0 for beta in scan_values(space, "interpolate")):
                params["interpolate_norm"] = cat("interpolate_norm")
        else:
            params["interpolate"] = num("interpolate")
            if params["interpolate"] > 0:
                params["interpolate_norm"] = cat("interpolate_norm")
        for name in ("max_length", "instruction"):
            if dims.get(name):
                params[name] = cat(name)
    if solved:
        return params
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
    needs_fit = params["calibrator"] != "none" or params["threshold_mode"] in ("fit", "max-fe")
    threshold = {"fit": "fit", "max-fe": "max-fe"}.get(params["threshold_mode"])
    config = replace(
        config, reranker=tuple(members) if len(members) > 1 else (members[0] if members else "none"),
        # a head longer than the pool is the pool (and `rrbench run` refuses N > K)
        top_k_rerank=min(int(params.get("top_k_rerank", 0)), config.top_k_retriever) if members
        else config.top_k_rerank,
        ensemble_weights=tuple(weights), ensemble_norm=params.get("ensemble_norm", "minmax"),
        interpolate=float(params.get("interpolate", 0.0)), interpolate_norm=params.get("interpolate_norm", "minmax"),
        abstain=params["abstain"], calibrator=params["calibrator"],
        calibrate_on=setup.split if needs_fit else None,
        threshold=threshold, threshold_max_fe=setup.max_fe if threshold == "max-fe" else None,
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


def solve_config(params: dict[str, Any], setup: SweepSetup, space: Space, source: ScoreSource) -> RunConfig:
    """The run configuration of a trial whose ranking structure is ``params``, with its interpolation weight and
    its decision solved rather than sampled (see the module docstring).

    The interpolation weight (and, for two rerankers, the ensemble weights ``(w, 1 - w)``) is the first of its
    scanned values with the best nDCG@10 (:func:`rrbench.pipeline.combine.ranking_ndcg`). The decision is chosen
    among every
    abstention policy and calibrator of the space, each with a ``max-fe`` threshold cross-fitted at every budget of
    ``BUDGET_LADDER``: the feasible one (its FE rate's upper bound, :func:`fe_bound`, within the budget) that
    answers the most has-evidence queries (ties: the earlier policy, calibrator and the larger budget), or, when
    none is feasible, the one with the lowest FE rate.
    """
    base = config_for({**params, "abstain": "max", "calibrator": "none", "threshold_mode": "natural"}, setup, source)
    data = source.arrays(base)
    combination = base.combination()
    betas = scan_values(space, "interpolate") if combination.reranked else [0.0]
    pairs = weight_pairs(space) if len(combination.rerankers) == 2 and not base.ensemble_weights else None
    ndcg = np.round(ranking_ndcg(data, combination, betas, pairs), 12)
    row, column = np.unravel_index(int(np.argmax(ndcg)), ndcg.shape)  # the first best: row-major
    beta = betas[int(column)]
    config = replace(base, interpolate=beta, interpolate_norm=base.interpolate_norm if beta > 0 else "minmax")
    if pairs:
        config = replace(config, ensemble_weights=pairs[int(row)])
    combined = combine(data, config.combination())
    folds = cross_fit_folds(data.group_count())
    fold_rows = data.folds(folds, setup.seed)
    no_evidence = no_evidence_count(data)
    budgets = [round(setup.max_fe * f, 10) for f in BUDGET_LADDER]
    best: tuple[tuple[float, ...], dict[str, Any]] | None = None
    reasons = []
    for policy in space.choices("abstain"):
        statistic = query_statistic(combined.decision, combined.head, policy)
        for calibrator in space.choices("calibrator"):
            decision = DecisionConfig(policy=policy, calibrator=calibrator, threshold_mode="max-fe",
                                      cross_fit=folds, cross_fit_seed=setup.seed)
            try:
                fe, answer = cross_fitted_fe_budgets(decision, statistic, combined.decision_kind, fold_rows,
                                                     data.has_evidence, budgets)
            except UsageError as exc:  # a calibrator that cannot read this score kind
                reasons.append(str(exc))
                continue
            for budget, rate, answered in zip(budgets, fe.tolist(), answer.tolist(), strict=True):
                fe_value = None if math.isnan(rate) else rate
                bound = fe_bound(fe_value, no_evidence, setup.fe_confidence)
                key = ((1.0, answered) if feasible(bound, setup.max_fe)
                       else (0.0, -(rate if fe_value is not None else 2.0), answered))
                if best is None or key > best[0]:
                    best = (key, {"abstain": policy, "calibrator": calibrator, "threshold_max_fe": budget})
    if best is None:
        raise UsageError(reasons[0] if reasons else "no decision could be fitted")
    return replace(config, **best[1], threshold="max-fe", calibrate_on=setup.split, cross_fit=folds)


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

    solved = solves_decision(space)
    faults: list[RRBenchError] = []

    def objective(trial: Any) -> float:
        params = suggest(trial, setup, space)
        try:
            config = solve_config(params, setup, space, source) if solved else config_for(params, setup, source)
            outcome = evaluate_config(config, source)
        except UsageError as exc:  # e.g. a calibrator that cannot read this score kind: not a configuration
            trial.set_user_attr("invalid", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except RRBenchError as exc:  # a plugin broke a rule: stop the study; run_trials raises it as one line
            faults.append(exc)
            trial.set_user_attr("fault", str(exc))
            trial.study.stop()
            raise optuna.TrialPruned(str(exc)) from None
        metrics = outcome.metrics
        bound = fe_bound(metrics.get("false_evidence_rate"), no_evidence_count(source.arrays(config)),
                         setup.fe_confidence)
        violation = constraint_violation(bound, setup.max_fe)
        # two attributes, not one per metric: each is a row the storage writes and reads back
        trial.set_user_attr("metrics", {**{name: float(metrics[name]) for name in METRIC_ATTRS
                                           if metrics.get(name) is not None},
                                        **({FE_BOUND_ATTR: bound} if bound is not None else {}),
                                        "constraint": violation})
        if hasattr(trial, "set_constraint"):  # Optuna >= 5: samplers read the constraint from the trial
            trial.set_constraint("false_evidence_rate", violation)
        trial.set_user_attr("config", config.to_file_dict())
        if counter is not None:
            counter["trials"] = counter.get("trials", 0) + 1
        value = metrics.get("nDCG@10")
        return float(value) if value is not None else 0.0

    objective.faults = faults  # type: ignore[attr-defined]
    return objective


def trial_metrics(trial: Any) -> dict[str, Any]:
    """A trial's metrics and constraint violation (the ``metrics`` attribute; flat attributes in older studies)."""
    attrs = trial.user_attrs
    return {**attrs, **(attrs.get("metrics") or {})}


def constraints(trial: Any) -> list[float]:
    return [float(trial_metrics(trial).get("constraint", 1.0))]


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


def run_trials(study: Any, objective: Callable[[Any], float], trials: int, progress: bool | None,
               shared: bool = False) -> int:
    """Run trials until ``trials`` have completed in total (a resumed study counts what it has); returns how many
    are still missing. A round in which no trial completes (every sample invalid, hence pruned) ends it early:
    sampling such a space again would loop forever.

    The sampler works on an in-memory copy of ``study``; each finished trial is then written to ``study``'s storage
    in one transaction (its parameters, attributes, constraint and value together), so a killed sweep keeps every
    trial it finished and never half of one. ``shared``: other workers may write to the same storage, so their
    trials are copied in after each trial of this one."""
    import optuna  # lazy: optional: only sweeps and the matrix use it
    from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    mirror = optuna.create_study(study_name=study.study_name, direction="maximize", sampler=study.sampler)
    copied: set[int] = set()  # storage ids of the trials the mirror holds

    def pull() -> None:
        for stored in study.get_trials(deepcopy=False, states=finished):
            if stored._trial_id not in copied:
                copied.add(stored._trial_id)
                mirror.add_trial(stored)

    def persist(_: Any, trial: Any) -> None:
        if trial.state in finished:
            copied.add(study._storage.create_new_trial(study._study_id, template_trial=trial))
            if shared:
                pull()

    def completed() -> int:
        return len(mirror.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    pull()
    done = completed()
    remaining = max(0, trials - done)
    if remaining:
        with _bar(remaining, "tier A trials", progress, unit="trial") as bar:
            while remaining > 0:
                mirror.optimize(objective, n_trials=remaining, callbacks=[persist, lambda s, t: bar.update(
                    1 if t.state == TrialState.COMPLETE else 0)])
                faults = getattr(objective, "faults", None)
                if faults:  # a plugin fault ends the sweep as one line; the trials before it stay committed
                    raise faults[0]
                before, done = done, completed()
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
    """The one definition of a feasible trial: it made decisions and its FE rate (the bound :func:`fe_bound` gives,
    which is the rate itself with ``fe_confidence`` 0) is within the budget."""
    return fe is not None and constraint_violation(fe, max_fe) <= FE_SLACK


#: the trial metric holding the FE bound feasibility was judged on
FE_BOUND_ATTR = "false_evidence_bound"


def no_evidence_count(data: SplitArrays) -> int:
    """How many no-evidence queries the split's FE rate is measured over."""
    return int((~np.asarray(data.has_evidence, dtype=bool)).sum())


def fe_bound(fe: float | None, no_evidence: int, confidence: float) -> float | None:
    """The FE rate a trial's feasibility is judged on: the upper end of the Wilson score interval at
    ``confidence`` of ``fe`` measured over ``no_evidence`` queries, or ``fe`` itself with ``confidence`` 0; None
    without a rate (no decision, or no no-evidence query)."""
    if fe is None or math.isnan(fe) or no_evidence == 0:
        return None if fe is None or math.isnan(fe) else float(fe)
    return rate_upper_bound(float(fe), no_evidence, confidence)


@dataclass
class TrialRow:
    number: int
    ndcg: float
    fe: float | None
    answer: float | None
    params: dict[str, Any]
    config: dict[str, Any]
    attrs: dict[str, Any]
    #: the FE rate feasibility was judged on (its upper bound; the rate itself in studies made before bounds)
    bound: float | None = None


def completed_rows(study: Any) -> list[TrialRow]:
    from optuna.trial import TrialState  # lazy: optional: only sweeps and the matrix use it

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = trial_metrics(t)
        rows.append(TrialRow(t.number, float(t.value), attrs.get("false_evidence_rate"),
                             attrs.get("answer_rate_has_evidence"), dict(t.params), attrs.get("config", {}), attrs,
                             attrs.get(FE_BOUND_ATTR, attrs.get("false_evidence_rate"))))
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
