"""Generic sentence-transformers cross-encoder backend: raw relevance logits for (query, sentence) pairs.

Scores are the model's raw output (no sigmoid), so the natural decision boundary is 0 and stored scores keep their
full resolution; a spec can declare ``score_kind="probability"`` with option ``activation: sigmoid`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.models.base import ModelOptions, PairwiseReranker
from rrbench.models.loading import pick_device, torch_dtype
from rrbench.models.resolve import resolve_weights
from rrbench.specs import RerankerSpec


class CrossEncoderReranker(PairwiseReranker):
    def __init__(self, spec: RerankerSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        import torch
        from sentence_transformers import CrossEncoder

        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"reranker {spec.id}")
        self.weights_path = str(path)
        activation = torch.nn.Sigmoid() if spec.options.get("activation") == "sigmoid" else torch.nn.Identity()
        self.max_length = options.max_length or spec.max_length
        model_kwargs = {}
        if options.dtype not in ("float32", "fp32"):
            model_kwargs["torch_dtype"] = torch_dtype(options.dtype)
        self.model = CrossEncoder(str(path), device=pick_device(options.device), max_length=self.max_length,
                                  activation_fn=activation, trust_remote_code=options.trust_remote_code,
                                  model_kwargs=model_kwargs or None)

    def score_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        pairs = [[q, d] for q, d in zip(queries, documents)]
        scores = self.model.predict(pairs, batch_size=self.options.batch_size, show_progress_bar=False,
                                    convert_to_numpy=True)
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 2:  # two-class heads: log-odds of the positive class
            scores = scores[:, -1] - scores[:, 0] if scores.shape[1] == 2 else scores[:, 0]
        return scores
