"""The retriever interface: index the task's candidate texts once, then score candidate subsets or search all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rrbench.models.base import ModelOptions
from rrbench.specs import RetrieverSpec


def encode_with_progress(encode: Callable[[list[str]], Any], texts: Sequence[str], batch_size: int, desc: str,
                         join: Callable[[list[Any]], Any]) -> Any:
    """Encode ``texts`` in chunks under one rrbench progress bar, returning the results in input order.

    The texts are visited longest first, as sentence-transformers orders one ``encode`` call, in chunks that are a
    whole number of batches: the batches (and so the padded shapes) match a single call's. ``encode`` gets a list of
    texts and returns an array-like or sparse matrix of rows; ``join`` stacks the chunk results.
    """
    import numpy as np

    from rrbench.progress import progress

    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunk = max(1, batch_size) * 16
    parts = []
    with progress(len(texts), desc, unit="text") as bar:
        for start in range(0, len(order), chunk):
            idx = order[start:start + chunk]
            parts.append(encode([texts[i] for i in idx]))
            bar.update(len(idx))
    if not parts:
        return encode([])
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.arange(len(order))
    return join(parts)[inverse]


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
            from rrbench.cache import stored_weights_fingerprint

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
