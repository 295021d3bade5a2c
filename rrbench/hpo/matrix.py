"""The experiment matrix: one YAML file that names a research program, expanded into cells keyed by config hash.

A research plan trains every compatible combination of candidate generator G, base model M, regime R, loss L and
negative miner N, tunes each (Tier B), sweeps inference settings (Tier A), confirms finalists over seeds (Tier C) and
runs test once. Writing that as shell loops loses track of what was run, what was skipped and why, and what a result
depended on. The matrix file is the single statement of the program; this module validates it strictly (like a task
spec: unknown fields and unknown component ids are one-line errors), applies the built-in compatibility rules, and
gives every cell an identity derived from content (task data hash, component ids, options), so a cell is the same
cell on every machine and a finished one is never recomputed.

Compatibility rules (the *shape* of a regime decides which losses fit it; see :func:`regime_shape`):

- R0 (``train: false``) trains nothing: one cell per (G, M), whatever L and N say;
- pairwise (R2) is RankNet;
- listwise (R3) takes the listwise losses (and softmax-over-a-group ones);
- curriculum (R4) takes a ranking loss after its BCE warm-up;
- distillation (R5) takes a distillation loss and needs a teacher: a reranker id, or another cell of the matrix
  (which then runs first: a dependency).

The file format is documented in docs/matrix.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rrbench.components.registry import get_registry, resolve
from rrbench.hpo.space import parse_space
from rrbench.pipeline.runner import RunConfig
from rrbench.records.ledger import test_split_use
from rrbench.tasks.resolve import get_task
from rrbench.util.errors import UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.strict_yaml import read_yaml_document, validate_document

#: A regime's factor value that keeps its own loss / miner.
DEFAULT = "default"

#: Which loss input formats (training_catalog) fit each regime shape; ranknet is the only pairwise loss.
SHAPE_FORMATS: dict[str, tuple[str, ...]] = {
    "none": (),
    "pointwise": ("pointwise",),
    "pairwise": ("listwise",),  # restricted to ranknet below
    "listwise": ("listwise", "grouped"),
    "curriculum": ("listwise", "grouped"),
    "distillation": ("distill-pointwise", "distill-margin"),
}
PAIRWISE_LOSSES = ("ranknet",)

#: Artifact folders of a matrix's output (the research plan's layout).
LAYOUT = ("candidates", "reranker_scores", "train_runs", "hpo", "leaderboards", "plots")

#: Training throughput used for cost estimates when nothing better is known: benchmarks/README.md, all-MiniLM-L6-v2
#: as a cross-encoder, BCE, fp32, 2 threads, on the AVX2-only development machine. ``throughput:`` in the file
#: (a figure measured on the machines that will run the matrix) overrides it.
BENCHMARK_TRAIN_PAIRS_PER_S = 12.1
#: Inference throughput for the selection-split evaluations (platform notes: CrossEncoder.predict, fp32, batch 32).
BENCHMARK_EVAL_PAIRS_PER_S = 108.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Factors(_Strict):
    """The factor values; each list is non-empty. L and N default to the regime's own loss and miner."""

    G: list[str] = Field(default_factory=lambda: ["bm25"], min_length=1)
    M: list[str] = Field(min_length=1)
    R: list[str] = Field(min_length=1)
    L: list[str] = Field(default_factory=lambda: [DEFAULT], min_length=1)
    N: list[str] = Field(default_factory=lambda: [DEFAULT], min_length=1)

    @field_validator("G", "M", "R", "L", "N")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("values must be unique")
        if any(not isinstance(v, str) or not v.strip() for v in values):
            raise ValueError("values must be non-empty strings")
        return values


class ParamRange(_Strict):
    """One search-space dimension: ``low``/``high`` (with ``log``, ``step``, ``integer``) or ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False
    choices: list[Any] | None = None

    def check(self, name: str) -> None:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                raise UsageError(f"space '{name}': give either a non-empty choices list or low/high")
            return
        if self.low is None or self.high is None:
            raise UsageError(f"space '{name}': needs low and high (or choices)")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low > self.high:
            raise UsageError(f"space '{name}': empty range [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise UsageError(f"space '{name}': a log range needs low > 0")


class TierB(_Strict):
    """Training HPO per (M, R, L, N) cell."""

    trials: int = Field(default=8, ge=1)
    pruner: Literal["median", "successive-halving", "hyperband", "none"] = "median"
    sampler: Literal["tpe", "random"] = "tpe"
    #: Evaluations on the selection split per trial (the pruner's resource): eval_steps is derived from it.
    evaluations: int = Field(default=4, ge=1)
    #: Training options every trial of every cell shares (max_length, batch_size, head, max_steps, threads, ...).
    fixed: dict[str, Any] = Field(default_factory=dict)
    #: Overrides of the default search space, per parameter (``loss.<option>`` / ``miner.<option>`` for components).
    space: dict[str, ParamRange] = Field(default_factory=dict)
    #: Parameter sets tried first (not sampled); with ``sample: false`` only these are tried.
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    sample: bool = True


class TierA(_Strict):
    """Inference settings per finalist (``rrbench sweep`` over its cached scores); 0 trials keeps the plain run."""

    trials: int = Field(default=0, ge=0)
    max_fe: float | None = Field(default=None, ge=0, le=1)
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    #: a sweep space (docs/sweep.md), inline; the default searches every dimension
    space: dict[str, Any] | None = None


class TierC(_Strict):
    """The finalists: the best cells on the selection split, retrained over every seed and optionally in folds."""

    finalists: int = Field(default=1, ge=1)
    folds: int = Field(default=0, ge=0)
    #: the split finalists are confirmed on (with paired tests against the baselines); never test
    confirm_on: str = "dev_final"

    @field_validator("confirm_on")
    @classmethod
    def _not_test(cls, value: str) -> str:
        try:
            test_split_use(value, False, "confirm_on", reads_labels_for="the matrix's confirmation")
        except UsageError as exc:
            raise ValueError(f"{exc} (the test split is used once, by hand: rrbench run --split test --final)") \
                from None
        return value

    @field_validator("folds")
    @classmethod
    def _folds(cls, value: int) -> int:
        if value == 1:
            raise ValueError("folds must be 0 (off) or at least 2")
        return value


class Budgets(_Strict):
    tier_a: TierA = Field(default_factory=TierA)
    tier_b: TierB = Field(default_factory=TierB)
    tier_c: TierC = Field(default_factory=TierC)


class CellRef(_Strict):
    """Another cell of the matrix, by factor values (unspecified factors must leave exactly one match)."""

    G: str | None = None
    M: str | None = None
    R: str | None = None
    L: str | None = None
    N: str | None = None


class TransferTask(_Strict):
    """A task the finalists are evaluated on unchanged (no training, no tuning on it), beside BM25 there."""

    task: str
    #: the candidate generator there (``bm25+minilm-l6`` fuses with RRF); default: the finalist's own
    G: str | None = None
    split: str = "dev_final"
    #: pool size there (a corpus-scope task needs one; a post is small enough to rerank whole)
    top_k: int = Field(default=100, ge=1)


class MatrixSpec(_Strict):
    version: Literal[1] = 1
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    task: str = "scifact-evidence"
    output: str | None = None
    factors: Factors
    seeds: list[int] = Field(default_factory=lambda: [13], min_length=1)
    budgets: Budgets = Field(default_factory=Budgets)
    #: R5's teacher: a reranker id or path, or a cell of this matrix.
    teacher: str | CellRef | None = None
    transfer_tasks: list[str | TransferTask] = Field(default_factory=list)
    #: systems every finalist is compared with on the confirmation split: name -> ``rrbench run`` options
    #: (default: each generator of G alone)
    baselines: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: splits whose scores every finished cell exports under ``reranker_scores/CELL/SPLIT/``
    exports: list[str] = Field(default_factory=lambda: ["dev_select", "train"])

    def transfers(self) -> list[TransferTask]:
        return [TransferTask(task=t) if isinstance(t, str) else t for t in self.transfer_tasks]

    def baseline_configs(self) -> dict[str, dict[str, Any]]:
        if self.baselines:
            return {name: dict(options) for name, options in self.baselines.items()}
        out: dict[str, dict[str, Any]] = {}
        for generator in self.factors.G:
            parts = generator.split("+")
            out[generator] = {"retriever": parts if len(parts) > 1 else parts[0],
                              **({"fusion": "rrf"} if len(parts) > 1 else {})}
        return out
    #: Training pairs per second for cost estimates (overrides measured figures).
    throughput: float | None = Field(default=None, gt=0)


@dataclass
class Cell:
    """One (G, M, R, L, N) combination: its resolved components, identity and dependencies."""

    G: str
    M: str
    R: str
    L: str | None
    N: str | None
    shape: str
    key: str = ""
    train_key: str | None = None
    needs: list[str] = field(default_factory=list)
    teacher: str | None = None

    @property
    def label(self) -> str:
        return f"G={self.G} M={self.M} R={self.R} L={self.L or '-'} N={self.N or '-'}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "train_key": self.train_key, "G": self.G, "M": self.M, "R": self.R, "L": self.L,
                "N": self.N, "shape": self.shape, "needs": list(self.needs), "teacher": self.teacher}


@dataclass
class Skipped:
    combination: dict[str, str]
    reason: str


@dataclass
class Plan:
    spec: MatrixSpec
    path: Path
    cells: list[Cell]
    skipped: list[Skipped]
    task_hash: str

    def cell(self, key: str) -> Cell:
        for cell in self.cells:
            if cell.key == key or cell.key.startswith(key):
                return cell
        raise UsageError(f"{self.path}: no cell {key!r} in this matrix")

    def output_dir(self, override: str | Path | None = None) -> Path:
        if override:
            return Path(override)
        if self.spec.output:
            out = Path(self.spec.output)
            return out if out.is_absolute() else self.path.parent / out
        return self.path.parent / "matrix-runs" / self.spec.name

    def ordered(self) -> list[Cell]:
        """Cells in an order that runs every dependency first (teachers before their students)."""
        done: set[str] = set()
        out: list[Cell] = []
        pending = list(self.cells)
        while pending:
            ready = [c for c in pending if all(n in done for n in c.needs if not n.startswith("candidates:"))]
            if not ready:
                raise UsageError(f"{self.path}: cells depend on each other in a cycle")
            for cell in ready:
                out.append(cell)
                done.add(cell.key)
            pending = [c for c in pending if c.key not in done]
        return out


def read_matrix(path: str | Path) -> MatrixSpec:
    """Parse and validate a matrix file; every problem is a one-line UsageError naming the file and field."""
    path = Path(path)
    raw = read_yaml_document(path, "matrix file")
    if raw is None:
        raise UsageError(f"{path}: empty matrix file")
    spec = validate_document(MatrixSpec, raw, path, "matrix file")
    for name, rng in spec.budgets.tier_b.space.items():
        try:
            rng.check(name)
        except UsageError as exc:
            raise UsageError(f"{path}: budgets.tier_b.{exc}") from None
    if not spec.budgets.tier_b.sample and not spec.budgets.tier_b.enqueue:
        raise UsageError(f"{path}: budgets.tier_b.sample is false but no parameter sets are enqueued")
    return spec


def _resolve(kind: str, name: str, path: Path, field_name: str) -> Any:
    try:
        return get_registry().get(kind, name)
    except UsageError as exc:
        raise UsageError(f"{path}: factors.{field_name}: {exc}") from None


def regime_shape(spec: Any) -> str:
    """The shape of training a regime fixes, from its options (so plugin regimes are classified the same way)."""
    options = spec.options
    if options.get("train") is False:
        return "none"
    if options.get("requires_teacher"):
        return "distillation"
    if options.get("curriculum"):
        return "curriculum"
    loss = options.get("loss", "bce")

    fmt = resolve("losses", loss).spec.input_format
    if loss in PAIRWISE_LOSSES:
        return "pairwise"
    if fmt in ("listwise", "grouped"):
        return "listwise"
    if fmt.startswith("distill"):
        return "distillation"
    return "pointwise"


def _check_model(name: str, path: Path) -> None:
    """M: a registered reranker id/alias, a local folder, or an ``org/name`` hub id (resolved when trained)."""
    if Path(name).expanduser().is_dir() or (name.count("/") == 1 and not name.startswith((".", "/"))):
        return
    _resolve("rerankers", name, path, "M")


def _check_generator(name: str, path: Path) -> None:
    """G: a retriever id, or several joined by '+' (fused with RRF)."""
    for part in name.split("+"):
        _resolve("retrievers", part, path, "G")


def _loss_fits(shape: str, loss_id: str, fmt: str) -> str | None:
    """None when the loss fits the regime's shape, else the reason it does not."""
    if shape == "pairwise" and loss_id not in PAIRWISE_LOSSES:
        return f"R2 (pairwise) is RankNet; loss {loss_id} does not apply"
    if shape == "curriculum" and loss_id in ("bce",):
        return f"a curriculum (R4) moves from BCE to a ranking loss; {loss_id} is its warm-up, not its main loss"
    if fmt not in SHAPE_FORMATS[shape]:
        wanted = "/".join(SHAPE_FORMATS[shape]) or "none"
        return f"a {shape} regime takes {wanted} losses; {loss_id} is {fmt}"
    return None


def _task_identity(task_name: str, path: Path, field_name: str = "task") -> tuple[str, Any]:
    try:
        task = get_task(task_name)
    except UsageError as exc:
        raise UsageError(f"{path}: {field_name}: {exc}") from None
    return task.data_sha256, task


def _check_baselines(spec: MatrixSpec, path: Path) -> None:
    """Each baseline is a valid ``rrbench run`` configuration (checked now, not after hours of training)."""

    for name, options in spec.baseline_configs().items():
        if {"task", "split", "output"} & set(options):
            raise UsageError(f"{path}: baselines.{name}: task, split and output are set by the matrix")
        RunConfig.from_mapping({**options, "task": spec.task}, f"{path}: baselines.{name}").validate()


def build_plan(path: str | Path, spec: MatrixSpec | None = None) -> Plan:
    """Expand a matrix file into cells (keyed by config hash) and skipped combinations (with the reason)."""
    path = Path(path)
    spec = spec or read_matrix(path)
    f = spec.factors
    for g in f.G:
        _check_generator(g, path)
    for m in f.M:
        _check_model(m, path)
    regimes = {r: _resolve("regimes", r, path, "R") for r in f.R}
    losses = {loss: _resolve("losses", loss, path, "L") for loss in f.L if loss != DEFAULT}
    miners = {n: _resolve("miners", n, path, "N") for n in f.N if n != DEFAULT}
    for i, transfer in enumerate(spec.transfers()):
        _task_identity(transfer.task, path, f"transfer_tasks.{i}")
        if transfer.G:
            _check_generator(transfer.G, path)
    _check_baselines(spec, path)
    if spec.budgets.tier_a.space is not None:
        parse_space(spec.budgets.tier_a.space, [f.M[0]], where=f"{path}: budgets.tier_a.space")
    task_hash, task = _task_identity(spec.task, path)
    for field_name, split in (("budgets.tier_c.confirm_on", spec.budgets.tier_c.confirm_on),
                              *((f"exports.{i}", s) for i, s in enumerate(spec.exports))):
        try:
            task.split_queries(split)
        except UsageError as exc:
            raise UsageError(f"{path}: {field_name}: {exc}") from None

    cells: list[Cell] = []
    skipped: list[Skipped] = []
    seen: dict[str, Cell] = {}
    for g, m, r, loss, miner in itertools.product(f.G, f.M, f.R, f.L, f.N):
        combo = {"G": g, "M": m, "R": r, "L": loss, "N": miner}
        entry = regimes[r]
        shape = regime_shape(entry.spec)
        options = entry.spec.options
        if shape == "none":
            cell = Cell(G=g, M=m, R=entry.spec.id, L=None, N=None, shape=shape)
        else:
            loss_id = losses[loss].spec.id if loss != DEFAULT else options.get("loss", "bce")

            fmt = resolve("losses", loss_id).spec.input_format
            reason = _loss_fits(shape, loss_id, fmt)
            if reason:
                skipped.append(Skipped(combo, reason))
                continue
            miner_id = miners[miner].spec.id if miner != DEFAULT else resolve(
                "miners", options.get("miner", "n3-mixed")).spec.id
            if miner_id == "n2-iterative-hard":
                skipped.append(Skipped(combo, "N2 mines with a trained checkpoint, which a matrix cell cannot name "
                                              "yet; use N1 or N3"))
                continue
            cell = Cell(G=g, M=m, R=entry.spec.id, L=loss_id, N=miner_id, shape=shape)
        identity = {"task": spec.task, "task_data": task_hash, "M": cell.M, "R": cell.R, "L": cell.L, "N": cell.N,
                    "tier_b": spec.budgets.tier_b.model_dump(mode="json")}
        cell.train_key = canonical_hash(identity)[:16] if shape != "none" else None
        cell.key = canonical_hash({**identity, "G": g})[:16]
        if cell.key in seen:
            skipped.append(Skipped(combo, f"same cell as {seen[cell.key].key}"
                                          f" ({'R0 trains nothing: L and N do not apply' if shape == 'none' else 'the regime default equals a listed value'})"))
            continue
        cell.needs.append(f"candidates:{g}")
        seen[cell.key] = cell
        cells.append(cell)

    # R5: the teacher, possibly another cell (a dependency).
    for cell in list(cells):
        if cell.shape != "distillation":
            continue
        combo = {"G": cell.G, "M": cell.M, "R": cell.R, "L": cell.L or "-", "N": cell.N or "-"}
        if spec.teacher is None:
            cells.remove(cell)
            skipped.append(Skipped(combo, "R5 distils a teacher: set 'teacher:' (a reranker or a cell) in the file"))
            continue
        if isinstance(spec.teacher, str):
            cell.teacher = spec.teacher
            continue
        wanted = {k: v for k, v in spec.teacher.model_dump().items() if v is not None}
        matches = [c for c in cells if c.shape != "distillation" and c.G == cell.G
                   and all(getattr(c, k) == v or (k in ("R", "L", "N") and _same_component(k, getattr(c, k), v))
                           for k, v in wanted.items())]
        if len(matches) != 1:
            cells.remove(cell)
            skipped.append(Skipped(combo, f"teacher {wanted} matches {len(matches)} cells (needs exactly one)"))
            continue
        cell.teacher = f"cell:{matches[0].key}"
        cell.needs.append(matches[0].key)
    if not cells:
        reasons = "; ".join(sorted({s.reason for s in skipped})) or "no combinations"
        raise UsageError(f"{path}: the matrix has no runnable cell ({reasons})")
    return Plan(spec=spec, path=path, cells=cells, skipped=skipped, task_hash=task_hash)


def _same_component(kind: str, value: str | None, wanted: str) -> bool:
    if value is None:
        return False

    table = {"R": "regimes", "L": "losses", "N": "miners"}[kind]
    try:
        return resolve(table, wanted).spec.id == value
    except UsageError:
        return False


# -- cost ------------------------------------------------------------------------------------------------------------
def estimate_cost(plan: Plan, measured_pairs_per_s: float | None = None) -> dict[str, Any]:
    """Seconds per cell and in total, from the task's real row counts and a training throughput.

    Throughput comes from, in order: the file's ``throughput:``, ``measured_pairs_per_s`` (a caller's measurement),
    the training benchmark figure. The source is returned with the estimate so nobody mistakes a default
    for a measurement.
    """

    task = get_task(plan.spec.task)
    tier_b = plan.spec.budgets.tier_b
    fixed = tier_b.fixed
    if plan.spec.throughput:
        rate, source = plan.spec.throughput, "matrix file 'throughput:'"
    elif measured_pairs_per_s:
        rate, source = measured_pairs_per_s, "measured by the caller"
    else:
        rate, source = BENCHMARK_TRAIN_PAIRS_PER_S, ("benchmarks/README.md training throughput "
                                                     "(MiniLM-L6 fp32, 2 threads, AVX2)")
    train_queries = task.split_queries("train")
    positives = [sum(1 for g in task.qrels.get(q.query_id, {}).values() if g >= 1) for q in train_queries]
    post_sizes = [len(task.candidates(q)) for q in train_queries]
    eval_queries = task.split_queries("dev_select")
    eval_pairs = sum(len(task.candidates(q)) for q in eval_queries)
    negatives = int(fixed.get("negatives", 4))
    epochs = float(fixed.get("epochs", 1.0))
    per_cell: dict[str, float] = {}
    for cell in plan.cells:
        if cell.shape == "none":
            per_cell[cell.key] = eval_pairs / BENCHMARK_EVAL_PAIRS_PER_S
            continue
        rows = sum(min(p + negatives, s) for p, s in zip(positives, post_sizes, strict=True))
        train_s = rows * epochs / rate
        evals = tier_b.evaluations * eval_pairs / BENCHMARK_EVAL_PAIRS_PER_S
        per_cell[cell.key] = tier_b.trials * (train_s + evals)
    # after Tier B: every cell's exports, then per finalist its retrainings (the most expensive trained cell's
    # training time each) and its runs on dev_select and the confirmation split per seed
    export_pairs = sum(len(task.candidates(q)) for split in plan.spec.exports for q in task.split_queries(split))
    confirm_pairs = sum(len(task.candidates(q)) for q in task.split_queries(plan.spec.budgets.tier_c.confirm_on))
    trained = [s for c, s in per_cell.items() if plan.cell(c).shape != "none"]
    one_training = max(trained, default=0.0) / tier_b.trials
    finalists = min(plan.spec.budgets.tier_c.finalists, len(plan.cells))
    retrainings = len(plan.spec.seeds) - 1 + plan.spec.budgets.tier_c.folds
    later = (len(plan.cells) * export_pairs / BENCHMARK_EVAL_PAIRS_PER_S
             + finalists * (retrainings * one_training
                            + len(plan.spec.seeds) * (eval_pairs + confirm_pairs) / BENCHMARK_EVAL_PAIRS_PER_S))
    total = sum(per_cell.values()) + later
    return {"pairs_per_s": rate, "source": source, "per_cell_s": per_cell, "later_s": later, "total_s": total,
            "assumes": f"{tier_b.trials} Tier B trials per cell, {epochs:g} epoch(s), {negatives} negatives per "
                       f"query, {tier_b.evaluations} dev_select evaluations per trial, no pruning; after Tier B "
                       f"{finalists} finalist(s) retrained {retrainings} time(s) each, exports of "
                       f"{', '.join(plan.spec.exports) or 'nothing'}; transfer tasks not counted"}
