"""TF-IDF retrieval with scikit-learn: the vectorizer is fitted on every indexed sentence of the task, so document
frequencies come from the whole collection rather than from one short post."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rrbench.plugin import Retriever


class TfidfRetriever(Retriever):
    def index(self, documents: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        settings = self.settings()
        self._vectorizer = TfidfVectorizer(
            analyzer=settings["analyzer"], ngram_range=tuple(settings["ngram_range"]),
            sublinear_tf=bool(settings["sublinear_tf"]), stop_words=settings.get("stop_words"),
            min_df=settings.get("min_df", 1), lowercase=True, dtype=np.float32,
        )
        self._matrix = self._vectorizer.fit_transform(list(documents))  # rows are L2-normalised

    def score_all(self, query: str) -> np.ndarray:
        vector = self._vectorizer.transform([query])
        return np.asarray((self._matrix @ vector.T).toarray()).ravel().astype(np.float64)
