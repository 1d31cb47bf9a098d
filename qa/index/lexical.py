"""BM25 over the same passages as the vectors (bm25s), saved beside them in the build.

Passages are tokenized by `bm25s.tokenize`; a question is tokenized by the same steps written
out for one text (`query_terms`), which costs a tenth of the general function's batch set-up:
it runs on every question.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import numpy as np

from qa.text import fold, stemmer


def _bm25s():  # type: ignore[no-untyped-def]
    """bm25s, imported when first needed (it is slow to import), with its log at warnings:
    it sets its own logger to DEBUG when imported, which a server's log would then show."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _tokenize(texts: list[str], show_progress: bool = False):  # type: ignore[no-untyped-def]
    bm25s = _bm25s()

    # Fold curly apostrophes so "Russia’s" and "Russia's" are one term.
    return bm25s.tokenize(
        [fold(t) for t in texts],
        stopwords="en",
        stemmer=stemmer(),
        show_progress=show_progress,
    )


# bm25s.tokenize's defaults: scikit-learn's token pattern, lower case, English stop words.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class LexicalIndex:
    """BM25 (Lucene variant) over passages, queried by row number."""

    def __init__(self, retriever, size: int) -> None:  # type: ignore[no-untyped-def]
        self._retriever = retriever
        self._size = size
        self._lock = threading.Lock()
        from bm25s.stopwords import STOPWORDS_EN

        self._stopwords = frozenset(STOPWORDS_EN)

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index `texts`; row i is text i."""
        retriever = _bm25s().BM25()
        retriever.index(_tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        """Write the index into `folder`."""
        self._retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        """Read an index written by `save`."""
        return cls(_bm25s().BM25.load(str(folder)), size)

    def query_terms(self, query: str) -> list[str]:
        """The stemmed terms of `query`, as `_tokenize` would make them (repeats kept)."""
        kept = [w for w in _TOKEN.findall(fold(query).lower()) if w not in self._stopwords]
        stems = stemmer().stemWords(kept) if kept else []
        return [t for t in stems if t]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (zeros when no query term is known)."""
        terms = self.query_terms(query)
        if not terms or self._size == 0:
            return np.zeros(self._size, dtype=np.float32)
        with self._lock:
            return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)
