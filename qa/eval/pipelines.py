"""What the evaluation runs questions through: the real service, and the tutorial baseline.

`ServicePipeline` is the system under test: `QAService.ask`, the very call the API and the CLI
make, seen as an `Outcome`. `TutorialPipeline` is what `qa eval --baseline` measures us against,
what a typical retrieval-augmented-generation tutorial does: cut each document's raw text into
1,000-character windows overlapping by 200, embed them with the same model, rank by cosine, and
always answer with the top window (no answerability decision, the whole window highlighted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from qa.ask.followup import Turn
from qa.ask.service import QAService
from qa.chunking import Location
from qa.eval.judging import Cited, Outcome
from qa.model import Embedder
from qa.text import Span

WINDOW_CHARS = 1000
OVERLAP_CHARS = 200


class Pipeline(Protocol):
    """Something that answers questions: the real service, or the tutorial baseline."""

    name: str

    def units(self) -> Sequence[tuple[str, ...]]:
        """The texts of every retrievable unit (a unit's merged duplicates in one tuple)."""
        ...

    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Outcome:
        """Answer one question with up to `top_k` citations (after the earlier turns)."""
        ...


# --- the system under test ------------------------------------------------------------------


def source_text(service: QAService, doc_id: str, start: int, end: int) -> str:
    """The raw text at [start, end) of a document of the serving build."""
    # The one place that knows how the loaded build holds a document's text.
    return service.index().documents[doc_id].raw[start:end]


class ServicePipeline:
    """The real thing: `QAService.ask`, the very call the API and the CLI make."""

    name = "system"

    def __init__(self, service: QAService) -> None:
        self.service = service

    def units(self) -> list[tuple[str, ...]]:
        """Every passage of the serving build, with the text of its merged duplicates."""
        return [self._with_duplicates(p.text, p.also_at) for p in self.service.index().passages]

    def _with_duplicates(self, text: str, also_at: Sequence[Location]) -> tuple[str, ...]:
        # A merged duplicate counts as the same unit, so the judge must see its text too.
        return (
            text,
            *(source_text(self.service, loc.doc_id, loc.start, loc.end) for loc in also_at),
        )

    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Outcome:
        """One `QAService.ask`, seen as an Outcome."""
        answer = self.service.ask(question, top_k, list(history))
        cited = tuple(
            Cited(
                doc_id=c.doc_id,
                section=c.section,
                start=c.start,
                end=c.end,
                texts=self._with_duplicates(c.text, c.also_at),
                highlight=tuple(c.highlights[0]) if c.highlights else None,
            )
            for c in answer.citations
        )
        short = answer.short_answer.text if answer.short_answer else None
        return Outcome(
            answer.answerable, answer.answer, cited, answer.support, short, answer.searched
        )


# --- the tutorial baseline ------------------------------------------------------------------


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

    def ask(self, question: str, top_k: int, history: Sequence[Turn] = ()) -> Outcome:
        """The top windows; the first one is the answer (the conversation is not read)."""
        qvec = self.embedder.encode([question])[0]
        sims = self.vectors @ qvec
        # Stable, so equal scores keep corpus order and reruns cite the same windows.
        order = np.argsort(-sims, kind="stable")[:top_k]
        cited = tuple(
            Cited(doc_id, f"window {a}-{b}", a, b, (text,), (a, b))
            for doc_id, a, b, text in (self.chunks[i] for i in order)
        )
        answer = cited[0].texts[0] if cited else ""
        support = float(sims[order[0]]) if len(order) else 0.0
        return Outcome(True, answer, cited, support)
