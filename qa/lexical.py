"""BM25 over the same passages as the vectors (bm25s), saved beside them in the build."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from qa.text import fold


def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenize(texts: list[str], show_progress: bool = False):  # type: ignore[no-untyped-def]
    import bm25s

    # Fold curly apostrophes so "Russia’s" and "Russia's" are one term.
    return bm25s.tokenize(
        [fold(t) for t in texts],
        stopwords="en",
        stemmer=_stemmer(),
        show_progress=show_progress,
    )


class LexicalIndex:
    """BM25 (Lucene variant) over passages, queried by row number."""

    def __init__(self, retriever, size: int) -> None:  # type: ignore[no-untyped-def]
        self._retriever = retriever
        self._size = size
        self._lock = threading.Lock()

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index `texts`; row i is text i."""
        import bm25s

        retriever = bm25s.BM25()
        retriever.index(_tokenize(texts), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        """Write the index into `folder`."""
        self._retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        """Read an index written by `save`."""
        import bm25s

        return cls(bm25s.BM25.load(str(folder)), size)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (zeros when no query term is known)."""
        import bm25s

        tokens = bm25s.tokenize(
            [fold(query)], stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False
        )
        terms = [t for t in tokens[0] if t]
        if not terms or self._size == 0:
            return np.zeros(self._size, dtype=np.float32)
        with self._lock:
            return np.asarray(self._retriever.get_scores(terms), dtype=np.float32)
