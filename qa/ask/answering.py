"""Ranked passages -> an Answer: the best sentences with [n] markers, citations, answerable or not.

The answer is extractive: it is made only of corpus sentences, each followed by the number of
the citation it comes from. Whether the corpus answers at all is decided on the top passage's
support score against a threshold calibrated with `qa eval --calibrate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qa.ask.ranking import Candidate, OpenIndex
from qa.chunking import Location
from qa.text import continues_previous

NOT_FOUND = "The corpus does not contain an answer to this question."
# An extra answer sentence must score at least this share of the best one.
SECOND_SENTENCE_RATIO = 0.85
MAX_ANSWER_SENTENCES = 2
# Support lost when the question asks for a date, number or place the passage lacks.
TYPE_MISMATCH_PENALTY = 0.3
# A best sentence this short (a list term, a fragment) is extended with the next one.
SHORT_SENTENCE_WORDS = 7
# A following sentence that continues the best one joins it at this share of its score.
CONTINUATION_RATIO = 0.75


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


def support_score(top: Candidate) -> float:
    """How well the top passage supports an answer, in 0..1.

    Mixes the best sentence's similarity, the passage's similarity and the share of the
    question's content words (weighted by rarity) the passage contains: a close paraphrase of an
    answerable question scores high on the first two, while a plausible question about something
    the corpus never mentions loses on the third. A question whose form asks for a date, number
    or place is not supported by a passage that holds none.
    """
    value = 0.55 * top.best_sentence + 0.25 * top.dense + 0.2 * top.coverage
    if top.type_match is False:
        value -= TYPE_MISMATCH_PENALTY
    return max(0.0, min(1.0, value))


def _highlights(c: Candidate) -> tuple[tuple[int, int], ...]:
    """The answering sentence(s) of a passage, as absolute spans; adjacent ones joined."""
    if not c.sentences:
        return ((c.passage.start, c.passage.end),)
    spans = c.passage.sentences
    best_i, best, _, _ = c.sentences[0]
    chosen = {best_i}
    # A neighbour that scores nearly as well is part of the answer ("... prisoner exchanges.").
    for i, sim, _, muted in c.sentences[1:]:
        if not muted and abs(i - best_i) == 1 and sim >= best * SECOND_SENTENCE_RATIO:
            chosen.add(i)
            break
    text = c.passage.text
    base = c.passage.start

    def sentence(i: int) -> str:
        return text[spans[i][0] - base : spans[i][1] - base]

    scores = {i: sim for i, sim, _, muted in c.sentences if not muted}
    if best_i > 0 and continues_previous(sentence(best_i)):
        chosen.add(best_i - 1)  # "His approach is firm": say whose
    nxt = best_i + 1
    if nxt < len(spans) and nxt in scores and len(chosen) == 1:
        if len(sentence(best_i).split()) <= SHORT_SENTENCE_WORDS:
            chosen.add(nxt)  # a term or a fragment: its explanation follows
        elif continues_previous(sentence(nxt)) and scores[nxt] >= best * CONTINUATION_RATIO:
            chosen.add(nxt)  # "... new ideas. The details of these ideas remain confidential."
    merged: list[tuple[int, int]] = []
    for i in sorted(chosen):
        s, e = spans[i]
        if merged and i - 1 in chosen:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)


def compose(
    question: str,
    candidates: list[Candidate],
    index: OpenIndex,
    min_score: float,
) -> Answer:
    """Turn ranked candidates into an Answer (citations not yet verified)."""
    citations = []
    for n, c in enumerate(candidates, start=1):
        p = c.passage
        doc = index.documents[p.doc_id]
        citations.append(
            Citation(
                n=n,
                doc_id=p.doc_id,
                title=doc["title"],
                byline=doc["byline"],
                section=p.section,
                start=p.start,
                end=p.end,
                text=p.text,
                highlights=_highlights(c),
                score=round(max(0.0, min(1.0, c.score)), 4),
                doc_sha256=doc["sha256"],
                also_at=p.also_at,
            )
        )
    support = support_score(candidates[0]) if candidates else 0.0
    answerable = bool(candidates) and support >= min_score
    return Answer(
        question=question,
        answerable=answerable,
        answer=answer_text(citations, index) if answerable else NOT_FOUND,
        citations=tuple(citations),
        build=index.build_id,
        support=support,
    )


def answer_text(citations: list[Citation], index: OpenIndex) -> str:
    """The highlighted sentences of the first citation, each followed by its [n]."""
    if not citations:
        return NOT_FOUND
    c = citations[0]
    raw = index.documents[c.doc_id]["text"]
    parts = [f"{_clean(raw, a, b, index, c.doc_id)} [{c.n}]" for a, b in c.highlights]
    return " ".join(parts)


def _clean(raw: str, a: int, b: int, index: OpenIndex, doc_id: str) -> str:
    """A sentence as it reads in an answer: one line; a table row spelled out with its header."""
    header = index.table_header_at(doc_id, a)
    s = " ".join(raw[a:b].split())
    if "|" in s:
        cells = [cell.strip() for cell in s.strip("| ").split("|") if cell.strip()]
        if header and len(header) >= len(cells):
            return "; ".join(f"{h}: {c}" for h, c in zip(header, cells, strict=False)) + "."
        return "; ".join(cells) + "."
    return s


def renumber(answer: Answer, keep: list[Citation], index: OpenIndex) -> Answer:
    """Drop citations that failed verification and renumber the rest from 1."""
    cites = [replace(c, n=i) for i, c in enumerate(keep, start=1)]
    if not cites:
        return replace(answer, answerable=False, answer=NOT_FOUND, citations=())
    text = answer_text(cites, index) if answer.answerable else answer.answer
    return replace(answer, citations=tuple(cites), answer=text)
