"""Lucene BM25 through pyserini: the reference BM25 implementation of the IR literature (Anserini), so rrbench's
in-process ``bm25`` (bm25s) can be checked against it and numbers compared with published Anserini runs.

Documents are indexed in process with pyserini's ``LuceneIndexer`` into a temporary directory (removed when the
retriever is garbage-collected or the process exits). Lucene scores only documents sharing a term with the query;
every other candidate scores 0, as in bm25s.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Sequence

import numpy as np

from rrbench.plugin import ModelOptions, Retriever, RetrieverSpec


class PyseriniBM25Retriever(Retriever):
    """Options: ``k1``, ``b`` (Lucene BM25), ``threads`` (indexing threads, default 1 for reproducible doc order)."""

    def __init__(self, spec: RetrieverSpec, options: ModelOptions) -> None:
        super().__init__(spec, options)
        from rrbench_pyserini.jvm import prepare

        prepare()
        settings = self.settings()
        self.k1, self.b = float(settings["k1"]), float(settings["b"])
        self.threads = int(settings.get("threads", 1))
        self._searcher = None
        self._dir: str | None = None
        self._n = 0

    def index(self, documents: Sequence[str]) -> None:
        from pyserini.index.lucene import LuceneIndexer
        from pyserini.search.lucene import LuceneSearcher

        self._cleanup()
        self._dir = tempfile.mkdtemp(prefix="rrbench-lucene-")
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        indexer = LuceneIndexer(self._dir, threads=self.threads)
        batch = 10_000
        for start in range(0, len(documents), batch):
            indexer.add_batch_dict([{"id": str(i), "contents": documents[i]}
                                    for i in range(start, min(start + batch, len(documents)))])
        indexer.close()
        self._searcher = LuceneSearcher(self._dir)
        self._searcher.set_bm25(self.k1, self.b)
        self._n = len(documents)

    def _cleanup(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Lucene's top ``k`` (fewer when fewer documents match), ties put in document order."""
        assert self._searcher is not None, "index() first"
        hits = self._searcher.search(query, k=min(k, self._n))
        ids = np.fromiter((int(h.docid) for h in hits), dtype=np.int64, count=len(hits))
        scores = np.fromiter((h.score for h in hits), dtype=np.float64, count=len(hits))
        order = np.lexsort((ids, -scores))
        return ids[order], scores[order]

    def score_all(self, query: str) -> np.ndarray:
        ids, scores = self.search(query, self._n)
        out = np.zeros(self._n, dtype=np.float64)
        out[ids] = scores
        return out
