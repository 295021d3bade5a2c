"""The base classes a plugin subclasses, one per component kind that has code: rerankers (pointwise and listwise),
retrievers, fusers, calibrators and miners.

They live here, below every implementation, so that a plugin's class and rrbench's own built-ins share one
definition that imports nothing heavy (numpy only). Plugin authors reach them through :mod:`rrbench.plugin`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rrbench.components.identity import stored_weights_fingerprint
from rrbench.components.specs import (
    CalibratorSpec,
    FuserSpec,
    MinerSpec,
    RerankerSpec,
    RetrieverSpec,
    validate_options,
)
from rrbench.util.errors import UsageError

if TYPE_CHECKING:
    from rrbench.tasks.resolve import Query, Task
#: one retriever's list for one query: ``(global candidate ids, scores)``, aligned, in any order
Run = tuple[np.ndarray, np.ndarray]


# -- rerankers -------------------------------------------------------------------------------------------------------
@dataclass
class ModelOptions:
    """Options shared by all model backends; ``extra`` holds backend-specific knobs from the spec or CLI."""

    model_path: str | None = None
    device: str | None = None
    max_length: int | None = None
    batch_size: int = 32
    dtype: str = "float32"
    instruction: str | None = None
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "device": self.device, "max_length": self.max_length,
                "batch_size": self.batch_size, "dtype": self.dtype, "instruction": self.instruction,
                "trust_remote_code": self.trust_remote_code, **self.extra}


class Reranker:
    """Base class of all rerankers. ``weights_source``/``weights_path`` say where the weights came from."""

    interaction = "pointwise"

    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        self.spec = spec
        self.options = options
        self.weights_path: str | None = None
        self.weights_source: str | None = None
        self.revision: str | None = spec.revision
        #: what the user asked for when it differs from ``options.dtype`` (``--dtype auto`` resolves at load)
        self.dtype_requested: str | None = None

    @property
    def score_kind(self) -> str:
        return self.spec.score_kind

    def describe(self) -> dict[str, Any]:
        """What a result manifest records about this component."""
        return {"id": self.spec.id, "hub_id": self.spec.hub_id, "revision": self.revision,
                "backend": self.spec.backend, "score_kind": self.score_kind, "interaction": self.interaction,
                "weights_source": self.weights_source, "weights_path": self.weights_path,
                "options": self.options.describe(),
                **({"dtype_requested": self.dtype_requested} if self.dtype_requested else {})}


class PointwiseReranker(Reranker, ABC):
    """Scores flat lists of (query, candidate) pairs, each pair on its own (the engine batches pairs of many queries)."""

    @abstractmethod
    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """One score per (queries[i], documents[i]) pair, as a float array of the same length."""


class ListwiseReranker(Reranker, ABC):
    interaction = "listwise"

    @abstractmethod
    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """One score per document, in input order."""


# -- retrievers -------------------------------------------------------------------------------------------------------
class Retriever(ABC):
    """Indexes a list of texts; ``score`` ranks a subset (within-post scope), ``search`` the whole index."""

    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        self.spec = spec
        self.options = options
        self.weights_path: str | None = None
        self.weights_source: str | None = None

    @property
    def score_kind(self) -> str:
        return self.spec.score_kind

    def settings(self) -> dict[str, Any]:
        """The options that change scores: part of the config hash."""
        return {**self.spec.options, **self.options.extra}

    def weights_sha256(self) -> str | None:
        """Content hash of the loaded weights (None without weights): keys the embedding and candidate caches and
        enters the config hash, so weights changed in place never serve stale vectors or pools."""
        if not hasattr(self, "_weights_sha256"):
            self._weights_sha256 = stored_weights_fingerprint(self.weights_path)
        return self._weights_sha256

    def describe(self) -> dict[str, Any]:
        described = {"id": self.spec.id, "hub_id": self.spec.hub_id, "revision": self.spec.revision,
                     "score_kind": self.score_kind, "options": self.settings(),
                     "weights_source": self.weights_source, "weights_path": self.weights_path}
        if self.weights_path:
            described["weights_sha256"] = self.weights_sha256()
        return described

    @abstractmethod
    def index(self, documents: Sequence[str]) -> None:
        """Prepare to score ``documents`` (referred to later by their position in this list)."""

    @abstractmethod
    def score_all(self, query: str) -> np.ndarray:
        """Scores of every indexed document for ``query``."""

    def score(self, query: str, doc_indices: np.ndarray) -> np.ndarray:
        return self.score_all(query)[doc_indices]

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k document indices and scores, ties broken by document index."""
        scores = self.score_all(query)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        order = np.lexsort((top, -scores[top]))
        top = top[order]
        return top, scores[top]


# -- fusers ----------------------------------------------------------------------------------------------------------
class Fuser(ABC):
    """A fusion method: built from its spec and options, combines one query's runs into one ranked list."""

    score_kind = "fused"

    def __init__(self, spec: FuserSpec, options: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.options: dict[str, Any] = validate_options(spec, options)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UsageError` for options that cannot work; the default accepts every option."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"id": self.spec.id, "options": dict(self.options), "score_kind": self.score_kind}

    @abstractmethod
    def fuse(self, runs: Sequence[Run]) -> Run:
        """Fused ``(ids, scores)`` for one query, best first."""


# -- calibrators -----------------------------------------------------------------------------------------------------
class Calibrator(ABC):
    """A monotone map from a query statistic to the probability that the query has evidence."""

    def __init__(self, spec: CalibratorSpec, options: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.options = {**spec.options, **dict(options or {})}
        self.params: dict[str, Any] = {}

    def check_kind(self, score_kind: str) -> None:
        """Refuse score kinds whose scale this calibrator cannot interpret."""
        if self.spec.score_kinds and score_kind not in self.spec.score_kinds:
            raise UsageError(f"calibrator {self.spec.id!r} cannot calibrate {score_kind} scores; it handles "
                             f"{', '.join(self.spec.score_kinds)} (try platt or isotonic)")

    @abstractmethod
    def fit(self, x: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on statistics ``x`` and binary outcomes ``y`` (1: the query has evidence)."""

    @abstractmethod
    def transform(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for statistics ``x`` (monotone non-decreasing in ``x``)."""

    def describe(self) -> dict[str, Any]:
        return {"id": self.spec.id, "params": self.params}


# -- miners -----------------------------------------------------------------------------------------------------------
def non_evidence(task: Task, query: Query) -> np.ndarray:
    """Global ids of the query's post sentences that are not evidence (grade < 1), in post order."""
    start, end = task.post_slice(query.post_id)
    evidence = {start + s for s, g in task.qrels.get(query.query_id, {}).items() if g >= 1}
    return np.asarray([i for i in range(start, end) if i not in evidence], dtype=np.int64)


class Miner:
    """Base class: ``mine(task, queries, k)`` -> ``{query_id: global ids}``."""

    def __init__(self, spec: MinerSpec, seed: int = 13, **options: Any) -> None:
        self.spec = spec
        self.seed = int(seed)
        self.options = validate_options(spec, options)

    def describe(self) -> dict[str, Any]:
        return {"id": self.spec.id, "seed": self.seed, "options": self.options}

    def mine(self, task: Task, queries: Sequence[Query], k: int) -> dict[str, np.ndarray]:
        raise NotImplementedError
