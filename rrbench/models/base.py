"""The runtime interfaces every reranker implements, and the options rrbench passes them.

Pointwise and bi-encoder rerankers score flat lists of (query, candidate) pairs, so the engine can batch pairs of
many queries together. Listwise rerankers score one query's whole candidate list at once: a candidate's score may
depend on its neighbours, so they get their own method instead of being forced through pair scoring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rrbench.specs import RerankerSpec


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


class Reranker(ABC):
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


class PairwiseReranker(Reranker):
    @abstractmethod
    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        """One score per (queries[i], documents[i]) pair, as a float array of the same length."""


class ListwiseReranker(Reranker):
    interaction = "listwise"

    @abstractmethod
    def score_list(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """One score per document, in input order."""
