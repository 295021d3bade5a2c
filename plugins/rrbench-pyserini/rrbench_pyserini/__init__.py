"""rrbench plugin registering Lucene BM25 through pyserini. Only the spec is built here: the JVM starts (~8 s) when
the retriever is first used, never when rrbench lists components."""

from __future__ import annotations

from rrbench.plugin import RetrieverSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(
        id="pyserini-bm25", aliases=("lucene-bm25",), loader="rrbench_pyserini.retriever:PyseriniBM25Retriever",
        description="Lucene BM25 via pyserini/Anserini (Porter stemming, Lucene English stopwords); "
                    "k1=0.9, b=0.4 as Anserini's defaults",
        options={"k1": 0.9, "b": 0.4},
        score_kind="bm25",
    ))
