"""rrbench plugin registering TF-IDF retrievers. Only specs are built here; scikit-learn loads when one is used."""

from __future__ import annotations

from rrbench.plugin import RetrieverSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_retrievers(register):
    register(RetrieverSpec(
        id="tfidf", loader="rrbench_sklearn.tfidf:TfidfRetriever",
        description="TF-IDF over word unigrams+bigrams (scikit-learn), cosine similarity",
        options={"analyzer": "word", "ngram_range": [1, 2], "sublinear_tf": True, "stop_words": "english",
                 "min_df": 1},
        score_kind="cosine",
    ))
    register(RetrieverSpec(
        id="tfidf-char", aliases=("tfidf-chargram",), loader="rrbench_sklearn.tfidf:TfidfRetriever",
        description="TF-IDF over character 3-5-grams within word boundaries (scikit-learn), cosine similarity",
        options={"analyzer": "char_wb", "ngram_range": [3, 5], "sublinear_tf": True, "stop_words": None,
                 "min_df": 1},
        score_kind="cosine",
    ))
