"""Ranked passages -> an Answer: the best sentences with [n] markers, citations, answerable or not.

The answer is extractive: it is made only of corpus sentences, each followed by the number of
every citation it stands in. Which passages and sentences, and whether the corpus answers at all,
the ranking policy decides (qa.ask.ranking); this module composes its verdict into an answer:

- up to MAX_SENTENCES sentences: the first citation's highlights, then the first highlight of
  each further citation whose passage score is within CLOSE_MARGIN of the top one's;
- a sentence that repeats one already chosen (folded content-token overlap of at least
  DUPLICATE_OVERLAP) is not repeated: its marker joins the kept one ("... [1][3]"), as does the
  marker of any citation whose text holds a chosen sentence;
- the citations the answer text cites are marked `used`, come first and are numbered from 1
  (in ranked order, as are the others after them); `short_answer` is the exact span that
  answers a factoid question (qa.ask.shortanswer), inside a highlight of the first citation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from qa.ask.ranking import Ranked
from qa.ask.shortanswer import ShortAnswer, short_answer
from qa.chunking import Location
from qa.corpus import Document, table_row_text
from qa.index.loaded import LoadedBuild
from qa.text import fold, one_line, words

NOT_FOUND = "The articles do not contain an answer to this question."
# The answer's length, and which further citations may add a sentence to it.
MAX_SENTENCES = 3
CLOSE_MARGIN = 1.0  # a citation whose passage score is this close to the top one's (log-odds)
DUPLICATE_OVERLAP = 0.7  # share of the shorter sentence's content tokens the other holds
_FILLER = frozenset(
    "a an the of to in on at by for from with and or but is are was were be been has have had "
    "it its this that as".split()
)


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
    used: bool = False  # whether the answer text cites it
    # Whether its passage scored close enough to the top one to add a sentence to the answer
    # (not part of the contract).
    close: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract's citation object."""
        # Shallow on purpose: every field is a str, number or tuple (asdict deep-copies, and was
        # a tenth of a request's Python time).
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "close"}
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
    # The probability that the articles answer the question, on which the answerability
    # decision was made (not part of the contract).
    support: float = 0.0
    # The standalone query searched (the question itself when the conversation was not needed).
    searched: str = ""
    short_answer: ShortAnswer | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract shared by `qa ask --json` and `POST /api/ask`."""
        return {
            "question": self.question,
            "searched": self.searched or self.question,
            "answerable": self.answerable,
            "answer": self.answer,
            "short_answer": self.short_answer.to_dict() if self.short_answer else None,
            "citations": [c.to_dict() for c in self.citations],
            "timing_ms": {k: round(v, 3) for k, v in self.timing_ms.items()},
            "build": self.build,
        }


def compose(
    question: str, ranked: Ranked, build: LoadedBuild, searched: str | None = None
) -> Answer:
    """Turn the ranking's verdict into an Answer (citations not yet verified).

    `searched` is the standalone query the ranking saw (a follow-up resolved); it, not the
    question as typed, says what kind of short answer is wanted.
    """
    citations = []
    top = ranked.candidates[0].score if ranked.candidates else 0.0
    ceiling = 1.0
    for n, (c, spans) in enumerate(zip(ranked.candidates, ranked.highlights, strict=True), 1):
        p = c.passage
        # Never above the citation ranked before it: a re-read may put first a passage the
        # passage model scored lower than one it ranks behind.
        ceiling = min(ceiling, round(_relevance(ranked.top_probability, c.score - top), 4))
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
                score=ceiling,
                doc_sha256=doc.sha256,
                also_at=p.also_at,
                close=n == 1 or c.score >= top - CLOSE_MARGIN,
            )
        )
    answer = Answer(
        question=question,
        answerable=ranked.answerable,
        answer=NOT_FOUND,
        citations=tuple(citations),
        build=build.build_id,
        support=ranked.support,
        searched=searched or question,
    )
    return settle(answer, build)


def settle(answer: Answer, build: LoadedBuild) -> Answer:
    """The answer text, the `used` flags and the short answer, from the answer's citations."""
    cites = list(answer.citations)
    chosen = _sentences(cites, build) if answer.answerable and cites else []
    cited = {n for _, markers in chosen for n in markers}
    # The citations the answer uses come first and are numbered 1..k in their ranked order
    # (not "[1][3]" with [2] folded away); the rest follow, also in ranked order. (Numbered
    # from the sentences chosen, never read back from the text: an article's own "[12]".)
    shown = [c for c in cites if c.n in cited] + [c for c in cites if c.n not in cited]
    number = {c.n: i for i, c in enumerate(shown, start=1)}
    text = _joined([(s, [number[n] for n in markers]) for s, markers in chosen]) or NOT_FOUND
    cites = [
        c
        if (c.n, c.used) == (number[c.n], c.n in cited)
        else replace(c, n=number[c.n], used=c.n in cited)
        for c in shown
    ]
    short = None
    if answer.answerable and cites:
        first = cites[0]
        doc = build.documents[first.doc_id]
        short = short_answer(
            answer.searched or answer.question,
            first.doc_id,
            doc.raw,
            first.highlights,
            doc.row_headers,
        )
    return replace(answer, answer=text, citations=tuple(cites), short_answer=short)


def anchored_short_answer(answer: Answer) -> Answer:
    """The answer with its short answer checked against the (verified) first citation's text:
    kept when it still stands inside a highlight there, moved along with a moved citation,
    dropped (null) when it no longer stands in it."""
    s = answer.short_answer
    if s is None:
        return answer
    c = answer.citations[0] if answer.citations else None
    if c is not None and c.doc_id == s.doc_id:
        if (
            c.start <= s.start
            and s.end <= c.end
            and c.text[s.start - c.start : s.end - c.start] == s.text
        ):
            return answer
        for a, b in c.highlights:
            i = c.text.find(s.text, a - c.start, b - c.start)
            if i >= 0:
                moved = ShortAnswer(s.text, s.doc_id, c.start + i, c.start + i + len(s.text))
                return replace(answer, short_answer=moved)
    return replace(answer, short_answer=None)


def _content(text: str) -> set[str]:
    return {w for w in words(fold(text)) if w not in _FILLER}


def _near_duplicate(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / min(len(a), len(b)) >= DUPLICATE_OVERLAP


def _relevance(support: float, behind: float) -> float:
    """A citation's relevance in 0..1: the top one's is the probability that it answers the
    question; another's is that probability lowered by how far it ranks behind (the ranking's
    scores are log-odds of one passage over another)."""
    p = min(max(support, 1e-6), 1 - 1e-6)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + behind)))


def answer_text(citations: list[Citation], build: LoadedBuild) -> str:
    """Up to MAX_SENTENCES sentences, each followed by the [n] of every citation it stands in.

    The first citation's highlights come first; each further citation marked `close` adds its
    first highlight unless it repeats a sentence already chosen, whose markers it then joins.
    """
    return _joined(_sentences(citations, build)) or NOT_FOUND


def _joined(chosen: list[tuple[str, list[int]]]) -> str:
    return " ".join(f"{s} " + "".join(f"[{n}]" for n in sorted(markers)) for s, markers in chosen)


def _sentences(citations: list[Citation], build: LoadedBuild) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the numbers of the citations it stands in."""
    if not citations:
        return []
    chosen: list[tuple[str, set[str], list[int]]] = []  # (sentence, content tokens, markers)
    first = citations[0]
    doc = build.documents[first.doc_id]
    for a, b in first.highlights:
        s = _as_read(doc, a, b)
        chosen.append((s, _content(s), [first.n]))
    for c in citations[1:]:
        if not c.close or not c.highlights:
            continue
        a, b = c.highlights[0]
        s = _as_read(build.documents[c.doc_id], a, b)
        tokens = _content(s)
        same = next((u for u in chosen if _near_duplicate(u[1], tokens)), None)
        if same is not None:
            if c.n not in same[2]:
                same[2].append(c.n)
        elif len(chosen) < MAX_SENTENCES:
            chosen.append((s, tokens, [c.n]))
    folded = [fold(c.text) for c in citations]
    for s, _, markers in chosen:
        key = fold(s)
        for c, text in zip(citations, folded, strict=True):
            if c.n not in markers and key in text:
                markers.append(c.n)
    return [(s, markers) for s, _, markers in chosen]


def _as_read(doc: Document, a: int, b: int) -> str:
    """A sentence as it reads in an answer: one line; a table row spelled out with its header."""
    if "|" not in doc.raw[a:b]:
        return one_line(doc.raw[a:b])
    # A highlight may join neighbouring rows: each is spelled out with its own header.
    out, at = [], a
    for line in doc.raw[a:b].split("\n"):
        s = one_line(line)
        if s:
            out.append(table_row_text(s, doc.row_headers.get(at, ())) + "." if "|" in s else s)
        at += len(line) + 1
    return " ".join(out)


def renumber(answer: Answer, keep: list[Citation], build: LoadedBuild) -> Answer:
    """Drop citations that failed verification and renumber the rest from 1."""
    cites = [replace(c, n=i) for i, c in enumerate(keep, start=1)]
    if not cites:
        return replace(answer, answerable=False, answer=NOT_FOUND, citations=(), short_answer=None)
    if not cites[0].close:  # the new first citation always speaks
        cites[0] = replace(cites[0], close=True)
    return settle(replace(answer, citations=tuple(cites)), build)
