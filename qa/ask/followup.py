"""Follow-up questions: whether a question leans on the conversation, and the query it stands for.

Deterministic, without a language model: every rule reads the form of English questions, never a
word of the corpus. A question depends on the conversation when it

- refers back: a personal or demonstrative pronoun with nothing in the question to refer to
  ("What did she say?", "Why did they do it?"), or a reference ("the same", "the latter", "that
  meeting", "there");
- is elliptical: a bare question word or phrase ("How so?", "Since when?", "Why not?"), or a noun
  phrase after an opener ("And Germany?", "What about the EU?");
- opens with a connective ("And ...", "But ...", "So ...", "Also ...");
- is too short to stand alone (no content word, or one word and no name).

A dependent question is resolved against the earlier turns (each resolved in turn, oldest first):

- an elliptical noun phrase takes the place of the first name of the last question ("What did
  France say about the plan?" + "And Germany?" -> "What did Germany say about the plan?"), or
  is added to it when it names nothing;
- "the former" / "the latter" become the first / last name of the last question; "he" / "she" /
  "him" (and "his", "her") become the last turn's one person when there is exactly one (for a
  "who" question, the name its answer gives);
- everything else keeps its words and carries the last turn's focus in parentheses: its names
  (capitalised sequences, acronyms) and key content words.

A question that stands on its own is searched exactly as typed: the history never drags a change
of topic back. `Resolved.text` is what is searched, and what the answer shows as `searched`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qa.ask.query import strip_carried
from qa.ask.shortanswer import (
    asks_who_someone_is,
    factoid_kind,
    find_short,
    first_new_name,
    is_plural,
    named_in,
)
from qa.ask.wording import (
    ACRONYM,
    MARKERS,
    QUESTION_WORDS,
    STOP,
    TITLE_CASE,
    key_words,
    names,
    strip_markers,
    tokens,
)
from qa.errors import QuestionError
from qa.text import one_line, sentence_spans

# The contract's limits on a conversation (the API schema reads them from here).
MAX_TURNS = 10
MAX_ANSWER_CHARS = 4000
MAX_TURN_CITATIONS = 20
# How many names and words of the last turn a follow-up carries.
MAX_FOCUS_NAMES = 4
MAX_FOCUS_WORDS = 4


@dataclass(frozen=True)
class Turn:
    """An earlier turn of the conversation: the question, the answer given, the spans cited."""

    question: str
    answer: str = ""
    citations: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class Resolved:
    """A question read against the conversation: the standalone text to search, and why."""

    text: str
    # "standalone", or the kind of dependence: "reference", "ellipsis", "opener", "short".
    kind: str
    # Documents the turn it leans on cited (empty for a standalone question).
    docs: tuple[str, ...] = ()

    @property
    def followup(self) -> bool:
        """Whether the question leaned on the conversation."""
        return self.kind != "standalone"


def check_history(history: Any) -> tuple[Turn, ...]:
    """Validate earlier turns (dicts as the API sends them, or Turns); raise QuestionError."""
    if history is None:
        return ()
    if not isinstance(history, (list, tuple)):
        raise QuestionError("history must be a list of earlier turns")
    if len(history) > MAX_TURNS:
        raise QuestionError(f"history has {len(history)} turns; the limit is {MAX_TURNS}")
    out = []
    for i, t in enumerate(history):
        if isinstance(t, Turn):
            out.append(t)
            continue
        if not isinstance(t, dict) or not isinstance(t.get("question"), str):
            raise QuestionError(f"history[{i}] must be an object with a question string")
        answer = t.get("answer", "")
        if not isinstance(answer, str):
            raise QuestionError(f"history[{i}].answer must be a string")
        cites = t.get("citations", [])
        if not isinstance(cites, list) or not all(
            isinstance(c, dict)
            and isinstance(c.get("doc_id"), str)
            and all(
                isinstance(c.get(k), int) and not isinstance(c.get(k), bool)
                for k in ("start", "end")
            )
            for c in cites
        ):
            raise QuestionError(f"history[{i}].citations must be a list of {{doc_id, start, end}}")
        for j, c in enumerate(cites):
            if not 0 <= c["start"] <= c["end"]:
                raise QuestionError(
                    f"history[{i}].citations[{j}] must have 0 <= start <= end "
                    f"(got start {c['start']}, end {c['end']})"
                )
        out.append(
            Turn(
                one_line(t["question"]),
                answer,
                tuple((c["doc_id"], c["start"], c["end"]) for c in cites),
            )
        )
    return tuple(out)


# --- reading a question -----------------------------------------------------------------------

_OPENERS = re.compile(
    r"^\s*(?:and|but|so|also|then|plus|or|and\s+what\s+about|and\s+how\s+about|what\s+about|"
    r"how\s+about|what\s+of|and\s+also|and\s+then|and\s+so)\b[\s,]*",
    re.IGNORECASE,
)
_NP_OPENERS = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?(?:what|how)\s+about\b\s*|^\s*(?:and|but|or)\b\s*",
    re.IGNORECASE,
)
# Question words and phrases that are a whole question after another one.
_BARE = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?(?:why(?:\s+not)?|how(?:\s+so|\s+come|\s+much|\s+many|\s+long)?|"
    r"since\s+when|until\s+when|when|where|who(?:\s+else)?|what\s+else|what\s+for|in\s+what\s+way|"
    r"for\s+how\s+long|which\s+one|by\s+whom|with\s+whom|really|anything\s+else|and\s+then|"
    r"what\s+happened\s+next|what\s+next|then\s+what)\s*[?.!]*\s*$",
    re.IGNORECASE,
)
_PERSONAL = frozenset("he she him his her hers himself herself".split())
_PLURAL = frozenset("they them their theirs themselves".split())
_THING = frozenset("it its itself".split())
_DEMONSTRATIVE = frozenset("this that these those".split())
# Words after "this"/"that" that make a time expression, not a reference ("this year").
_TIME_NOUNS = frozenset("year week month time day morning evening moment summer winter".split())
_REFERENCES = re.compile(
    r"\b(?:the\s+same|the\s+latter|the\s+former|the\s+two|both\s+of\s+them|"
    r"the\s+(?:other|first|second|third|fourth|fifth|last|next|previous)\s+one|"
    r"(?<!\bis\s)(?<!\bare\s)(?<!\bwas\s)(?<!\bwere\s)there(?!\s+(?:is|are|was|were|be|been|has|have)\b)|"
    r"(?<=since\s)then|(?<=\s)then(?=\s*\?)|that\s+(?:piece|article|story|one|meeting|report|deal|case)|"
    r"the\s+(?:above|aforementioned))\b",
    re.IGNORECASE,
)
_VERB_FORM = re.compile(r"(?:[^aiosuw]s|ed)$")  # "calls", "ended"; not "crisis", "news"
_PREPOSITIONS = frozenset("about of on with to for from in by at after before since".split())
_PLACE_OR_TIME = re.compile(
    r"\b(?:there|then|that\s+(?:time|day|year|month|place|country|city))\b", re.IGNORECASE
)
_LATTER = re.compile(r"\bthe\s+latter\b", re.IGNORECASE)
_FORMER = re.compile(r"\bthe\s+former\b", re.IGNORECASE)
# "what is X", "who is X", "define X": one word may be all a standalone question needs.
_DEFINITION = re.compile(
    r"^\s*(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?\S+\s*\??\s*$|^\s*define\b",
    re.IGNORECASE,
)


def _lower_words(text: str) -> list[str]:
    return [t.lower().replace("’", "'") for t in tokens(text)]


def _pronoun_kind(question: str) -> str | None:
    """The first reference the question makes to something outside it, if any."""
    toks = tokens(question)
    low = [t.lower() for t in toks]
    own_names = 0
    for i, (t, w) in enumerate(zip(toks, low, strict=True)):
        if (TITLE_CASE.match(t) or ACRONYM.match(t)) and w not in STOP:
            own_names += 1
            continue
        nxt = low[i + 1] if i + 1 < len(low) else ""
        if w in _PERSONAL or w in _PLURAL:
            # "What did Putin say about his plans?": bound by a name before it.
            if own_names == 0:
                return "reference"
        elif w == "its":
            if own_names == 0:
                return "reference"
        elif w in ("it", "itself"):
            # "it" rarely points at a person named in the same question.
            return "reference"
        elif w in _DEMONSTRATIVE:
            if nxt in _TIME_NOUNS:
                continue
            # "say that the ...", "the claim that Russia ...": a conjunction, unless a noun
            # follows ("that meeting") or a question word or a preposition stands before it
            # ("did that happen", "about that").
            after_word = i > 0 and low[i - 1] not in QUESTION_WORDS | _PREPOSITIONS
            conjunction = (
                w == "that"
                and nxt
                and not (nxt not in STOP and toks[i + 1].islower())
                and after_word
            )
            # "the article that calls ...", "the deal that ended ...": a relative clause after
            # "the <noun>", as a verb follows (a singular noun seldom ends so).
            relative = (
                w == "that"
                and i >= 2
                and low[i - 2] in ("the", "a", "an")
                and low[i - 1] not in STOP
                and _VERB_FORM.search(nxt) is not None
            )
            if relative:
                continue
            if not conjunction:
                return "reference"
    if _REFERENCES.search(question):
        return "reference"
    return None


_A_WORD = re.compile(r"[^\W_]{2,}")  # two letters or digits in a row: "why", "2024", "Q3"


def dependence(question: str) -> str | None:
    """How `question` depends on the conversation ("reference", "ellipsis", "opener",
    "short"), or None when it stands on its own."""
    q = question.strip()
    if not _A_WORD.search(q):
        return None  # "x", "?", "7": not a question, and the history cannot make it one
    if _BARE.match(q):
        return "ellipsis"
    np = _noun_phrase(q)
    if np is not None:
        return "ellipsis"
    kind = _pronoun_kind(q)
    if kind:
        return kind
    content = key_words(q)
    named = names(q)
    if _OPENERS.match(q):
        # "And what did the council decide about the harbour tariffs?" says all it asks: the
        # opener alone does not make a question with its own name and topic lean back.
        if (named and content) or len(content) >= 3:
            return None
        return "opener"
    if not named and not content:
        return "short"
    if not named and len(content) == 1 and len(_lower_words(q)) <= 3 and not _DEFINITION.match(q):
        return "short"
    return None


def _noun_phrase(question: str) -> str | None:
    """The noun phrase of "And Germany?" / "What about the EU?", or None for other forms."""
    m = _NP_OPENERS.match(question)
    if not m:
        return None
    rest = question[m.end() :].strip().rstrip("?.! ").strip()
    words = _lower_words(rest)
    if not words or len(words) > 5:
        return None
    if words[0] in QUESTION_WORDS or any(w in _PERSONAL | _PLURAL | _THING for w in words):
        return None
    # A verb-less phrase: nothing but names, articles and nouns (no auxiliary, no question word).
    if any(w in QUESTION_WORDS for w in words):
        return None
    return rest


# --- resolving --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Focus:
    question: str  # the last turn's resolved question
    names: tuple[str, ...]
    words: tuple[str, ...]
    person: str | None  # the one person "he"/"she" can mean, when there is exactly one
    docs: tuple[str, ...]
    answer: str | None = None  # what a factoid answer found ("Malaysia" for "Where ...?")


def _focus(resolved: str, turn: Turn) -> _Focus:
    own = strip_carried(resolved)
    found = names(resolved)
    person = None
    answer_said = None
    single = [n for n in names(own) if not ACRONYM.match(n)]
    someone = asks_who_someone_is(own)
    answer = turn.answer or ""
    if someone is not None and (single or named_in(answer, 0, len(answer), someone)):
        # "Who is Lavrov?" is about Lavrov, whatever the answer says he is.
        person = single[0] if len(single) == 1 else someone
    elif re.match(r"^\s*(?:and\s+)?who\b", own, re.IGNORECASE) and turn.answer:
        # "Who ...?" is about the person the answer names.
        said = _answer_sentence(turn.answer)
        # The answer's short answer when there is one ("Who wrote ...?": the byline's name).
        span = find_short(own, said, [(0, len(said))])
        person = said[span[0] : span[1]] if span else first_new_name(said, own)
        if person and person not in found:
            found.insert(0, person)
    elif len(single) == 1:
        person = single[0]
    if turn.answer and not person:
        # "Where ...?" -> "Malaysia": what a factoid answer found is part of the focus.
        sentence = strip_markers(turn.answer)
        span = find_short(own, sentence, [(0, len(sentence))])
        if span is not None:
            answer_said = sentence[span[0] : span[1]]
    docs: list[str] = []
    for doc_id, _, _ in turn.citations[:3]:
        if doc_id not in docs:
            docs.append(doc_id)
    return _Focus(
        question=own,
        names=tuple(found[:MAX_FOCUS_NAMES]),
        words=tuple(key_words(resolved)[:MAX_FOCUS_WORDS]),
        person=person,
        docs=tuple(docs),
        answer=answer_said,
    )


_FIRST_MARKERS = re.compile(rf"(?:{MARKERS.pattern})+")  # the first sentence's markers


def _answer_sentence(answer: str) -> str:
    """The answer's first sentence, without its [n] markers (cut by the corpus's own sentence
    splitter, which knows that "Lt. Gen. Keith Kellogg" is one sentence)."""
    # The composer ends each of its sentences with markers: the first is what precedes the
    # first ones (two headlines, say, are no sentences to the splitter, but are to the markers).
    text = _FIRST_MARKERS.split(answer, maxsplit=1)[0].strip()
    spans = sentence_spans(text)
    return text[spans[0][0] : spans[0][1]] if spans else text


def _replace_word(text: str, words: Iterable[str], by: str) -> str:
    pattern = r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"
    return re.sub(pattern, by, text, flags=re.IGNORECASE)


def _unbound_person(question: str) -> bool:
    """Whether a personal pronoun of the question comes before any name it holds."""
    toks = tokens(question)
    for i, t in enumerate(toks):
        if t.lower() in _PERSONAL:
            return True
        if i > 0 and (TITLE_CASE.match(t) or ACRONYM.match(t)) and t.lower() not in STOP:
            return False
    return False


# "her piece", "her TL;DR": a possessive before a word (an acronym counts, not "her US$5").
_HER_BEFORE_NOUN = re.compile(
    r"\bher\b(?=\s+(?:[a-z]{3,}|(?-i:[A-Z]{2,})\b(?![$\d])))"
    r"(?!\s+(?:about|to|in|on|at|for|with|from|by|of)\b)",
    re.IGNORECASE,
)


def _substitute(question: str, focus: _Focus) -> str:
    """Pronouns and references replaced by the last turn's names, where the reading is clear."""
    q = question
    own = names(focus.question)
    if len(own) >= 2:
        q = _LATTER.sub(own[-1], q)
        q = _FORMER.sub(own[0], q)
    if focus.person and _unbound_person(q):
        q = _replace_word(q, ["his"], focus.person + "'s")
        q = _HER_BEFORE_NOUN.sub(focus.person + "'s", q)
        q = _replace_word(q, ["he", "she", "him", "her"], focus.person)
    return q


def _carry(text: str, focus: _Focus) -> str:
    """`text` with the focus it lacks appended in parentheses."""
    have = {w.lower() for w in _lower_words(text)}
    names_ = list(focus.names)
    if focus.answer and _PLACE_OR_TIME.search(text):
        names_.insert(0, focus.answer)  # "there" / "then" / "at that time": what it found
    extra = [n for n in names_ if not all(w.lower() in have for w in n.split())]
    extra += [w for w in focus.words if w not in have]
    return f"{text} ({', '.join(extra)})" if extra else text


def _resolve_one(question: str, focus: _Focus | None) -> Resolved:
    kind = dependence(question) if focus is not None else None  # no history: nothing to lean on
    if kind is None or focus is None:
        return Resolved(question, "standalone")
    np = _noun_phrase(question) if kind == "ellipsis" else None
    if np is not None:
        np_names = names(question)  # read in place: "And Germany?" names Germany
        old = names(focus.question)
        asked = factoid_kind(focus.question)
        listed = asked is not None and is_plural(asked[1])
        # After "Which countries sent troops to Ukraine?", "And Germany?" asks about Germany
        # as one more of the countries, not about troops sent to Germany: carried, not put
        # in the place of the question's own name.
        if np_names and old and not listed:
            first = old[0]
            text = re.sub(r"\b" + re.escape(first) + r"(?:'s|’s)?\b", np, focus.question, count=1)
            return Resolved(text, kind, focus.docs)
        return Resolved(_carry(question, focus), kind, focus.docs)
    return Resolved(_carry(_substitute(question, focus), focus), kind, focus.docs)


def resolve(question: str, history: Sequence[Turn]) -> Resolved:
    """`question` read against the earlier turns (oldest first): what to search, and why."""
    focus: _Focus | None = None
    for turn in history:
        r = _resolve_one(turn.question, focus)
        focus = _focus(r.text, turn)
    return _resolve_one(question, focus)
