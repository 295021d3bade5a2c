"""Dense retrieval with a sentence-transformers bi-encoder and a faiss index over normalised embeddings.

Options (spec defaults, overridable): ``batch_size``; ``normalize`` (cosine = inner product of unit vectors);
``query_prompt`` (a literal prefix) or ``query_instruction`` + ``query_template`` (Qwen3-Embedding style:
``"Instruct: {instruction}\\nQuery:"``), applied to queries only; ``max_length``; ``index``: a faiss index-factory
string, ``"Flat"`` (exact, the default) or an approximate one such as ``"HNSW32"`` or ``"IVF1024,Flat"`` for corpus
scale; ``ef_search`` (HNSW) and ``nprobe`` (IVF) trade speed for recall.

Document embeddings are cached on disk (:mod:`rrbench.retrievers.store`) under a key over the model identity, the
options that change vectors and the exact texts, so a second run over the same corpus encodes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ModelOptions, Retriever
from rrbench.components.specs import RetrieverSpec
from rrbench.models.loading import load_sentence_transformer
from rrbench.retrievers import store
from rrbench.retrievers.encoding import encode_with_progress
from rrbench.retrievers.faiss_device import faiss_on_device


class DenseRetriever(Retriever):
    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)

        settings = self.settings()
        if settings.get("max_length") and not options.max_length:
            options.max_length = int(settings["max_length"])
        self.model, self.weights_path, self.weights_source = load_sentence_transformer(spec, options)
        self.query_prompt = self._query_prompt(settings)
        self.index_spec = str(settings.get("index", "Flat"))
        self._embeddings: np.ndarray | None = None
        self._faiss: Any = None
        self.cache_hit: bool | None = None

    @staticmethod
    def _query_prompt(settings: dict[str, Any]) -> str | None:
        if settings.get("query_instruction"):
            template = str(settings.get("query_template", "Instruct: {instruction}\nQuery:"))
            return template.format(instruction=settings["query_instruction"])
        return settings.get("query_prompt")

    def model_identity(self) -> dict[str, Any]:
        """Everything that changes a document vector. Not the spec id nor the index type: two specs over the same
        weights and settings (minilm-l6 and minilm-l6-hnsw) share their vectors."""
        settings = {k: v for k, v in self.settings().items() if k not in ("index", "ef_search", "nprobe", "batch_size")}
        return {"hub_id": self.spec.hub_id, "revision": self.spec.revision,
                "weights_source": self.weights_source, "weights_path": self.weights_path,
                "weights_sha256": self.weights_sha256(), "settings": settings,
                "max_seq_length": getattr(self.model, "max_seq_length", None), "dtype": self.options.dtype}

    def _encode(self, texts: Sequence[str], prompt: str | None = None) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=self._batch_size(), convert_to_numpy=True,
                                            normalize_embeddings=bool(self.settings().get("normalize", True)),
                                            show_progress_bar=False, prompt=prompt), dtype=np.float32)

    def _batch_size(self) -> int:
        return int(self.settings().get("batch_size", 64))

    def _encode_documents(self, documents: Sequence[str]) -> np.ndarray:
        """Document vectors under one rrbench progress bar (the longest wait of a dense run)."""
        return encode_with_progress(
            lambda chunk: self._encode(chunk) if chunk else np.empty((0, 0), np.float32),
            documents, self._batch_size(), f"encoding sentences ({self.spec.id})", np.concatenate)

    def index(self, documents: Sequence[str]) -> None:
        key = store.embedding_key(self.model_identity(), documents)
        cached = store.load_embeddings(key)
        self.cache_hit = cached is not None and cached.shape[0] == len(documents)
        if self.cache_hit:
            self._embeddings = cached
        else:
            self._embeddings = self._encode_documents(documents)
            store.save_embeddings(key, self._embeddings)
        self._faiss = None

    def _index(self) -> Any:
        """The faiss index, built on first search (within-post scoring never needs one)."""
        if self._faiss is None:
            import faiss  # lazy: dense retrieval only

            assert self._embeddings is not None, "index() first"
            dim = self._embeddings.shape[1]
            index = faiss.index_factory(dim, self.index_spec, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                index.train(self._embeddings)
            index.add(self._embeddings)
            settings = self.settings()
            if "ef_search" in settings and hasattr(index, "hnsw"):
                index.hnsw.efSearch = int(settings["ef_search"])
            if "nprobe" in settings:
                faiss.extract_index_ivf(index).nprobe = int(settings["nprobe"])

            self._faiss, self.faiss_device = faiss_on_device(index, str(self.model.device))
        return self._faiss

    def encode_query(self, query: str) -> np.ndarray:
        return self._encode([query], self.query_prompt)[0]

    def score_all(self, query: str) -> np.ndarray:
        assert self._embeddings is not None, "index() first"
        return (self._embeddings @ self.encode_query(query)).astype(np.float64)

    def score(self, query: str, doc_indices: np.ndarray) -> np.ndarray:
        assert self._embeddings is not None, "index() first"
        return (self._embeddings[np.asarray(doc_indices)] @ self.encode_query(query)).astype(np.float64)

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k through faiss; ties (exact duplicates) are put in document order so runs are reproducible."""
        index = self._index()
        k = min(k, index.ntotal)
        scores, ids = index.search(self.encode_query(query)[None, :], k)
        keep = ids[0] >= 0  # approximate indexes may return fewer than k hits
        ids, scores = ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float64)
        order = np.lexsort((ids, -scores))
        return ids[order], scores[order]
