"""Ranked passages -> an Answer: the best sentences with [n] markers, citations, answerable or not.

The answer is extractive: it is made only of corpus sentences, each followed by the number of
the citation it comes from. Which sentences, and whether the corpus answers at all, the ranking
policy decides (qa.ask.ranking); this module only writes its verdict down.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qa.ask.ranking import Ranked
from qa.chunking import Location
from qa.corpus import Document, table_row_text
from qa.index.loaded import LoadedBuild
from qa.text import one_line

NOT_FOUND = "The corpus does not contain an answer to this question."


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: an exact, verified span of a document."""

    n: int
    doc_id: str
    title: str
    byline: str | None
    section: str
    start: int
    end: int
    text: str
    highlights: tuple[tuple[int, int], ...]
    score: float
    doc_sha256: str
    also_at: tuple[Location, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's citation object."""
        # Shallow on purpose: every field is a str, number or tuple (asdict deep-copies, and was
        # a tenth of a request's Python time).
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["highlights"] = [list(h) for h in self.highlights]
        d["also_at"] = [asdict(loc) for loc in self.also_at]
        return d


@dataclass(frozen=True)
class Answer:
    """What `ask` returns; rendered as text (CLI), JSON (API) and HTML (chat page)."""

    question: str
    answerable: bool
    answer: str
    citations: tuple[Citation, ...]
    timing_ms: dict[str, float] = field(default_factory=dict)
    build: str = ""
    # The support score the answerability decision was made on (not part of the contract).
    support: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract shared by `qa ask --json` and `POST /api/ask`."""
        return {
            "question": self.question,
            "answerable": self.answerable,
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "timing_ms": {k: round(v, 3) for k, v in self.timing_ms.items()},
            "build": self.build,
        }


def compose(question: str, ranked: Ranked, build: LoadedBuild) -> Answer:
    """Turn the ranking's verdict into an Answer (citations not yet verified)."""
    citations = []
    for n, (c, spans) in enumerate(zip(ranked.candidates, ranked.highlights, strict=True), 1):
        p = c.passage
        doc = build.documents[p.doc_id]
        citations.append(
            Citation(
                n=n,
                doc_id=p.doc_id,
                title=doc.display_title,
                byline=doc.byline,
                section=p.section,
                start=p.start,
                end=p.end,
                text=p.text,
                highlights=spans,
                score=round(max(0.0, min(1.0, c.score)), 4),
                doc_sha256=doc.sha256,
                also_at=p.also_at,
            )
        )
    return Answer(
        question=question,
        answerable=ranked.answerable,
        answer=answer_text(citations, build) if ranked.answerable else NOT_FOUND,
        citations=tuple(citations),
        build=build.build_id,
        support=ranked.support,
    )


def answer_text(citations: list[Citation], build: LoadedBuild) -> str:
    """The highlighted sentences of the first citation, each followed by its [n]."""
    if not citations:
        return NOT_FOUND
    c = citations[0]
    doc = build.documents[c.doc_id]
    return " ".join(f"{_as_read(doc, a, b)} [{c.n}]" for a, b in c.highlights)


def _as_read(doc: Document, a: int, b: int) -> str:
    """A sentence as it reads in an answer: one line; a table row spelled out with its header."""
    s = one_line(doc.raw[a:b])
    if "|" in s:
        return table_row_text(s, doc.row_headers.get(a, ())) + "."
    return s


def renumber(answer: Answer, keep: list[Citation], build: LoadedBuild) -> Answer:
    """Drop citations that failed verification and renumber the rest from 1."""
    cites = [replace(c, n=i) for i, c in enumerate(keep, start=1)]
    if not cites:
        return replace(answer, answerable=False, answer=NOT_FOUND, citations=())
    text = answer_text(cites, build) if answer.answerable else answer.answer
    return replace(answer, citations=tuple(cites), answer=text)
