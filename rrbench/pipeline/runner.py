"""``rrbench run``: task -> candidates -> reranking -> decision -> metrics -> result record.

The runner only wires stages together; each stage lives in its own module (:mod:`rrbench.pipeline.candidates`,
:mod:`rrbench.pipeline.rerank`, :mod:`rrbench.pipeline.combine`, :mod:`rrbench.pipeline.decide`). A run ends as
claims (:mod:`rrbench.pipeline.claims`: the hashed configuration) and evidence (every stage's raw scores), and its
numbers are derived from those two by :func:`rrbench.pipeline.derive.derive`, the very function that verifies a
published record; the derivation evaluates with :func:`rrbench.pipeline.combine.evaluate_split`, the function every
sweep trial calls, so a trial, a run and a verification of the same configuration agree to the last bit. Rerankers
are built deferred: when the score cache holds every score a run needs, no model is loaded at all. The output folder
is written atomically (an interrupted run leaves nothing).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import secrets
import shlex
import time
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from rrbench import __version__
from rrbench.components.registry import get_registry, resolve
from rrbench.measures.trec import qrels_lines
from rrbench.models import weights_index
from rrbench.models.engine import RerankerOOMError
from rrbench.models.factory import load_reranker
from rrbench.models.replica import is_replica
from rrbench.models.runtimes import check_runtime
from rrbench.pipeline.candidates import (
    GeneratorConfig,
    check_generator,
    generate,
    split_retriever_options,
)
from rrbench.pipeline.claims import decision_claim, reranker_claim, run_claims, task_claim
from rrbench.pipeline.combine import Combination, SplitArrays
from rrbench.pipeline.decide import DecisionConfig
from rrbench.pipeline.derive import checkpoint_threshold_of, derive
from rrbench.pipeline.rerank import rerank
from rrbench.pipeline.score_cache import load_model, open_cache, wrap
from rrbench.records import ledger
from rrbench.records.evidence import Evidence, evidence_from_arrays
from rrbench.records.ledger import test_split_use
from rrbench.records.manifest import hardware, package_versions, peak_rss_mb
from rrbench.records.record import checkpoint_info, record_digest, write_record_folder
from rrbench.records.schema import (
    SCHEMA_VERSION,
    ComponentClaim,
    Provenance,
    Record,
    RunClaims,
    TestSplitUse,
    claims_hash,
)
from rrbench.tasks.resolve import Query, Task, get_task
from rrbench.util.errors import UsageError, close_matches
from rrbench.util.io import read_json_object
from rrbench.util.strict_yaml import loads_yaml, read_yaml_mapping

NO_RERANKER = "none"
THRESHOLD_WORDS = ("checkpoint", "fit", "max-fe")
#: RunConfig fields that say where output goes or how it looks, not what is computed
_NOT_IN_CONFIG_FILES = {"output", "runs_dir", "show_progress", "cache_dir", "use_cache", "final"}
#: RunConfig fields that set one option of the fusion method (``--rrf-k``, ``--alpha``, ``--norm``): they apply to any
#: fuser whose option schema declares that option, built-in or plugin.
FUSION_FLAGS = {"rrf_k": ("--rrf-k", "k0"), "alpha": ("--alpha", "alpha"), "norm": ("--norm", "norm")}


def component_names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The one normaliser of a component argument given as a name, several names or nothing: a tuple of names,
    ``none`` (no reranker) and repeats dropped."""
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else tuple(value)
    return tuple(dict.fromkeys(str(n) for n in names if n != NO_RERANKER))


def _canonical(value: str | Sequence[str] | None) -> str | tuple[str, ...]:
    """How RunConfig stores a component argument: one name as a string (``none`` when empty), several as a tuple."""
    names = component_names(value)
    if not names:
        return NO_RERANKER
    return names[0] if len(names) == 1 else names


@dataclass
class RunConfig:
    """Everything ``rrbench run`` accepts. Defaults make ``rrbench run --reranker X`` a complete command."""

    #: one reranker, or several (a score-level ensemble; see rrbench.pipeline.combine)
    reranker: str | tuple[str, ...] = NO_RERANKER
    task: str = "scifact-evidence"
    split: str = "dev_select"
    #: one retriever id, or several (then ``fusion`` combines them; see rrbench.pipeline.candidates)
    retriever: str | tuple[str, ...] = "bm25"
    top_k_retriever: int = 100
    top_k_rerank: int = 20
    max_length: int | None = None
    #: a number, "checkpoint" (the threshold a trained checkpoint carries), "fit" (fitted on ``calibrate_on``) or
    #: "max-fe" (the lowest threshold keeping the FE rate on ``calibrate_on`` within ``threshold_max_fe``)
    threshold: float | str | None = None
    threshold_max_fe: float | None = None
    batch_size: int = 32
    device: str | None = None
    dtype: str = "float32"
    model_path: str | None = None
    output: str | None = None
    #: seeds the grouped folds of ``cross_fit``
    seed: int = 13
    runs_dir: str = "runs"
    show_progress: bool | None = None
    reranker_options: dict[str, Any] = field(default_factory=dict)
    #: weights for the retriever's spec (``--model-path`` applies here when there is no reranker)
    retriever_model_path: str | None = None
    #: score cache location (None: ``$RRBENCH_CACHE`` or ``~/.cache/rrbench``); ``use_cache=False`` bypasses it
    cache_dir: str | None = None
    use_cache: bool = True
    fusion: str | None = None
    rrf_k: float = 60
    alpha: float = 0.5
    norm: str = "minmax"
    #: neighbouring sentences each side that the retriever and reranker read with a candidate
    context: int = 0
    #: instruction variant name or free text for instruction-aware rerankers (resolved text is in the fingerprint)
    instruction: str | None = None
    #: reranker OOM at batch size 1: "stop" (error) or "fallback" (retriever ranking, warned and recorded)
    on_oom: str = "stop"
    #: ensemble: one weight per reranker (empty: equal weights) and the per-query normalisation for ranking
    ensemble_weights: tuple[float, ...] = ()
    ensemble_norm: str = "minmax"
    #: interpolation of the reranker score with the retriever score: weight ``interpolate`` (beta) on the retriever
    interpolate: float = 0.0
    interpolate_norm: str = "minmax"
    #: decision stage (rrbench.pipeline.decide): calibrator id, the split fits use, the abstention policy, cross-fitting
    calibrator: str = "none"
    calibrate_on: str | None = None
    #: the task whose ``calibrate_on`` split fits are made on (None: the evaluated task)
    calibrate_task: str | None = None
    abstain: str = "max"
    cross_fit: int | None = None
    #: provenance of a configuration file: the split it was selected on and the false-evidence budget it was
    #: selected under (recorded, not hashed)
    selected_on: str | None = None
    selected_max_fe: float | None = None
    #: and the confidence of the FE-rate upper bound that budget was applied to (0: the rate itself)
    selected_fe_confidence: float | None = None
    #: the one-time use of the test split (``--final``; rrbench.records.ledger): recorded, never hashed or reproduced
    final: bool = False
    #: ``--retriever-option``: ``{KEY: VALUE}`` for one retriever, ``{"RETRIEVER:KEY": VALUE}`` with several
    retriever_options: dict[str, Any] = field(default_factory=dict)
    #: ``--fusion-option``: options of the fusion method, over its spec defaults and the --rrf-k/--alpha/--norm flags
    fusion_options: dict[str, Any] = field(default_factory=dict)
    #: inference runtime of pointwise cross-encoders: torch, onnx or openvino (rrbench.models.runtimes)
    runtime: str = "torch"
    #: ``rrbench run --tasks A,B``: per-task settings ``{TASK: {field: value}}`` over this configuration (a task's
    #: record claims the resolved values; the map itself is never hashed)
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reranker = _canonical(self.reranker)
        self.retriever = _canonical(self.retriever)
        self.ensemble_weights = tuple(float(w) for w in self.ensemble_weights or ())

    # -- derived -------------------------------------------------------------------------------------------------
    def retriever_ids(self) -> tuple[str, ...]:
        return component_names(self.retriever)

    def reranker_ids(self) -> tuple[str, ...]:
        return component_names(self.reranker)

    def fusion_flag_options(self, explicit: Collection[str] = ()) -> dict[str, Any]:
        """Options the ``--rrf-k``/``--alpha``/``--norm`` fields set on the chosen fuser: a field counts when the
        caller says it was given (``explicit``) or its value differs from the default. A field the fuser's option
        schema does not declare is refused, naming the fusion methods it applies to (from the registry, so plugin
        fusers' options and aliases count too)."""
        defaults = {f.name: f.default for f in fields(self) if f.name in FUSION_FLAGS}
        given = [name for name in FUSION_FLAGS if name in explicit or getattr(self, name) != defaults[name]]
        if not given:
            return {}
        declared = set()
        if self.fusion is not None:
            declared = {o.name for o in resolve("fusers", self.fusion).spec.option_schema}
        options = {}
        for name in given:
            flag, option = FUSION_FLAGS[name]
            if option not in declared:
                methods = [e.id for e in get_registry().list("fusers") if e.spec.option(option) is not None]
                where = f"--fusion {' or '.join(methods)}" if methods else "no registered fusion method"
                raise UsageError(f"{flag} applies to {where} only"
                                 + (f", not --fusion {self.fusion}" if self.fusion else " (no --fusion given)"))
            options[option] = getattr(self, name)
        return options

    def generator(self, explicit: Collection[str] = ()) -> GeneratorConfig:
        """The candidate generator; fusion options come from the flags the chosen method declares, then
        ``fusion_options``."""
        options = self.fusion_flag_options(explicit)
        return GeneratorConfig(self.retriever_ids(), self.fusion, {**options, **self.fusion_options}, self.context,
                               split_retriever_options(self.retriever_ids(), self.retriever_options))

    def combination(self) -> Combination:
        return Combination(self.reranker_ids(), self.ensemble_weights, self.top_k_rerank, self.ensemble_norm,
                           float(self.interpolate), self.interpolate_norm)

    def decision(self, checkpoint_value: float | None = None) -> DecisionConfig:
        if isinstance(self.threshold, str):
            mode, value = self.threshold, checkpoint_value
        elif self.threshold is not None:
            mode, value = "fixed", float(self.threshold)
        else:
            mode, value = "natural", None
        return DecisionConfig(policy=self.abstain, calibrator=self.calibrator, threshold_mode=mode, threshold=value,
                              fit_split=self.calibrate_on, cross_fit=self.cross_fit, cross_fit_seed=self.seed,
                              threshold_max_fe=self.threshold_max_fe, fit_task=self.fit_task_name())

    def fit_task_name(self) -> str | None:
        """``calibrate_task`` when it names another task than ``task`` (the same one is no other task)."""
        if self.calibrate_task is None or self.calibrate_task == self.task:
            return None
        return self.calibrate_task

    def validate(self, explicit: Collection[str] = ()) -> None:
        """The one validation of a run, for the CLI, ``rrbench.run()``, sweeps and matrix configurations alike:
        cheap checks that need no model, so a bad configuration fails in a second. ``explicit`` names the fields a
        caller knows were given on purpose (the CLI's flags): a fusion flag given for a method that ignores it is
        refused even at its default value."""
        if self.on_oom not in ("stop", "fallback"):
            raise UsageError(f"--on-oom must be stop or fallback, got {self.on_oom!r}")
        if self.top_k_retriever < 1:
            raise UsageError(f"--top-k-retriever must be >= 1, got {self.top_k_retriever}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.max_length is not None and self.max_length < 8:
            raise UsageError(f"--max-length must be >= 8, got {self.max_length}")
        if isinstance(self.threshold, str) and self.threshold not in THRESHOLD_WORDS:
            raise UsageError(f"--threshold must be a number, 'checkpoint', 'fit' or 'max-fe', got {self.threshold!r}")
        if isinstance(self.threshold, float) and not math.isfinite(self.threshold):
            raise UsageError("--threshold must be a finite number")
        if self.model_path and len(self.reranker_ids()) > 1:
            raise UsageError("--model-path needs exactly one --reranker (give each ensemble member as a path)")
        if self.threshold == "checkpoint" and len(self.reranker_ids()) != 1:
            raise UsageError("--threshold checkpoint needs exactly one --reranker (a trained checkpoint)")
        if self.threshold == "checkpoint" and self.interpolate:
            raise UsageError("--threshold checkpoint is a raw-score threshold of the checkpoint's model; with "
                             "--interpolate the decision reads combined z-scores: use --threshold fit/max-fe with "
                             "--calibrate-on, or a number on the z-score scale")
        if self.calibrate_task is not None and not self.calibrate_on:
            raise UsageError("--calibrate-task TASK needs --calibrate-on SPLIT (the split of TASK to fit on)")
        self.fusion_flag_options(explicit)
        rerank_given = "top_k_rerank" in explicit or self.top_k_rerank != RunConfig.top_k_rerank
        if self.reranker_ids() and rerank_given and self.top_k_rerank > self.top_k_retriever:
            raise UsageError(f"--top-k-rerank {self.top_k_rerank} is larger than the candidate pool "
                             f"(--top-k-retriever {self.top_k_retriever}): a reranker scores only the pool")

        self.runtime = check_runtime(self.runtime)  # before any model loads: unknown name, missing package
        self.combination().validate()
        self.decision(checkpoint_value=0.0).validate(self.split)

    # -- configuration files -------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str) -> RunConfig:
        """Build from a mapping of field names (``-`` or ``_``); unknown keys are errors naming ``where``."""

        known = cls.field_names()
        clean: dict[str, Any] = {}
        for key, value in values.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise UsageError(f"{where}: unknown run option {key!r}.{close_matches(name, known)}")
            clean[name] = tuple(value) if isinstance(value, list) else value
        return cls(**clean)

    def to_file_dict(self) -> dict[str, Any]:
        """The fields a configuration file needs (what decides the result), JSON/YAML-ready."""
        out = {k: v for k, v in asdict(self).items() if k not in _NOT_IN_CONFIG_FILES}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``--config`` YAML/JSON file into a mapping (validated by :meth:`RunConfig.from_mapping`)."""

    data = read_yaml_mapping(path, "configuration file")
    return dict(data.get("run", data)) if isinstance(data.get("run"), Mapping) else dict(data)


def reproduce_command(config: RunConfig) -> str:
    """The ``rrbench run`` command line that recomputes this configuration (every option that decides it)."""
    gen = config.generator()
    parts = ["rrbench", "run", "--task", config.task, "--split", config.split,
             *(arg for r in config.retriever_ids() for arg in ("--retriever", r)),
             *(["--fusion", config.fusion] if config.fusion else []),
             *(["--rrf-k", repr(config.rrf_k)] if gen.fusion_options.get("k0") else []),
             *(["--alpha", repr(config.alpha), "--norm", config.norm] if "alpha" in gen.fusion_options else []),
             *(["--context", str(config.context)] if config.context else []),
             *(arg for k, v in config.retriever_options.items() for arg in ("--retriever-option", f"{k}={v}")),
             *(arg for k, v in config.fusion_options.items() for arg in ("--fusion-option", f"{k}={v}")),
             *(arg for r in (config.reranker_ids() or (NO_RERANKER,)) for arg in ("--reranker", r)),
             "--top-k-retriever", str(config.top_k_retriever), "--top-k-rerank", str(config.top_k_rerank)]
    if config.model_path:
        parts += ["--model-path", config.model_path]
    if config.retriever_model_path and config.retriever_model_path != config.model_path:
        parts += ["--retriever-model-path", config.retriever_model_path]
    if config.max_length:
        parts += ["--max-length", str(config.max_length)]
    if config.threshold is not None:
        parts += ["--threshold", config.threshold if isinstance(config.threshold, str) else repr(config.threshold)]
    if config.threshold_max_fe is not None:
        parts += ["--threshold-max-fe", repr(float(config.threshold_max_fe))]
    if config.dtype != "float32":
        parts += ["--dtype", config.dtype]
    if config.instruction is not None:
        parts += ["--instruction", config.instruction]
    options = dict(config.reranker_options)
    if options.pop("trust_remote_code", False):
        parts.append("--trust-remote-code")
    for key, value in sorted(options.items()):
        parts += ["--reranker-option", f"{key}={_knob_text(value)}"]
    if config.on_oom != "stop":
        parts += ["--on-oom", config.on_oom]
    if config.runtime != "torch":
        parts += ["--runtime", config.runtime]
    for weight in config.ensemble_weights:
        parts += ["--ensemble-weight", repr(weight)]
    if len(config.reranker_ids()) > 1 and config.ensemble_norm != "minmax":
        parts += ["--ensemble-norm", config.ensemble_norm]
    if config.interpolate:
        parts += ["--interpolate", repr(float(config.interpolate))]
        if config.interpolate_norm != "minmax":
            parts += ["--interpolate-norm", config.interpolate_norm]
    if config.calibrator != "none":
        parts += ["--calibrator", config.calibrator]
    if config.calibrate_on:
        parts += ["--calibrate-on", config.calibrate_on]
    if config.fit_task_name():
        parts += ["--calibrate-task", str(config.calibrate_task)]
    if config.abstain != "max":
        parts += ["--abstain", config.abstain]
    if config.cross_fit:
        parts += ["--cross-fit", str(config.cross_fit)]
        if config.seed != 13:
            parts += ["--seed", str(config.seed)]
    return shlex.join(parts)


def _knob_text(value: Any) -> str:
    """A KEY=VALUE value that ``parse_knobs`` (YAML) reads back as the same value and type."""

    if isinstance(value, str):
        try:
            same = loads_yaml(value, "value") == value
        except UsageError:
            same = False
        return value if same else json.dumps(value)
    return json.dumps(value)


# -- scoring one split -----------------------------------------------------------------------------------------------
@dataclass
class ScoredSplit:
    """A split's candidates and every member's head scores, gathered into arrays."""

    queries: list[Query]
    pools: list[tuple[np.ndarray, np.ndarray]]
    arrays: SplitArrays
    candidates: Any
    pairs: int = 0
    seconds: float = 0.0
    fallback: dict[str, Any] | None = None
    #: pairs the models scored (not served by the score cache) and the seconds spent inside those scoring calls
    #: (model loading and cache I/O excluded): the run's pairs/s is the one over the other
    model_pairs: int = 0
    model_seconds: float = 0.0


def load_members(config: RunConfig) -> list[Any]:
    """The run's rerankers, deferred (a model is built only when a score is missing from the cache)."""

    return [load_reranker(name, model_path=config.model_path, deferred=True, device=config.device,
                          max_length=config.max_length, batch_size=config.batch_size, dtype=config.dtype,
                          instruction=config.instruction, runtime=config.runtime, **config.reranker_options)
            for name in config.reranker_ids()]


def score_split(task: Task, split: str, config: RunConfig, members: Sequence[Any]) -> ScoredSplit:
    """Candidates and reranker head scores for one split, through the candidate and score caches."""

    queries = sorted(task.split_queries(split), key=lambda q: q.query_id)
    if not queries:
        raise UsageError(f"task {task.id!r} split {split!r} has no queries")
    retriever_model_path = config.retriever_model_path or (config.model_path if not members else None)
    candidates = generate(task, split, queries, config.generator(), config.top_k_retriever, device=config.device,
                          use_cache=config.use_cache, model_path=retriever_model_path)
    pools = candidates.pools
    arrays = SplitArrays.build(task, queries, pools, candidates.score_kind)
    started, pairs, fallback = time.perf_counter(), 0, None
    model_pairs, model_seconds = 0, 0.0
    if config.top_k_rerank > 0:
        for name, member in zip(config.reranker_ids(), members, strict=True):
            stats = getattr(member, "cache_stats", None)
            before = (stats.computed, stats.model_seconds) if stats is not None else (0, 0.0)
            if stats is None and any(len(ids) for ids, _ in pools):
                load_model(member)  # loading is not scoring: it stays out of the model time
            member_started = time.perf_counter()
            try:
                heads = rerank(task, queries, pools, member, config.top_k_rerank, config.show_progress,
                               context=config.context, split=split)
            except RerankerOOMError as exc:
                if config.on_oom != "fallback":
                    raise

                warnings.warn(f"rrbench: {exc}; --on-oom fallback: using the retriever's ranking instead",
                              RuntimeWarning, stacklevel=1)
                fallback = {"reason": str(exc), "used": "retriever ranking"}
                arrays.rerankers.clear()
                break
            pairs += int(sum(len(h) for h in heads))
            if stats is not None:  # the cache wrapper timed the model's own calls
                model_pairs += stats.computed - before[0]
                model_seconds += stats.model_seconds - before[1]
            else:  # no cache: every pair went to the model, inside rerank()
                model_pairs += int(sum(len(h) for h in heads))
                model_seconds += time.perf_counter() - member_started
            arrays.add_reranker(name, heads, member.score_kind)
    return ScoredSplit(queries, pools, arrays, candidates, pairs, time.perf_counter() - started, fallback,
                       model_pairs, model_seconds)


def checkpoint_threshold(member: Any, task: Task, split: str) -> float:
    """The decision threshold a trained checkpoint carries; refused on the task and split it was fitted on
    (:func:`rrbench.pipeline.derive.checkpoint_threshold_of`, the check the verifier repeats)."""
    meta_file = Path(member.weights_path or "") / "rrbench_model.json"
    if not meta_file.is_file():
        raise UsageError(f"--threshold checkpoint: {member.spec.id} is not an rrbench-trained checkpoint "
                         f"(no rrbench_model.json)")
    meta = read_json_object(meta_file)
    return checkpoint_threshold_of(meta.get("training") or {}, task_claim(task), split, str(meta_file.parent))


def _output_dir(config: RunConfig, config_hash: str) -> Path:
    return Path(config.output) if config.output else Path(config.runs_dir) / (
        f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{config_hash[:8]}")


def _check_output_free(config: RunConfig) -> None:
    """Fail before any work when ``--output`` names a folder that already holds something."""
    if config.output:
        out = Path(config.output)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UsageError(f"{out}: output directory exists and is not empty")


def split_evidence(task: Task, scored: ScoredSplit, split: str, scored_names: Sequence[str], names: Sequence[str],
                   top_k_rerank: int) -> Evidence:
    """The raw scores of one split as a record keeps them (:mod:`rrbench.records.evidence`): the arrays' reranker
    ``scored_names[j]`` is written as the claimed (qualified) ``names[j]``."""
    arrays = scored.arrays
    pools: list[list[str]] = []
    retriever: list[list[float]] = []
    heads: list[list[list[float]]] = [[] for _ in names]
    for row in range(len(arrays.query_ids)):
        valid = arrays.valid[row]
        ids = arrays.ids[row][valid]
        pools.append([task.docno(int(i)) for i in ids])
        retriever.append(arrays.retriever[row][valid].tolist())
        depth = min(top_k_rerank, len(ids))
        for j, name in enumerate(scored_names):
            heads[j].append(arrays.rerankers[name][row, :depth].tolist())
    return evidence_from_arrays(split, names, arrays.query_ids, pools, retriever, heads)


def for_tasks(config: RunConfig, tasks: Sequence[str]) -> list[RunConfig]:
    """One configuration per task of ``rrbench run --tasks A,B``: ``config`` with that task and its ``per_task``
    settings; each validated, its task and split resolved, before any work. ``--output DIR`` becomes ``DIR/TASK``."""
    if not tasks:
        raise UsageError("--tasks names no task")
    if any(t.lower() == "all" for t in tasks):
        raise UsageError("--tasks all is not offered: name the tasks (what is installed differs between machines)")
    if len(set(tasks)) != len(tasks):
        raise UsageError(f"--tasks names a task twice: {','.join(tasks)}")
    unknown = sorted(set(config.per_task) - set(tasks))
    if unknown:
        raise UsageError(f"per_task names {unknown[0]!r}, which is not one of --tasks {','.join(tasks)}")
    out = []
    for name in tasks:
        settings = {str(k).replace("-", "_"): v for k, v in (config.per_task.get(name) or {}).items()}
        bad = sorted(set(settings) - RunConfig.field_names() | (set(settings) & {"task", "per_task", "output"}))
        if bad:
            raise UsageError(f"per_task.{name}: {bad[0]!r} cannot be set per task")
        current = {f.name: getattr(config, f.name) for f in fields(config)}
        one = RunConfig.from_mapping({**current, "task": name, "per_task": {}, **settings,
                                      "output": str(Path(config.output) / Path(name).name) if config.output else None},
                                     f"per_task.{name}")
        one.validate()
        task = get_task(name)
        task.split_queries(one.split)
        if one.calibrate_on:
            test_split_use(one.calibrate_on, one.final, "--calibrate-on", reads_labels_for="fitting a decision")
        test_split_use(one.split, one.final, "rrbench run")
        _check_output_free(one)
        out.append(one)
    return out


def execute_tasks(configs: Sequence[RunConfig]) -> list[dict[str, Any]]:
    """``rrbench run --tasks``: one record per task, sharing a run id and the resolved task list (provenance only:
    neither enters a configuration hash, so each record equals a single-task run of its configuration)."""
    run_id = f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
    tasks = [get_task(c.task).id for c in configs]
    return [execute(c, group={"run_id": run_id, "run_tasks": tasks}) for c in configs]


def execute(config: RunConfig, group: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run one evaluation and write its record folder; returns the record (as JSON-ready data).

    The record's numbers are derived from its own claims and evidence by :func:`rrbench.pipeline.derive.derive`,
    the function ``rrbench leaderboard check`` verifies it with, so what a run reports and what a verifier
    recomputes cannot drift apart.
    """
    config.validate()
    final_use = test_split_use(config.split, config.final, "rrbench run")
    if config.calibrate_on:
        test_split_use(config.calibrate_on, config.final, "--calibrate-on", reads_labels_for="fitting a decision")
    _check_output_free(config)
    started = time.perf_counter()
    task = get_task(config.task)
    fit_task_name = config.fit_task_name()
    fit_task = get_task(fit_task_name) if fit_task_name else None
    if fit_task is not None and fit_task.id == task.id:
        fit_task = None  # an alias or path of the evaluated task itself
    task.split_queries(config.split)  # unknown split names fail here, before any model is touched
    if config.calibrate_on and (config.calibrate_on != config.split or fit_task is not None):
        (fit_task or task).split_queries(config.calibrate_on)
    # retriever ids, options and weights, and the fuser, before any reranker loads (issue 14, defect 4)
    retriever_model_path = config.retriever_model_path or (config.model_path if not config.reranker_ids() else None)
    check_generator(config.generator(), retriever_model_path)
    members = load_members(config)

    cache = open_cache(config.cache_dir, config.use_cache) if members else None
    if cache is not None:
        members = [wrap(m, cache) for m in members]

    evaluated = score_split(task, config.split, config, members)
    value = checkpoint_threshold(members[0], task, config.split) if config.threshold == "checkpoint" else None
    decision_config = replace(config.decision(checkpoint_value=value),
                              fit_task=fit_task.id if fit_task is not None else None)
    decision_config.validate(config.split)  # again: an alias of the evaluated task is no other task
    fallback = evaluated.fallback
    # a reranker at depth 0 scores nothing: the run is its retriever's, and claims (and hashes) exactly that
    used = [] if fallback or config.top_k_rerank == 0 else list(zip(config.reranker_ids(), members, strict=True))
    checkpoints = [checkpoint_info(m.weights_path) for _, m in used]
    reranker_claims = [reranker_claim(name, m, ck, config.max_length, config.dtype, config.instruction)
                       for (name, m), ck in zip(used, checkpoints, strict=True)]
    combination = config.combination()
    claims = run_claims(task=task, split=config.split, generator=config.generator(),
                        top_k_retriever=config.top_k_retriever, rerankers=reranker_claims,
                        top_k_rerank=config.top_k_rerank, weights=list(combination.member_weights()),
                        ensemble_norm=config.ensemble_norm, beta=float(config.interpolate),
                        interpolate_norm=config.interpolate_norm,
                        decision=decision_claim(decision_config, fit_task) if not fallback else decision_claim(
                            DecisionConfig(threshold_mode="fixed", threshold=decision_config.threshold)
                            if decision_config.threshold is not None else DecisionConfig()),
                        retriever_model_path=retriever_model_path)
    for claim, (_, member) in zip(claims.rerankers, used, strict=True):
        if claim.weights_sha256 and member.weights_path and member.weights_source == "local-path":
            weights_index.remember(claim.weights_sha256, member.weights_path)  # so check/reproduce can find them
    names = [c.qualified for c in claims.rerankers]
    scored_names = [name for name, _ in used]
    evidence = split_evidence(task, evaluated, config.split, scored_names, names, claims.top_k_rerank)
    cache_at_eval = _cache_manifest(members, cache)  # before the calibration split adds its own look-ups
    calibration = None
    if claims.decision.fit is not None and claims.decision.fit.split is not None:
        fitted = score_split(fit_task or task, str(config.calibrate_on), config, members)
        calibration = split_evidence(fit_task or task, fitted, str(config.calibrate_on), scored_names, names,
                                     claims.top_k_rerank)
    derived = derive(claims, task, evidence, fit_task=fit_task, fit_evidence=calibration, where="rrbench run")
    config_hash = claims_hash(claims)
    provenance: dict[str, Any] = {
        "rrbench_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": reproduce_command(config),
        "packages": {**package_versions(), **{c.distribution: c.version for c in _all_components(claims)
                                              if c.distribution and c.version}},
        "hardware": hardware(),
        "wall_time_s": round(time.perf_counter() - started, 3),
        # the time inside the model's scoring calls on the evaluated split (loading and cache I/O excluded)
        "rerank_time_s": round(evaluated.model_seconds, 3),
        "pairs_scored": evaluated.pairs,
        "peak_rss_mb": peak_rss_mb(),
        "run_options": {"batch_size": config.batch_size, "device": config.device, "dtype": config.dtype,
                        "runtime": config.runtime, "on_oom": config.on_oom,
                        **({"reranker_fallback": fallback} if fallback else {}), **dict(group or {})},
        "rerankers": [_described(m) for m in members],
        "candidate_cache": evaluated.candidates.cache_summary(),
        "cache": _with_fit_split(cache_at_eval, _cache_manifest(members, cache)),
        "models_loaded": [bool(getattr(getattr(m, "inner", m), "loaded", True)) for m in members],
        "selected_on": config.selected_on,
        "selected_max_fe": config.selected_max_fe,
        "score_bundles": _score_bundles(cache, members, task, config),
        "speed_only": any(is_replica(getattr(m, "inner", m)) for m in members),
    }
    provenance.update(_throughput(evaluated, cache_at_eval))
    if cache is not None:
        cache.close()
    record = Record(schema_version=SCHEMA_VERSION, kind="run", config=claims, config_hash=config_hash,
                    system=derived.system, main_score=derived.main_score, metrics=derived.metrics,
                    per_query=derived.per_query, decision=derived.decision,
                    provenance=Provenance.model_validate(provenance))
    if final_use:  # claimed (checked and appended under a lock) just before writing
        use = ledger.claim(config_hash=config_hash, task=f"{task.id}@{task.version}",
                           task_data_sha256=task.data_sha256, results_sha256=record_digest(record), purpose="run",
                           command=reproduce_command(config), selected_on=config.selected_on)
        record = record.model_copy(update={"provenance": record.provenance.model_copy(
            update={"test_split": TestSplitUse.model_validate(use)})})
    out_dir = _output_dir(config, config_hash)
    write_record_folder(out_dir, record, derived.run_lines, _qrels(task, evaluated.queries), evidence, calibration)
    body = record.as_json()
    body["output_dir"] = str(out_dir)
    return body


def _all_components(claims: RunClaims) -> list[ComponentClaim]:
    out = [*claims.generator.retrievers, *claims.rerankers]
    if claims.generator.fusion is not None:
        out.append(claims.generator.fusion)
    if claims.decision.calibrator is not None:
        out.append(claims.decision.calibrator)
    return out


def _qrels(task: Task, queries: Sequence[Query]) -> list[str]:
    lines: list[str] = []
    for query in queries:
        lines += qrels_lines(query.query_id, {task.docno(g): grade for g, grade in sorted(task.judged(query).items())})
    return lines


def _described(member: Any) -> dict[str, Any]:
    """A reranker's own description for the provenance, without its local path (the claims name weights by hash)."""
    description = dict(member.describe())
    description.pop("weights_path", None)
    return description


def _cache_manifest(members: Sequence[Any], cache: Any) -> dict[str, Any]:
    """Cache hits/misses of this run (summed over ensemble members): a re-run of a finished configuration shows
    zero misses. The cache's location is not recorded (it is a local path)."""
    found = [getattr(m, "cache_stats", None) for m in members]
    stats = [s for s in found if s is not None]
    if cache is None or not members or len(stats) < len(found):
        reason = "no reranker" if not members else ("disabled" if cache is None else "model not pinned")
        return {"enabled": False, "reason": reason}
    total = {k: sum(s.as_dict()[k] for s in stats) for k in stats[0].as_dict()}
    return {"enabled": True, "fingerprints": [m.fingerprint for m in members], **total}


def _with_fit_split(at_eval: dict[str, Any], total: Mapping[str, Any]) -> dict[str, Any]:
    """The cache counts of the evaluated split (what pairs/s is measured on), with the fit split's own look-ups apart
    under ``fit_split``: a hit count is never set against another split's pairs."""
    if not at_eval.get("enabled"):
        return at_eval
    counts = ("hits", "misses", "computed", "model_calls")
    extra = {k: int(total.get(k, 0)) - int(at_eval.get(k, 0)) for k in counts}
    return {**at_eval, **({"fit_split": extra} if any(extra.values()) else {})}


def _throughput(scored: ScoredSplit, cache: Mapping[str, Any]) -> dict[str, Any]:
    """pairs/s measures the model: the pairs it scored over the time inside its scoring calls (loading and cache I/O
    excluded); omitted when it scored none (every score came from the cache)."""
    seconds, computed = scored.model_seconds, scored.model_pairs
    # the rate must follow from what the record keeps (the rerank time to the millisecond, the cache's computed
    # pairs or, without the cache, the pairs scored); a rate it cannot show is left out
    kept = int(cache.get("computed", 0)) if cache.get("enabled") else scored.pairs
    measurable = computed and computed == kept and round(seconds, 3) > 0
    out: dict[str, Any] = {"pairs_per_s": round(computed / seconds, 2) if measurable else None}
    hits = int(cache.get("hits", 0)) if cache.get("enabled") else 0
    if hits:
        out["pairs_per_s_note"] = (f"{hits} of {hits + int(cache.get('misses', 0))} score look-ups came from the "
                                   f"cache; pairs/s counts the {computed} pairs the model scored")
    return out


def _score_bundles(cache: Any, members: Sequence[Any], task: Task, config: RunConfig) -> list[str]:
    """Content hashes of the imported score bundles this run read from: bundles of its models on this task data,
    split(s) and context, when it answered anything from the store (``rrbench cache import``)."""
    stats = [getattr(m, "cache_stats", None) for m in members]
    if cache is None or not any(s is not None and s.hits for s in stats):
        return []
    splits = [config.split] + ([config.calibrate_on] if config.calibrate_on else [])
    mids = [m.store_mid for m in members if getattr(m, "cache_stats", None) is not None]
    return cache.bundles_for(mids, task.data_sha256, splits, int(config.context or 0))
