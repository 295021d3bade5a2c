"""Learned sparse retrieval (SPLADE) through sentence-transformers' ``SparseEncoder``.

Documents become sparse vocabulary-sized vectors, kept as one scipy CSR matrix; a query's score for every document
is one sparse matrix-vector product, i.e. exactly the dot product an inverted index would compute. The document
matrix is cached on disk like dense embeddings (same content-addressed key scheme).

Options: ``batch_size``; ``max_length``; ``max_active_dims`` (keep only the largest weights per vector, None = all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ModelOptions, Retriever
from rrbench.components.specs import RetrieverSpec
from rrbench.models.loading import pick_device
from rrbench.models.resolve import resolve_weights
from rrbench.retrievers import store
from rrbench.retrievers.encoding import encode_with_progress


def _to_csr(tensor: Any) -> Any:
    """A torch sparse COO (n x vocab) tensor as a scipy CSR matrix (float32)."""
    from scipy import sparse  # lazy: slow to import; few functions need it

    tensor = tensor.coalesce().cpu()
    rows, cols = tensor.indices().numpy()
    return sparse.csr_matrix((tensor.values().float().numpy(), (rows, cols)), shape=tuple(tensor.shape),
                             dtype=np.float32)


class SpladeRetriever(Retriever):
    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        from sentence_transformers import SparseEncoder  # lazy: heavy: pulls in torch

        path, self.weights_source = resolve_weights(spec.hub_id, spec.revision, options.model_path,
                                                    packaged=spec.packaged_weights, what=f"retriever {spec.id}")
        self.weights_path = str(path)
        self.model = SparseEncoder(str(path), device=pick_device(options.device),
                                   trust_remote_code=options.trust_remote_code)
        max_length = options.max_length or self.settings().get("max_length")
        if max_length:
            self.model.max_seq_length = int(max_length)
        self._docs = None
        self.cache_hit: bool | None = None

    def _encode(self, texts: Sequence[str], query: bool) -> Any:
        settings = self.settings()
        encode = self.model.encode_query if query else self.model.encode_document
        tensor = encode(list(texts), batch_size=int(settings.get("batch_size", 32)), convert_to_tensor=True,
                        convert_to_sparse_tensor=True, max_active_dims=settings.get("max_active_dims"),
                        show_progress_bar=False)
        return _to_csr(tensor)

    def model_identity(self) -> dict[str, Any]:
        settings = {k: v for k, v in self.settings().items() if k != "batch_size"}
        return {"id": self.spec.id, "hub_id": self.spec.hub_id, "revision": self.spec.revision,
                "weights_path": self.weights_path, "weights_sha256": self.weights_sha256(),
                "settings": settings, "max_seq_length": self.model.max_seq_length, "kind": "splade-csr"}

    def index(self, documents: Sequence[str]) -> None:
        from scipy import sparse  # lazy: slow to import; few functions need it

        key = store.embedding_key(self.model_identity(), documents)
        cached = store.load_sparse(key)
        self.cache_hit = cached is not None and cached.shape[0] == len(documents)
        if self.cache_hit:
            self._docs = cached
        else:
            self._docs = sparse.csr_matrix(encode_with_progress(
                lambda chunk: self._encode(chunk, query=False), documents,
                int(self.settings().get("batch_size", 32)), f"encoding sentences ({self.spec.id})",
                lambda parts: sparse.vstack(parts, format="csr")))
            store.save_sparse(key, self._docs)

    def _query_vector(self, query: str) -> Any:
        return self._encode([query], query=True)

    def score_all(self, query: str) -> np.ndarray:
        assert self._docs is not None, "index() first"
        return np.asarray((self._docs @ self._query_vector(query).T).todense(), dtype=np.float64).reshape(-1)

    def score(self, query: str, doc_indices: np.ndarray) -> np.ndarray:
        assert self._docs is not None, "index() first"
        subset = self._docs[np.asarray(doc_indices)]
        return np.asarray((subset @ self._query_vector(query).T).todense(), dtype=np.float64).reshape(-1)
