"""The tutorial pipeline `qa eval --baseline` measures us against: fixed windows, dense only.

What a typical retrieval-augmented-generation tutorial does: cut each document's raw text into
1,000-character windows overlapping by 200, embed them with the same model, rank by cosine, and
always answer with the top window (no answerability decision, the whole window highlighted).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from qa.eval.evaluate import Cited, Outcome
from qa.model import Embedder
from qa.text import Span

WINDOW_CHARS = 1000
OVERLAP_CHARS = 200


def windows(raw: str, size: int = WINDOW_CHARS, overlap: int = OVERLAP_CHARS) -> list[Span]:
    """(start, end) of fixed windows over `raw`, `size` long and `overlap` apart from the next;
    the last one ends at the end of the text."""
    if not raw:
        return []
    step = size - overlap
    out = []
    start = 0
    while True:
        end = min(len(raw), start + size)
        out.append((start, end))
        if end >= len(raw):
            return out
        start += step


class TutorialPipeline:
    """Fixed windows, embedded once, searched by cosine with numpy."""

    name = "baseline"

    def __init__(self, documents: Mapping[str, str], embedder: Embedder) -> None:
        self.embedder = embedder
        self.chunks = [
            (doc_id, a, b, raw[a:b]) for doc_id, raw in documents.items() for a, b in windows(raw)
        ]
        self.vectors = embedder.encode([text for *_, text in self.chunks])

    def units(self) -> list[tuple[str, ...]]:
        """Every window's text."""
        return [(text,) for *_, text in self.chunks]

    def ask(self, question: str, top_k: int) -> Outcome:
        """The top windows; the first one is the answer."""
        qvec = self.embedder.encode([question])[0]
        sims = self.vectors @ qvec
        order = np.argsort(-sims, kind="stable")[:top_k]
        cited = tuple(
            Cited(doc_id, f"window {a}-{b}", a, b, (text,), (a, b))
            for doc_id, a, b, text in (self.chunks[i] for i in order)
        )
        answer = cited[0].texts[0] if cited else ""
        support = float(sims[order[0]]) if len(order) else 0.0
        return Outcome(True, answer, cited, support)
