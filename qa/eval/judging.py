"""What a pipeline answers to one question, and how that answer is judged against the question.

The records here (`Cited`, `Outcome`, `Judged`) are what every other part of the evaluation
passes around: pipelines produce Outcomes, `judge` turns one into a Judged, and the metrics
aggregate Judged questions.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass

from qa.ask.shortanswer import factoid_kind
from qa.ask.wording import strip_markers
from qa.eval.questions import EvidenceFinder, Question, holds_evidence
from qa.text import Span, fold


@dataclass(frozen=True)
class Cited:
    """One citation as the judge sees it. `texts` holds the cited text first, then the text at
    each merged duplicate location (they all count as the same citation)."""

    doc_id: str
    section: str
    start: int
    end: int
    texts: tuple[str, ...]
    highlight: Span | None

    @property
    def highlight_text(self) -> str:
        """The first highlighted span's text (the whole citation when nothing is highlighted)."""
        if self.highlight is None:
            return self.texts[0]
        a, b = self.highlight
        return self.texts[0][a - self.start : b - self.start]


@dataclass(frozen=True)
class Outcome:
    """What a pipeline answered to one question."""

    answerable: bool
    answer: str
    cited: tuple[Cited, ...]
    support: float = 0.0
    short_answer: str | None = None
    searched: str = ""  # the standalone query the pipeline searched ("" when as asked)


@dataclass(frozen=True)
class Judged:
    """One question's outcome, judged against its evidence."""

    question: Question
    outcome: Outcome
    ms: float
    # For each citation in rank order, whether it holds the evidence.
    supporting: tuple[bool, ...]
    sentence_hit: bool
    answer_f1: float
    # How many of the pipeline's units hold the evidence: the ideal ranking for ndcg.
    relevant: int
    # Factoid questions only (else None): the short answer's exact match and token F1.
    short_em: float | None = None
    short_f1: float | None = None
    # Answerable questions only (else None): the answer text itself holds the evidence.
    answer_has_evidence: bool | None = None

    @property
    def rank(self) -> int | None:
        """1-based rank of the first supporting citation, or None."""
        return self.supporting.index(True) + 1 if True in self.supporting else None

    @property
    def predicted_unanswerable(self) -> bool:
        """Whether the pipeline declared the question unanswerable."""
        return not self.outcome.answerable


def judge(
    q: Question, outcome: Outcome, finder: EvidenceFinder, ms: float = 0.0, relevant: int = 0
) -> Judged:
    """Judge one outcome: which citations support, the first highlight, the answer's F1."""
    supporting = tuple(holds_evidence(c.texts, q.evidence) for c in outcome.cited)
    sentence_hit = False
    if q.answerable and outcome.cited and outcome.cited[0].highlight is not None:
        first = outcome.cited[0]
        a, b = first.highlight  # type: ignore[misc]
        # The highlight is judged in raw offsets, so it must overlap an occurrence in the source.
        sentence_hit = any(
            s < b and a < e for ev in q.evidence for s, e in finder.occurrences(first.doc_id, ev)
        )
    f1 = 0.0
    if q.answer is not None and outcome.answerable:
        f1 = token_f1(strip_markers(outcome.answer), q.answer)
    # ndcg's ideal ranking holds at least the supporting units cited (`relevant` is 0 when the
    # caller did not count the pipeline's units).
    short_em = short_f1 = None
    has_evidence = None
    if q.answer is not None:
        text = strip_markers(outcome.answer) if outcome.answerable else ""
        has_evidence = holds_evidence([text], q.evidence) if text else False
        if factoid_kind(outcome.searched or q.question) is not None:
            got = outcome.short_answer if outcome.answerable else None
            short_f1 = token_f1(got, q.answer) if got else 0.0
            short_em = float(bool(got) and _squad_tokens(got) == _squad_tokens(q.answer))
    return Judged(
        q,
        outcome,
        ms,
        supporting,
        sentence_hit,
        f1,
        max(relevant, sum(supporting)),
        short_em,
        short_f1,
        has_evidence,
    )


# --- the answer's token F1 ------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def _squad_tokens(text: str) -> list[str]:
    text = fold(text)
    text = "".join(
        " " if ch in string.punctuation or unicodedata.category(ch).startswith("P") else ch
        for ch in text
    )
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 (lower case, no punctuation, no articles) of two answers."""
    pred, ref = _squad_tokens(prediction), _squad_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
