"""Dense retrieval with a sentence-transformers bi-encoder: cosine similarity of normalised embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.models.base import ModelOptions
from rrbench.models.loading import load_sentence_transformer
from rrbench.retrievers.base import Retriever
from rrbench.specs import RetrieverSpec


class DenseRetriever(Retriever):
    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        self.model, self.weights_path, self.weights_source = load_sentence_transformer(spec, options)
        self.query_prompt = self.settings().get("query_prompt")
        self._embeddings: np.ndarray | None = None

    def _encode(self, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=int(self.settings().get("batch_size", 64)),
                                            convert_to_numpy=True, normalize_embeddings=True,
                                            show_progress_bar=len(texts) > 2000, prompt=prompt), dtype=np.float32)

    def index(self, documents: Sequence[str]) -> None:
        self._embeddings = self._encode(documents)

    def score_all(self, query: str) -> np.ndarray:
        assert self._embeddings is not None, "index() first"
        return (self._embeddings @ self._encode([query], self.query_prompt)[0]).astype(np.float64)
