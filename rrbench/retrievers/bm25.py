"""BM25 through bm25s. IDF comes from all indexed sentences of the task, not from one short post, so term weights
are meaningful even when a post has eight sentences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rrbench.models.base import ModelOptions
from rrbench.retrievers.base import Retriever
from rrbench.specs import RetrieverSpec


class BM25Retriever(Retriever):
    """Options: ``k1``, ``b``, ``method`` (lucene, robertson, atire, bm25l, bm25+), ``stemmer`` (a PyStemmer
    language or ``none``), ``stopwords`` (``en`` or ``none``)."""

    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        settings = self.settings()
        self.k1 = float(settings["k1"])
        self.b = float(settings["b"])
        self.method = str(settings["method"])
        self.stemmer_name = str(settings.get("stemmer") or "none")
        self.stopwords = settings.get("stopwords")
        self._model = None

    def _stemmer(self):
        if self.stemmer_name in ("none", ""):
            return None
        import Stemmer

        return Stemmer.Stemmer(self.stemmer_name)

    def _tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        import bm25s

        stopwords = None if self.stopwords in (None, "none", "") else self.stopwords
        return bm25s.tokenize(list(texts), stopwords=stopwords, stemmer=self._stemmer(), return_ids=False,
                              show_progress=False)

    def index(self, documents: Sequence[str]) -> None:
        import bm25s

        self._model = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._model.index(self._tokenize(documents), show_progress=False)
        self._n = len(documents)

    def score_all(self, query: str) -> np.ndarray:
        tokens = self._tokenize([query])[0]
        if not tokens:
            return np.zeros(self._n, dtype=np.float64)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float64)
