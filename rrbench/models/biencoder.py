"""A bi-encoder used as a reranker baseline: cosine similarity of independently encoded query and sentence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.components.bases import ModelOptions, PointwiseReranker
from rrbench.components.specs import RerankerSpec
from rrbench.models.loading import load_sentence_transformer


class BiEncoderReranker(PointwiseReranker):
    interaction = "bi-encoder"

    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        self.model, self.weights_path, self.weights_source = load_sentence_transformer(spec, options)

    @classmethod
    def fingerprint_extra(cls, spec: RerankerSpec, options: ModelOptions) -> None:
        """Nothing beyond spec, options and weights decides its scores: deferrable (rrbench.models.lazy)."""
        return None

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        vectors = self.model.encode(unique, batch_size=self.options.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        index = {text: i for i, text in enumerate(unique)}
        return vectors[[index[t] for t in texts]]

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        q = self._encode(queries)
        d = self._encode(documents)
        return np.einsum("ij,ij->i", q, d).astype(np.float64)
