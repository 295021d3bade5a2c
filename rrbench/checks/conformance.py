"""Conformance runs for the non-reranker kinds (``rrbench check NAME --kind KIND``), on the built-in mini task.

What rrbench relies on, per kind, checked on real calls rather than on declarations:

- **retrievers**: one finite score per candidate (count, dtype, finiteness -- outside the top-k too), the same scores
  when asked twice, the same score per candidate whatever order the candidates are given in, and, on a corpus-scope
  copy of the mini task, a ``search()`` that returns at most k distinct positions inside the corpus;
- **fusers**: one finite score per fused candidate, only ids from the input runs and each once, deterministic, and
  invariant to the order each run lists its candidates in;
- **miners**: only non-evidence sentences of the query's own post, at most ``k`` per query, and the same negatives
  for the same seed;
- **losses**: a finite scalar with a finite gradient on a tiny model and batch;
- **regimes**: options that are training settings, naming registered losses and miners;
- **calibrators**: fitted on a synthetic statistic, one finite value per input, within [0, 1], monotone,
  deterministic;
- **tasks**: the registered task loads with its declared hashes, under its own id, with queries in every split and
  has-evidence queries in every split that is scored.

Each check returns a JSON-ready report like the reranker one (``ok``, ``checks``), so ``rrbench check`` prints and
exits the same way for every kind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rrbench.checks.rerankers import check_reranker
from rrbench.components.calls import component_label, load_factory, owner_label, running
from rrbench.components.registry import get_registry, resolve
from rrbench.components.score_checks import PROBABILITY_SLACK, check_scores
from rrbench.components.specs import validate_options
from rrbench.models.tiny import make_tiny_bert, make_tiny_causal_lm
from rrbench.pipeline.candidates import fuse_pools, retrieve
from rrbench.pipeline.decide import load_calibrator
from rrbench.retrievers.factory import load_retriever
from rrbench.retrievers.fusion import load_fuser
from rrbench.tasks.mini import make_corpus_task, make_train_task
from rrbench.tasks.resolve import load_task_dir
from rrbench.training.miners import load_miner, non_evidence
from rrbench.training.model import load_base
from rrbench.training.regimes import expand
from rrbench.util.errors import RRBenchError, UsageError

Report = dict[str, Any]


class _Checks:
    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name = kind, name
        self.items: list[dict[str, Any]] = []

    def record(self, check: str, ok: bool, detail: str, diff: float | None = None) -> None:
        self.items.append({"check": check, "ok": bool(ok), "detail": detail, "max_abs_diff": diff})

    def attempt(self, check: str, fn: Callable[[], str]) -> bool:
        """Run one check; a plugin error becomes a failed check with its one-line message."""
        try:
            detail = fn()
        except RRBenchError as exc:
            self.record(check, False, str(exc))
            return False
        self.record(check, True, detail)
        return True

    def report(self, **extra: Any) -> Report:
        return {"kind": self.kind, "component": self.name, "ok": all(c["ok"] for c in self.items),
                "checks": self.items, **extra}


def _mini_task() -> Any:
    with tempfile.TemporaryDirectory(prefix="rrbench-check-") as tmp:
        return load_task_dir(make_train_task(Path(tmp) / "mini-task"))


def _corpus_task() -> Any:
    with tempfile.TemporaryDirectory(prefix="rrbench-check-") as tmp:
        return load_task_dir(make_corpus_task(Path(tmp) / "mini-corpus-task"))


def check_retriever(name: str, tolerance: float = 1e-6, **options: Any) -> Report:
    task = _mini_task()
    queries = sorted(task.queries.values(), key=lambda q: q.query_id)
    checks = _Checks("retrievers", name)
    retriever = load_retriever(name, **options)
    pools: list[Any] = []

    def finite() -> str:
        pools.extend(retrieve(task, queries, retriever, top_k=10_000))
        return f"{sum(len(p[0]) for p in pools)} candidates over {len(queries)} queries"

    if not checks.attempt("one finite score per candidate", finite):
        return checks.report()
    again = retrieve(task, queries, retriever, top_k=10_000)
    diff = max(float(np.abs(a[1] - b[1]).max()) if len(a[1]) else 0.0 for a, b in zip(pools, again, strict=True))
    same_ids = all(np.array_equal(a[0], b[0]) for a, b in zip(pools, again, strict=True))
    checks.record("deterministic", same_ids and diff <= tolerance, "same queries retrieved twice", diff)
    label = component_label(retriever)
    worst = 0.0
    for query in queries:  # within-post scoring of the candidates in reverse order
        candidates = task.candidates(query)
        start = int(task.post_offsets[task.post_index[query.post_id]])
        local = candidates - start
        with running(label, "score()"):
            ahead = check_scores(retriever.score(query.text, local), len(local), label)
            back = check_scores(retriever.score(query.text, local[::-1]), len(local), label)
        worst = max(worst, float(np.abs(ahead - back[::-1]).max()) if len(local) else 0.0)
    checks.record("candidate-order invariant", worst <= tolerance, "each post's candidates scored in reverse order",
                  worst)
    corpus = _corpus_task()
    corpus_queries = sorted(corpus.queries.values(), key=lambda q: q.query_id)
    searcher = load_retriever(name, **options)

    def searched() -> str:
        sizes = []
        for k in (3, len(corpus.sentences)):
            sizes += [len(ids) for ids, _ in retrieve(corpus, corpus_queries, searcher, top_k=k)]
        return (f"search() over the {len(corpus.sentences)} sentences of a corpus-scope task returned "
                f"{min(sizes)}-{max(sizes)} distinct in-corpus positions per query, at most k")

    checks.attempt("search(): at most k distinct in-corpus positions, finite scores", searched)
    return checks.report(score_kind=retriever.score_kind)


def check_fuser(name: str, tolerance: float = 1e-9, **options: Any) -> Report:
    rng = np.random.default_rng(13)
    queries = 6
    runs = []
    for _ in range(3):  # three retrievers' pools, partly overlapping, with ties
        pools = []
        for _ in range(queries):
            ids = rng.choice(40, size=12, replace=False).astype(np.int64)
            scores = np.round(rng.normal(size=12), 1)
            pools.append((ids, scores))
        runs.append(pools)
    checks = _Checks("fusers", name)
    fuser = load_fuser(name, options)
    fused: list[Any] = []

    def finite() -> str:
        fused.extend(fuse_pools(fuser, runs, top_k=1000))
        return f"{sum(len(p[0]) for p in fused)} fused candidates over {queries} queries from 3 runs"

    if not checks.attempt("one finite score per candidate, ids from the runs", finite):
        return checks.report()
    again = fuse_pools(fuser, runs, top_k=1000)
    checks.record("deterministic", all(np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=tolerance)
                                       for a, b in zip(fused, again, strict=True)), "same runs fused twice")
    shuffled = [[(ids[order], scores[order]) for ids, scores in pools
                 for order in [rng.permutation(len(ids))]] for pools in runs]
    moved = fuse_pools(fuser, shuffled, top_k=1000)
    diffs = []
    for a, b in zip(fused, moved, strict=True):
        pa, pb = dict(zip(a[0].tolist(), a[1].tolist(), strict=True)), dict(zip(b[0].tolist(), b[1].tolist(), strict=True))
        diffs.append(max((abs(pa[i] - pb.get(i, np.inf)) for i in pa), default=0.0) if set(pa) == set(pb)
                     else np.inf)
    worst = float(max(diffs, default=0.0))
    if np.isfinite(worst):
        checks.record("candidate-order invariant", worst <= tolerance,
                      "each run's candidates listed in another order", worst)
    else:
        checks.record("candidate-order invariant", False, "reordering a run changed which candidates were fused")
    return checks.report(score_kind=getattr(fuser, "score_kind", None))


def check_miner(name: str, k: int = 2, seed: int = 13, **options: Any) -> Report:
    task = _mini_task()
    queries = sorted(task.split_queries("train"), key=lambda q: q.query_id)
    checks = _Checks("miners", name)
    miner = load_miner(name, seed=seed, **options)
    label = component_label(miner)
    with running(label, "mine()"):
        mined = miner.mine(task, queries, k)
    problems = []
    if not isinstance(mined, dict):
        problems.append(f"mine() returned {type(mined).__name__}, not a dict of query id -> sentence ids")
        mined = {}
    for query in queries:
        got = np.asarray(mined.get(query.query_id, []))
        allowed = set(non_evidence(task, query).tolist())
        if len(got) > k:
            problems.append(f"{query.query_id}: {len(got)} negatives for k={k}")
        stray = [int(i) for i in got if int(i) not in allowed]
        if stray:
            problems.append(f"{query.query_id}: ids {stray[:3]} are evidence or outside the query's post")
    checks.record("own post's non-evidence only, at most k", not problems,
                  "; ".join(problems[:3]) or f"{len(queries)} queries, k={k}")
    with running(label, "mine()"):
        again = load_miner(name, seed=seed, **options).mine(task, queries, k)
    same = isinstance(again, dict) and all(np.array_equal(np.asarray(mined.get(q.query_id, [])),
                                                          np.asarray(again.get(q.query_id, []))) for q in queries)
    checks.record("deterministic for a seed", same, f"mined twice with seed {seed}")
    return checks.report()


def check_loss(name: str, **options: Any) -> Report:
    import torch  # lazy: torch costs seconds at start-up

    spec = resolve("losses", name).spec
    label = owner_label("losses", spec)
    checks = _Checks("losses", name)
    batch = LOSS_BATCHES.get(spec.input_format)
    if batch is None:
        checks.record("finite scalar with a gradient", False, f"no test batch for input format {spec.input_format}")
        return checks.report()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="rrbench-check-") as tmp:
        if "positive_token" in spec.options:
            model_dir = make_tiny_causal_lm(Path(tmp) / "lm")
        else:
            model_dir = make_tiny_bert(Path(tmp) / "bert")
        model = load_base(model_dir, max_length=48)
    builder = load_factory("losses", spec)
    with running(label, "building the loss"):
        loss = builder(model, **validate_options(spec, options))
    inputs, labels = batch()
    with running(label, "forward/backward"):
        value = loss(inputs, labels)
        scalar = isinstance(value, torch.Tensor) and value.dim() == 0
        finite = scalar and bool(torch.isfinite(value))
        if finite:
            value.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    has_grad = finite and bool(grads) and all(bool(torch.isfinite(g).all()) for g in grads)
    detail = (f"loss {float(value):.4g}, gradient on {len(grads)} tensors" if finite
              else f"got {value!r}"[:200])
    checks.record("finite scalar with a gradient", scalar and finite and has_grad, detail)
    return checks.report(input_format=spec.input_format)


def check_regime(name: str, **_: Any) -> Report:
    """A regime's options must be training settings, and the loss and miner it names must be registered."""

    registry = get_registry()
    spec = registry.get("regimes", name).spec
    checks = _Checks("regimes", name)
    settings: dict[str, Any] = {}

    def expanded() -> str:
        settings.update(expand(spec))
        return f"{len(settings)} settings"

    if not checks.attempt("options are training settings", expanded):
        return checks.report()
    problems = []
    for kind, key in (("losses", "loss"), ("miners", "miner")):
        if key in settings and not registry.has(kind, str(settings[key])):
            problems.append(f"{key} {settings[key]!r} is not a registered {kind[:-1] if kind != 'losses' else 'loss'}")
    if not problems and "loss" in settings and settings.get("loss_options"):
        try:
            validate_options(registry.get("losses", settings["loss"]).spec, settings["loss_options"])
        except RRBenchError as exc:
            problems.append(str(exc))
    checks.record("names registered components", not problems, "; ".join(problems) or
                  ", ".join(f"{k} {settings[k]}" for k in ("loss", "miner") if k in settings))
    return checks.report()


def check_calibrator(name: str, **options: Any) -> Report:
    """Fitted on a synthetic statistic, a calibrator maps it monotonically (non-decreasing) to finite numbers,
    deterministically."""

    rng = np.random.default_rng(13)
    x = np.concatenate([rng.normal(-1.0, 1.0, 40), rng.normal(1.5, 1.0, 40)])
    y = np.concatenate([np.zeros(40), np.ones(40)])
    grid = np.linspace(x.min() - 1, x.max() + 1, 50)
    checks = _Checks("calibrators", name)
    outputs = []
    for _ in range(2):
        calibrator = load_calibrator(name, options)
        label = component_label(calibrator)
        with running(label, "fit()/transform()"):
            calibrator.fit(x, y)
            outputs.append(np.asarray(calibrator.transform(grid), dtype=np.float64).reshape(-1))
    first = outputs[0]
    ok = len(first) == len(grid) and bool(np.isfinite(first).all())
    checks.record("one finite value per statistic", ok, f"{len(first)} values for {len(grid)} statistics")
    inside = ok and bool(((first >= -PROBABILITY_SLACK) & (first <= 1 + PROBABILITY_SLACK)).all())
    checks.record("probabilities within [0, 1]", inside,
                  f"from {first.min():.4g} to {first.max():.4g}" if ok and len(first) else "no values")
    drops = float(np.max(-np.diff(first), initial=0.0)) if ok else None
    checks.record("monotone non-decreasing", ok and drops is not None and drops <= 1e-12,
                  "transform over an increasing grid", drops)
    checks.record("deterministic", ok and np.array_equal(first, outputs[1]), "fitted twice on the same data")
    return checks.report()


def check_task(name: str, **_: Any) -> Report:
    """A registered task (rrbench's or a plugin's, by id or alias): its spec and data files load with the declared
    hashes, the registered id is the spec's id, every split has queries, and every split a metric is computed on has
    has-evidence queries. ``rrbench validate-task DIR`` does the first of these for a folder."""

    entry = resolve("tasks", name)
    checks = _Checks("tasks", name)
    loaded: list[Any] = []

    def load() -> str:
        task = load_task_dir(entry.spec.path)
        loaded.append(task)
        return (f"{task.id}@{task.version} ({task.spec.scope} scope): {len(task.post_ids)} posts, "
                f"{len(task.sentences)} sentences, {len(task.queries)} queries, data sha256 {task.data_sha256[:12]}")

    if not checks.attempt("spec and data files load (hashes, ids, labels, splits)", load):
        return checks.report(plugin=owner_label("tasks", entry.spec))
    task = loaded[0]
    checks.record("registered id is the spec's id", task.id == entry.id,
                  f"registered as {entry.id!r}, task.yaml says {task.id!r}")
    stats = task.split_stats()
    empty = [split for split, row in stats.items() if not row["queries"]]
    checks.record("every split has queries", bool(stats) and not empty,
                  ", ".join(f"{split} {row['queries']}" for split, row in stats.items()) or "no splits")
    scored = {split: row for split, row in stats.items() if split != "train"}
    lacking = [split for split, row in scored.items() if not row["has_evidence"]]
    checks.record("evaluation splits have has-evidence queries", not lacking,
                  "; ".join(f"{split}: {row['has_evidence']} with evidence, {row['no_evidence']} without"
                            + ("" if row["no_evidence"] else " (no false-evidence rate)")
                            for split, row in scored.items()) or "no evaluation split")
    return checks.report(plugin=owner_label("tasks", entry.spec), scope=task.spec.scope)


def _loss_batches() -> dict[str, Callable[[], tuple[Any, Any]]]:
    """Small fixed batches per input format (the shapes :mod:`rrbench.training.data` builds)."""
    q1, q2 = "aspirin prevents heart attacks", "caffeine affects sleep"
    p1, p2 = "Daily aspirin lowered heart attack rates.", "Sleep quality decreased with late caffeine intake."
    n1, n2, n3, n4 = ("The weather was sunny.", "Tea was not studied.", "Patients came from three hospitals.",
                      "The cohort included students only.")

    def tensor(values: Any) -> Any:
        import torch  # lazy: torch costs seconds at start-up

        return torch.tensor(values)

    return {
        "pointwise": lambda: ([[q1, q1, q2, q2], [p1, n1, p2, n2]], tensor([1.0, 0.0, 1.0, 0.0])),
        "listwise": lambda: ([[q1, q2], [[n1, p1, n3], [p2, n2, n4]]],
                             [tensor([0.0, 2.0, 0.0]), tensor([1.0, 0.0, 0.0])]),
        "grouped": lambda: ([[q1, q2], [p1, p2], [n1, n2], [n3, n4]], None),
        "distill-pointwise": lambda: ([[q1, q1, q2, q2], [p1, n1, p2, n2]], tensor([3.0, -2.0, 2.5, -1.5])),
        "distill-margin": lambda: ([[q1, q2], [p1, p2], [n1, n2]], tensor([4.0, 3.0])),
    }


LOSS_BATCHES = _loss_batches()

CHECKS: dict[str, Callable[..., Report]] = {
    "rerankers": check_reranker, "retrievers": check_retriever, "fusers": check_fuser, "miners": check_miner, "losses": check_loss,
    "regimes": check_regime, "calibrators": check_calibrator, "tasks": check_task,
}


def check_component(kind: str, name: str, **options: Any) -> Report:
    """The conformance run of ``rrbench check NAME --kind KIND``; ``report["ok"]`` is the verdict."""
    if kind not in CHECKS:
        raise UsageError(f"rrbench check knows no kind {kind!r}; choose from {', '.join(CHECKS)}")
    return CHECKS[kind](name, **options)
