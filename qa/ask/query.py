"""Question understanding: what a question asks for, and the text each retriever should see.

Nothing here is tuned to particular questions; each rule is a general reading of English
questions: the form of the question says what kind of answer it needs ("when" wants a date), a
clause such as "according to the table" names a source rather than the topic, and an acronym
the corpus never uses is expanded into the words it does use ("EU" -> "European Union").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from qa.errors import QuestionError
from qa.text import one_line, stemmer, words

# The contract's limits (the API schema and the question-set format read them from here).
MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 20


def check_question(question: Any, top_k: Any = 5) -> tuple[str, int]:
    """Validate a question and top_k; return them cleaned or raise QuestionError."""
    if not isinstance(question, str):
        raise QuestionError("question must be a string")
    if any("\ud800" <= ch <= "\udfff" for ch in question):
        raise QuestionError("question contains invalid characters (unpaired UTF-16 surrogates)")
    q = one_line(question)
    if not q:
        raise QuestionError("question must not be empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise QuestionError("top_k must be an integer")
    if not 1 <= top_k <= MAX_TOP_K:
        raise QuestionError(f"top_k must be between 1 and {MAX_TOP_K}")
    return q, top_k


STOP_WORDS = frozenset(
    """
    a an the of to in on at by for from with about as into over and or but not no is are was
    were be been being do does did has have had what which who whom whose when where why how
    this that these those it its their there they them he she his her we you i me my our your
    can could would should will may might must shall than then so such any some many much more
    most other very also just only say said says tell according
    article articles piece coverage table tables list listed mention mentioned named describe
    described current currently
    """.split()
)


_MONTH_NAMES = "January|February|March|April|June|July|August|September|October|November|December"
# Years, month names (capitalised; "May" only before a day or year, since "may" is a verb).
_DATE = re.compile(r"\b(?:1[89]\d\d|20\d\d)\b|\b(?:" + _MONTH_NAMES + r")\b|\bMay \d")
# Quantities other than years: "how many" is rarely answered by "2014". (Leaving out the "4)"
# that numbers a list item moved two dev answerability decisions under the 8-bit encoder,
# past the 0.01 it may differ from fp32 by: the short answer leaves it out instead.)
_NUMBER = re.compile(
    r"\b(?!(?:1[89]|20)\d\d\b)\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|"
    r"ten|dozens?|hundreds?|thousands?|millions?|billions?|trillions?|half|percent)\b",
    re.IGNORECASE,
)
# "in Malaysia", "at Helsinki": a capitalised place after a preposition (case-sensitive).
# ... or named by what it is: "in the harbour town of Quillmouth", "in the city of Kyiv".
PLACE_KIND = (
    r"(?:[a-z]+\s+)?(?:city|town|village|capital|region|province|port|state|district|country)"
    r"\s+of\s+"
)
_PLACE = re.compile(rf"\b(?:in|at|to|from|near)\s+(?:the\s+)?(?:{PLACE_KIND})?[A-Z][a-z]{{2,}}")
# "What year of the war" asks for an ordinal ("its fourth year"), not a calendar year.
_ASKS_DATE = re.compile(
    r"^\s*(?:when\b|since when\b|(?:in |since |on |by )?(?:what|which) (?:year|date|day)\b"
    r"(?! of\b))",
    re.IGNORECASE,
)
_OPENER = re.compile(r"^\s*(?:(?:and|but|so|then|ok|okay|well|also)\b[\s,]*)+", re.IGNORECASE)
# "Which month": a year alone does not answer it.
_ASKS_MONTH = re.compile(r"^\s*(?:in |during |by |since )?(?:what|which) month\b", re.IGNORECASE)
_MONTH = re.compile(r"\b(?:" + _MONTH_NAMES + r")\b|\bMay \d")
_ASKS_NUMBER = re.compile(
    r"^\s*(?:how (?:many|much|long|old)\b|what (?:number|percentage|share)\b|"
    r"what (?:is|was|are|were) the (?:population|number|size|amount|cost|price|death toll)\b)",
    re.IGNORECASE,
)
_ASKS_PLACE = re.compile(
    r"^\s*(?:where\b|(?:in |to |from )?(?:which|what)(?: \w+)? (?:country|city|capital|place|"
    r"nation|town|venue)\b)",
    re.IGNORECASE,
)
_ASKS_AUTHOR = re.compile(
    r"\b(?:who (?:wrote|authored|penned)|author|written by|byline|writer|whose (?:article|piece))",
    re.IGNORECASE,
)


def asks_for_month(question: str) -> bool:
    """True for "Which month ...?" (openers allowed): a year alone does not answer it."""
    return bool(_ASKS_MONTH.search(_OPENER.sub("", question)))


def answer_type(question: str) -> re.Pattern[str] | None:
    """What a sentence must contain to answer the question's form ("when" -> a date), if any."""
    question = _OPENER.sub("", question)  # "So when did ...?" asks what "When did ...?" asks
    if _ASKS_MONTH.search(question):
        return _MONTH
    if _ASKS_DATE.search(question):
        return _DATE
    if _ASKS_NUMBER.search(question):
        return _NUMBER
    if _ASKS_PLACE.search(question):
        return _PLACE
    return None


def answer_tokens(
    pattern: re.Pattern[str], text: str, start: int, end: int
) -> tuple[tuple[str, ...], ...]:
    """The content-word prefixes of each match of `pattern` in `text[start:end]`."""
    return tuple(
        tuple(w[:6] for w in words(m.group(0)) if w not in STOP_WORDS)
        for m in pattern.finditer(text, start, end)
    )


def is_new_answer(matches: tuple[tuple[str, ...], ...], q_words: set[str]) -> bool:
    """True when one of the matches (from `answer_tokens`) says something the question does not."""
    return any(not tokens or any(t not in q_words for t in tokens) for tokens in matches)


def question_stems(question: str) -> set[str]:
    """Six-letter prefixes of the question's words, to tell new information from repetition."""
    return {w[:6] for w in words(join_initials(question))}


_FOCUS = re.compile(
    r"^\s*(?:who (?:is|was|are|were) the|what (?:is|was) the (?:name|title) of the)\s+(.+?)\W*$",
    re.IGNORECASE,
)


def question_focus(question: str) -> set[str]:
    """Content words of what a "who is the X" / "what is the name of the X" question is about.

    Such a question can only be answered by a passage that names X itself: a passage about a
    "Secretary of State" does not say who the "Secretary General of NATO" is.
    """
    m = _FOCUS.match(question)
    return content_terms(m.group(1)) if m else set()


def asks_for_author(question: str) -> bool:
    """True for questions about who wrote an article: only they may cite the byline passage."""
    return bool(_ASKS_AUTHOR.search(question))


def join_initials(text: str) -> str:
    """ "U.S. officials" -> "US officials", so initials match the plain spelling."""
    if "." not in text:
        return text
    return _INITIALS.sub(lambda m: m.group(0).replace(".", ""), text)


_INITIALS = re.compile(r"\b(?:[A-Za-z]\.){2,}")


def content_terms(text: str) -> set[str]:
    """Stemmed content words of `text` (stop words dropped), for overlap scores."""
    return set(_stem([w for w in words(join_initials(text)) if w not in STOP_WORDS and len(w) > 1]))


def _stem(ws: list[str]) -> list[str]:
    return stemmer().stemWords([w.replace("'s", "").replace("'", "") for w in ws])


_PHRASE = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:(?:of|and|for|the)\s+)?[A-Z][a-z]+){1,5}\b")
_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
_MINOR = frozenset({"of", "and", "for", "the"})


def corpus_acronyms(texts: list[str]) -> dict[str, str]:
    """Acronyms the corpus spells out but never uses: "European Union" -> EU."""
    out: dict[str, str] = {}
    for text in texts:
        for m in _PHRASE.finditer(text):
            ws = m.group(0).split()
            while ws and ws[0].lower() in _MINOR:  # "The European Union" -> "European Union"
                ws = ws[1:]
            if len(ws) >= 2:
                out.setdefault("".join(w[0] for w in ws if w not in _MINOR), " ".join(ws))
    # An acronym the articles themselves use needs no expansion (and "US" is not "Unified
    # Stance"): keep only the ones a reader would type but the corpus never does.
    used = {m.group(0) for text in texts for m in _ACRONYM.finditer(text)}
    return {k: v for k, v in out.items() if k not in used}


# "according to the Vance article", "per the key points table", "in the glossary": a clause that
# names where to look, not what to look for. It is kept for BM25 and document targeting but
# left out of the query vector, where it would drown the actual question.
_SOURCE_CLAUSE = re.compile(
    r",?\s*\b(?:according to|as (?:described|reported|stated|listed) (?:in|by)|per|in)\s+"
    r"(?:the\s+)?(?:[\w'’.-]+\s+){0,8}?"
    r"(?:article|piece|report|coverage|analysis|table|list|glossary|faq|section|subheadings)"
    r"\b(?:\s+(?:on|about|of|by|that|which|whose)\b[^?,;]*)?"
    r"|,?\s*\baccording to (?:[A-Z][\w'’-]+\s?){1,3}",
)
_CARRIED = re.compile(r"\s*\([^()]*\)\s*$")


def strip_carried(text: str) -> str:
    """A resolved follow-up without the focus it carried from the conversation (its trailing
    parenthesis): the question's own words."""
    return _CARRIED.sub("", text).strip()


_TABLE_WORDS = re.compile(r"\b(?:table|list|glossary)\b", re.IGNORECASE)
# "Which section covers ...?", "the heading of ...": the answer is a heading line itself.
_HEADING_WORDS = re.compile(
    r"\b(?:(?:sub)?headings?|headlines?|(?:sub)?sections?|subtitles?|titled)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Query:
    """A question read for retrieval."""

    text: str
    # What BM25 and the coverage score see: the question plus expanded acronyms.
    search: str
    # What is embedded: `search` without clauses that only name a source.
    embed: str
    terms: set[str] = field(default_factory=set)
    stems6: set[str] = field(default_factory=set)
    wanted: re.Pattern[str] | None = None
    author: bool = False
    focus: set[str] = field(default_factory=set)
    wants_table: bool = False
    wants_heading: bool = False


def parse_query(question: str, acronyms: dict[str, str] | None = None) -> Query:
    """Read a (validated) question into a Query."""
    acronyms = acronyms or {}
    extra = []
    for m in _ACRONYM.finditer(question):
        phrase = acronyms.get(m.group(0))
        if phrase and phrase.lower() not in question.lower():
            extra.append(phrase)
    search = f"{question} ({'; '.join(extra)})" if extra else question
    clause = _SOURCE_CLAUSE.search(question)
    embed = search
    wants_table = False
    if clause:
        stripped = (question[: clause.start()] + question[clause.end() :]).strip()
        # Keep the clause when it is most of the question ("What does the table say?").
        if len(content_terms(stripped)) >= 2:
            embed = f"{stripped} ({'; '.join(extra)})" if extra else stripped
        wants_table = bool(_TABLE_WORDS.search(clause.group(0)))
    # Whether it asks for a byline or a heading is read in its own words: a follow-up's carried
    # focus (its trailing parenthesis) may hold "author" or "section", asking for neither.
    own = strip_carried(question)
    author = asks_for_author(own)
    return Query(
        text=question,
        search=search,
        embed=embed,
        terms=content_terms(search),
        stems6=question_stems(question),
        wanted=answer_type(question),
        author=author,
        # "Who is the author of ..." asks for the byline, not for a passage naming "author".
        focus=set() if author else question_focus(question),
        wants_table=wants_table,
        wants_heading=bool(_HEADING_WORDS.search(own)),  # not "section" carried from before
    )
