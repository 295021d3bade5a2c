"""BM25 through bm25s, with term statistics (IDF, average length) taken from every sentence of the task.

Why the whole task: a post has a handful of sentences, far too few for IDF, and indexing only the posts of the split
being evaluated made a query's scores (and every pool and fusion built on them) depend on which split was run. With
``idf_scope: task`` (the default, part of the config hash) the index covers all splits' sentences once; that is
unsupervised (only sentence texts are read, never a label), so nothing leaks from one split into another.
``idf_scope: split`` restores the old behaviour for comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rrbench.components.bases import ModelOptions, Retriever
from rrbench.components.specs import RetrieverSpec
from rrbench.util.errors import UsageError


class BM25Retriever(Retriever):
    """Options: ``k1``, ``b``, ``method`` (lucene, robertson, atire, bm25l, bm25+), ``stemmer`` (a PyStemmer
    language or ``none``), ``stopwords`` (``en`` or ``none``), ``idf_scope`` (``task`` or ``split``)."""

    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        settings = self.settings()
        self.k1 = float(settings["k1"])
        self.b = float(settings["b"])
        self.method = str(settings["method"])
        self.stemmer_name = str(settings.get("stemmer") or "none")
        self.stopwords = settings.get("stopwords")
        self.idf_scope = str(settings.get("idf_scope", "split"))  # values checked by the spec's option schema
        self._model: Any = None
        self._n = 0

    @property
    def index_scope(self) -> str:
        """``task``: index every sentence of the task, whatever the split (see :func:`rrbench.pipeline.candidates.retrieve`)."""
        return self.idf_scope

    def _stemmer(self) -> Any:
        if self.stemmer_name in ("none", ""):
            return None
        import Stemmer  # lazy: BM25 only

        return Stemmer.Stemmer(self.stemmer_name)

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        import bm25s  # lazy: BM25 only

        stopwords = None if self.stopwords in (None, "none", "") else self.stopwords
        return bm25s.tokenize(list(texts), stopwords=stopwords, stemmer=self._stemmer(), return_ids=False,
                              show_progress=False)

    def index(self, documents: Sequence[str]) -> None:
        import bm25s  # lazy: BM25 only

        tokens = self._tokenize(documents)
        if not any(tokens):
            # bm25s would fail deep inside with "max() arg is an empty sequence"
            raise UsageError(f"retriever {self.spec.id!r}: none of the {len(documents)} indexed sentences yields a "
                             f"BM25 token (stopwords {self.stopwords or 'none'}, stemmer {self.stemmer_name}); "
                             f"use another --retriever or set stopwords=none")
        self._model = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._model.index(tokens, show_progress=False)
        self._n = len(documents)

    def score_all(self, query: str) -> np.ndarray:
        tokens = self._tokenize([query])[0]
        if not tokens or self._model is None:
            return np.zeros(self._n, dtype=np.float64)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float64)
