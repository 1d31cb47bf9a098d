"""The short answer of a factoid question: an exact span inside an answering sentence.

Who, when, where, how many / how much / how long, which X: the form of the question says what
kind of span answers it, and the span is looked for only inside the highlighted sentences of the
first citation, where the ranking found the answer. Rules read English, never this corpus:

- when: a date, a month (with its day and year), a year;
- how many / how much / how long: a number phrase (with its scale and unit);
- where: a capitalised place after in / at / to / from / near;
- who: a capitalised name sequence (titles and nationality words before it dropped) the
  question does not hold;
- which X / what X: a capitalised name near X in the sentence (a place for "which country").

Several candidates: the one nearest to the question's own words in the sentence. None: no short
answer (null), never a guess from elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qa.ask.query import (
    PLACE_KIND,
    asks_for_author,
    asks_for_month,
    content_terms,
    strip_carried,
)
from qa.ask.wording import MINOR, STOP, key_words
from qa.text import Span, sentence_spans

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.|Feb\\.|Aug\\.|Sept?\\.|Oct\\.|Nov\\.|Dec\\."
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DATE = re.compile(
    rf"\b(?:(?:early|mid|late)[- ])?(?:{_MONTHS})(?:\s+{_DAY}\b)?(?:,?\s+{_YEAR}\b)?"
    rf"|\b{_DAY}\s+(?:{_MONTHS})(?:,?\s+{_YEAR}\b)?"
    rf"|\b(?:(?:early|mid|late)[- ])?{_YEAR}s?\b"
)
_SCALE = r"(?:million|billion|trillion|thousand|hundred)"
_UNIT = r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centuries)"
_WORD_NUMBER = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|a\s+hundred|a\s+dozen|dozens|hundreds|thousands|"
    r"millions|billions|several|a\s+few|half)"
)
_NUMBER = re.compile(
    # (not the "4)" that numbers a list item)
    rf"(?:[$€£]\s?)?\b\d[\d,.]*(?![\d,.]*\))(?:\s*(?:%|percent|per\s+cent))?(?:\s+{_SCALE})?"
    rf"(?:\s+{_UNIT})?"
    rf"|\b{_WORD_NUMBER}(?:\s+{_SCALE})?(?:\s+{_UNIT})?\b",
    re.IGNORECASE,
)
_YEAR_ONLY = re.compile(rf"^{_YEAR}s?$")
# A capitalised word; hyphen-joined ones ("Rubio-Lavrov", "Ukrainian-American") are one word.
_CAP = r"(?:[A-Z][a-z'’]+(?:-[A-Za-z][a-z'’]*)*|[A-Z]{2,6}s?|(?:[A-Z]\.){2,4}|[A-Z]\.)"
# A name's words stand on one line (a heading's last word is not the next line's first name).
_NAME = re.compile(rf"\b{_CAP}(?:[ \t]+(?:(?:of|the|de|al|bin|von|van)[ \t]+)?{_CAP})*")
_PLACE = re.compile(
    rf"\b(?:in|at|to|from|near)[ \t]+(?:the[ \t]+)?(?:{PLACE_KIND})?"
    rf"({_CAP}(?:[ \t]+(?:of[ \t]+)?{_CAP})*)"
)
# Words that stand before a name without being part of it (general English titles).
_TITLES = frozenset(
    """
    president vice secretary minister foreign prime state defense defence general lt gen chancellor
    senator sen rep representative ambassador envoy special spokesperson spokesman spokeswoman
    leader chief deputy director governor mayor king queen prince princess pope adviser advisor
    national security counselor premier commander admiral colonel captain dr mr mrs ms prof
    professor former treasury attorney speaker house senate majority minority official officials
    head chair chairman chairwoman ceo founder top senior assistant acting interim us u.s. uk
    """.split()
)
_OPENING = frozenset(
    """
    the a an in on at by for from with about as after before during since until while
    according however meanwhile although though despite following but and or so yet this that
    these those it its their there he she his her they we i what which who when where why how
    if also then still moreover furthermore additionally indeed instead today yesterday
    both either neither each every all some many most several other another such
    monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december
    """.split()
)
NEAR_CHARS = 40  # "which X": how far from X the name may stand
_PLACE_NOUNS = frozenset("country city capital place nation town venue region state".split())
_ASKS = [
    (
        "when",
        re.compile(
            r"^\s*(?:when\b|since\s+when\b|"
            r"(?:in |since |on |by |during )?(?:what|which)\s+(?:year|month|date|day)\b(?! of\b))",
            re.I,
        ),
    ),
    (
        "number",
        re.compile(
            r"^\s*(?:how\s+(?:many|much|long|old)\b|what\s+(?:number|percentage|share)\b)", re.I
        ),
    ),
    ("where", re.compile(r"^\s*where\b", re.I)),
    ("who", re.compile(r"^\s*(?:who|whom)\b(?!\s+(?:else)\b)", re.I)),
    (
        "which",
        re.compile(r"^\s*(?:(?:in|to|from|with|at|of|on|by)\s+)?which\s+([a-z]{3,})\b", re.I),
    ),
    ("place", re.compile(r"^\s*(?:(?:in|to|from|with|at|of|on|by)\s+)?what\s+([a-z]{3,})\b", re.I)),
]
_HEADING_NOUNS = frozenset(
    "section sections heading headings subheading subheadings headline headlines subtitle".split()
)
_MAX_HEADING_WORDS = 16


def _reads_as_heading(text: str) -> bool:
    """One short line that does not end as a sentence does: how a heading reads."""
    t = text.strip()
    return bool(t) and "\n" not in t and len(t.split()) <= _MAX_HEADING_WORDS and t[-1] not in ".!?"


_COUNTS = frozenset("two three four five six seven eight nine ten".split())
_NOT_NOUNS = frozenset(
    "is are was were do does did has have had can could will would should may might must "
    "about kind sort type".split()
)


@dataclass(frozen=True)
class ShortAnswer:
    """The exact span that answers a factoid question: raw[start:end] == text."""

    text: str
    doc_id: str
    start: int
    end: int

    def to_dict(self) -> dict[str, object]:
        """The JSON contract's short_answer object."""
        return {"text": self.text, "doc_id": self.doc_id, "start": self.start, "end": self.end}


def factoid_kind(question: str) -> tuple[str, str] | None:
    """("when" | "number" | "where" | "who" | "which", the noun X of "which X") or None."""
    q = question.strip()
    # A follow-up like "And when was that?" asks the same as "When was that?".
    q = re.sub(r"^\s*(?:and|but|so)\s+", "", q, flags=re.IGNORECASE)
    lead = _LEAD_IN.match(q)
    if lead:  # "When reading the article, I wondered who ...": the question is what follows
        return factoid_kind(q[lead.end() :])
    if re.match(r"^\s*which\b", q, re.I) and re.search(r"\bor\b", q, re.I):
        return None  # "Which came first, A or B?": the answer is one of its own words
    for kind, pattern in _ASKS:
        m = pattern.match(q)
        if not m:
            continue
        if kind not in ("which", "place"):
            return kind, ""
        noun = _head_noun(m.group(1), q[m.end() :])
        if noun.rstrip("s") in _PLACE_NOUNS or noun[:-3] + "y" in _PLACE_NOUNS:
            return "where", noun  # "which country", "what city"
        if kind == "place" or noun in _NOT_NOUNS or noun in _OPENING:
            return None  # "what X" is rarely answered by a name
        return "which", noun
    return None


# "When going through the article, ...": a clause about the reader, not a question for a date.
# (The -ing word in lower case, and a comma to end the clause: "When Beijing hosted ..." and
# "when reading" without one stay questions.)
_LEAD_IN = re.compile(r"^\s*(?i:when|while|after)\s+[a-z]+ing\b[^,?]*,\s*")


def is_plural(noun: str) -> bool:
    """Whether the X of "which X" is plural ("countries", not "press"): a list is asked for."""
    return noun.endswith("s") and not noun.endswith("ss")


def _head_noun(word: str, rest: str) -> str:
    """The noun X of "which X": past a count and adjectives ("which two western organisations",
    "which Middle Eastern conflict" -> organisations, conflict), lowercased."""
    words = [word, *re.findall(r"[A-Za-z][\w'’-]*", rest)[:3]]
    i = 0
    while i + 1 < len(words) and (
        words[i].lower() in _COUNTS
        or words[i].lower() in _ADJECTIVES
        or _ADJECTIVE_END.search(words[i].lower())
        or (words[i][0].isupper() and words[i + 1].lower() not in _NOT_NOUNS)
    ):
        i += 1
    return words[i].lower()


_ADJECTIVES = frozenset("international national foreign global regional local major main".split())
# Word endings of nationalities. Alone, only the sure ones ("Russian", "Chinese", "British"); the
# loose set also catches "American", "French", "Israeli", but also first names ("Dan"), so it
# is only read where the next word is a title or the word qualifies one. A qualifier before the
# noun of "which X" may also be a region ("European", "Eastern").
_NATIONALITY = re.compile(r"(?:ian|ese|ish)$")
_MAYBE_NATIONALITY = re.compile(r"(?:an|ese|ish|ch|i)$")
_ADJECTIVE_END = re.compile(r"(?:ean|ian|ern|ese|ish)$")


def _question_words(question: str) -> set[str]:
    """The question's words, lowercased, each also without a possessive ("russias", "russia's"
    -> russia), so a name the question already holds is never its answer."""
    out = set()
    for w in re.findall(r"[\w'’.-]+", question):
        w = w.lower().strip(".'’")
        out.add(w)
        out.add(re.sub(r"['’]s$", "", w))
        if len(w) >= 5 and re.search(r"[^su]s['’]?$", w):  # "russias"; not "news", "status"
            out.add(re.sub(r"s['’]?$", "", w))
    return out


def _tokens(raw: str, a: int, b: int) -> list[tuple[int, int, str]]:
    """The whitespace-separated words of raw[a:b], with their offsets in raw."""
    return [(m.start() + a, m.end() + a, m.group(0)) for m in re.finditer(r"\S+", raw[a:b])]


def _clean_name(raw: str, a: int, b: int, question_words: set[str]) -> Span | None:
    """The name inside raw[a:b] without leading titles and openers; None when nothing is left
    or the question already holds it."""
    toks = _tokens(raw, a, b)
    while toks:
        w = toks[0][2].lower()
        # "Russian Foreign Minister", "Ukrainian-American Senator"; not "Dan Hoffman" (a first
        # name may end like a nationality, so the next word must be a title).
        nationality = _MAYBE_NATIONALITY.search(w) and (
            len(toks) > 1 and toks[1][2].lower() in _TITLES
        )
        if w in _OPENING or _is_title(w) or w in ("of", "and", "the") or nationality:
            toks = toks[1:]
        else:
            break
    # "the Rubio-Lavrov talks" asked "Who did Rubio meet?": the parts the question names go.
    if toks and "-" in toks[0][2]:
        s0, e0, w0 = toks[0]
        parts = w0.split("-")
        k = 0
        while k < len(parts) - 1 and parts[k].lower() in question_words:
            k += 1
        cut = sum(len(x) + 1 for x in parts[:k])
        toks[0] = (s0 + cut, e0, w0[cut:])
    # "Trade Secretary Ben Okonkwo": whatever precedes the last title word is the title too.
    last_title = max((i for i, t in enumerate(toks[:-1]) if _is_title(t[2].lower())), default=-1)
    toks = toks[last_title + 1 :]
    while toks and toks[-1][2].lower() in ("of", "and", "the", "de", "al", "bin", "von", "van"):
        toks = toks[:-1]
    if not toks:
        return None
    s, e = toks[0][0], toks[-1][1]
    text = raw[s:e]
    if text.endswith(("'s", "’s")):
        e -= 2
        text = raw[s:e]
    if not text or any(t.lower().strip(".") in question_words for t in text.split()):
        return None
    if text.lower() in _OPENING or text.lower() in _TITLES:
        return None
    return s, e


def _is_title(word: str) -> bool:
    """A title word, or one joined of titles ("secretary-general")."""
    return word in _TITLES or ("-" in word and all(p in _TITLES for p in word.split("-")))


def _names(raw: str, a: int, b: int, question_words: set[str]) -> list[Span]:
    out = []
    for m in _NAME.finditer(raw, a, b):
        span = _clean_name(raw, m.start(), m.end(), question_words)
        if span is not None:
            out.append(span)
    return out


def _anchors(raw: str, a: int, b: int, question: str) -> list[int]:
    """Where the question's own content words stand in raw[a:b] (their start offsets)."""
    out = []
    for w in key_words(question):
        stem = re.escape(w[: max(4, len(w) - 2)])
        out += [m.start() for m in re.finditer(rf"\b{stem}", raw[a:b], re.IGNORECASE)]
    return [a + i for i in out]


def _gap(span: Span, x: int) -> int:
    return min(abs(span[0] - x), abs(span[1] - x))


def _nearest(spans: Sequence[Span], anchors: Sequence[int]) -> Span | None:
    if not spans:
        return None
    if not anchors:
        return spans[0]

    def distance(s: Span) -> int:
        return min(_gap(s, x) for x in anchors)

    return min(spans, key=lambda s: (distance(s), s[0]))


_PERSON = re.compile(r"[A-Z][a-z'’\-]+(?:\s+(?:[A-Z]\.\s+)?[A-Z][a-z'’\-]+){1,3}")
_BYLINE_NAME = re.compile(r"\b[Bb]y[ \t]+([A-Z][\w.'’-]*(?:[ \t]+[A-Z][\w.'’-]*){0,3})")


def _cell_under(raw: str, a: int, b: int, header: tuple[str, ...], noun: str) -> Span | None:
    """In the table row raw[a:b], the cell whose column header is the noun the question asks
    for ("Which country ..." -> the cell under "Country"), or None."""
    wanted = content_terms(noun)
    if not wanted:
        return None
    cells = [(m.start() + a, m.end() + a) for m in re.finditer(r"[^|]+", raw[a:b])]
    cells = [(s, e) for s, e in cells if raw[s:e].strip()]
    for (s, e), name in zip(cells, header, strict=False):
        if wanted & content_terms(name):
            s += len(raw[s:e]) - len(raw[s:e].lstrip())
            e -= len(raw[s:e]) - len(raw[s:e].rstrip())
            return (s, e) if e > s else None
    return None


def _true_name(raw: str, span: Span, sentence_starts: set[int]) -> bool:
    """Whether raw[span] reads as a name by itself: an acronym, several capitalised words, or
    one that neither opens its sentence or line nor is a nationality ("Russian")."""
    text = raw[span[0] : span[1]]
    if " " in text or re.fullmatch(r"[A-Z]{2,6}s?|(?:[A-Z]\.){2,4}", text):
        return True
    before = raw[max(0, span[0] - 3) : span[0]]
    opens = span[0] in sentence_starts or not before.strip() or before.rstrip()[-1:] in ".:|)\n"
    return not opens and not _NATIONALITY.search(text)


def _lists(raw: str, spans: Sequence[Span]) -> list[Span]:
    """Runs of two or more names joined by commas, "and" or "or" ("Britain and France"), each
    as one span from its first name to its last."""
    out: list[Span] = []
    run: list[Span] = []
    for span in [*spans, None]:
        if span is not None and run and _JOIN.fullmatch(raw[run[-1][1] : span[0]]):
            run.append(span)
            continue
        if len(run) >= 2:
            out.append((run[0][0], run[-1][1]))
        run = [span] if span is not None else []
    return out


_JOIN = re.compile(r"\s*(?:,|,?\s+(?:and|or))\s+(?:the\s+)?")


# "Who is Sergey Lavrov?": the question names the person and asks what they are.
_WHO_IS = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?who(?:'s|’s|\s+is|\s+was)\s+([\w'’.-]+(?:\s+[\w'’.-]+){0,3})"
    r"\s*\??\s*$",
    re.IGNORECASE,
)
# A description set off after the name: ", as Russia's Foreign Minister," / " (the envoy)".
_APPOSITION = re.compile(r"\s*[,(]\s*(?:as\s+|who\s+is\s+|now\s+)?([^,.;:()\n]{3,60}?)\s*[,.;)]")


def asks_who_someone_is(question: str) -> str | None:
    """The X of "Who is X?" when X may be a name (no article, no title, no question word:
    "who is the envoy" and "who is president" ask for a name, not a role), or None. Typed in
    lowercase ("who is lavrov", "who was killed") it is a name only if a text names it."""
    m = _WHO_IS.match(question)
    if not m:
        return None
    for w in m.group(1).split():
        low = w.lower().strip(".'’")
        if low in _OPENING or _is_title(low) or low in _NOT_NOUNS or low in ("of", "and"):
            return None
    return m.group(1).strip(".?")


def named_in(raw: str, a: int, b: int, name: str) -> list[Span]:
    """Where raw[a:b] names `name` with a capital ("lavrov" typed, "Lavrov" in the text)."""
    words = [re.escape(w) for w in name.split()]
    pattern = re.compile(r"\b" + r"\s+".join(words) + r"\b", re.IGNORECASE)
    return [m.span() for m in pattern.finditer(raw, a, b) if raw[m.start()].isupper()]


def _role(raw: str, mentions: Sequence[tuple[int, int, int, int]]) -> Span | None:
    """What the sentences say a person is, from the mentions (sentence start, sentence end,
    name start, name end) of their name: the description set off after the name (preferred),
    or the title words before it ("Russian Foreign Minister Sergey Lavrov"); it must hold a
    title word, so that any other clause after a name is never taken for a role."""
    before: Span | None = None
    for a, b, start, end in mentions:
        after = _APPOSITION.match(raw, end, b)
        if after and _holds_title(after.group(1)):
            s, e = after.span(1)
            lead = _ARTICLE.match(raw, s, e)
            return (lead.end() if lead else s, e)
        if before is None:
            # Only the name's own sentence: a title in the one before belongs to someone else.
            own = next((s for s, e in sentence_spans(raw, a, b) if s <= start < e), start)
            before = _title_before(raw, own, start)
    return before


_ARTICLE = re.compile(r"(?:the|a|an)\s+", re.IGNORECASE)


def _title_word(word: str) -> bool:
    return _is_title(word.lower().strip(".,;:'’"))


def _holds_title(text: str) -> bool:
    return any(_title_word(w) for w in text.split())


def _title_before(raw: str, a: int, name_start: int) -> Span | None:
    """The run of capitalised and title words right before a name, past its first names
    ("Secretary of State Marco Rubio", asked "who is Rubio" -> "Secretary of State")."""
    toks = _tokens(raw, a, name_start)
    # First names of the person come off first: capitalised words that are not titles.
    while toks and toks[-1][2][:1].isupper() and not _title_word(toks[-1][2]):
        toks.pop()
    run: list[tuple[int, int, str]] = []
    while toks:
        w = toks[-1][2]
        low = w.lower().strip(".,;:'’")
        if _title_word(w) or low == "of" or (w[:1].isupper() and low not in _OPENING):
            run.insert(0, toks.pop())
        else:
            break
    while run and run[0][2].lower() == "of":
        run = run[1:]
    if not run or not _holds_title(" ".join(t[2] for t in run)):
        return None
    end = run[-1][1]
    while raw[end - 1] in ",;:":  # "Russia's Foreign Minister, Sergey Lavrov"
        end -= 1
    return run[0][0], end


# --- answers that are not names -----------------------------------------------------------------

# Words that end a noun phrase: function words, question words and the common verbs.
_PHRASE_END = (
    STOP
    | _OPENING
    | frozenset("must remains remained became becomes".split())  # (the rest are in STOP)
)
_WORD_AT = re.compile(r"[\w'’.-]*[\w'’]")


def _phrase_of(raw: str, a: int, b: int, x: int, question_words: set[str]) -> Span | None:
    """The noun phrase inside raw[a:b] whose head is the word at offset x ("which election"
    -> "2016 election"; "which investigation" -> "investigation of the ... collusion with
    Russia"): up to three modifiers before it and an "of" phrase after it, to the clause's end.
    None when it holds no word the question does not (the question's own phrase)."""
    toks = [(m.start(), m.end()) for m in _WORD_AT.finditer(raw, a, b)]
    at = next((i for i, (s, e) in enumerate(toks) if s <= x < e), None)
    if at is None:
        return None

    def word(i: int) -> str:
        return raw[toks[i][0] : toks[i][1]].lower()

    def joined(i: int, j: int) -> bool:  # nothing but spaces between tokens i and j
        return not raw[toks[i][1] : toks[j][0]].strip()

    first = at
    while first > 0 and at - first < 3 and joined(first - 1, first):
        w = word(first - 1)
        if w in _PHRASE_END or w in _TITLES:
            break
        first -= 1
    last = at
    if at + 1 < len(toks) and word(at + 1) == "of" and joined(at, at + 1):
        j = at + 1
        while j + 1 < len(toks) and j - at < 10 and joined(j, j + 1):
            w = word(j + 1)
            if w in _PHRASE_END and w not in MINOR and w not in ("with", "in", "on", "to"):
                break
            j += 1
        if word(j) not in MINOR and word(j) not in ("with", "in", "on", "to"):
            last = j
    if first == last:
        return None  # X alone ("the election") says nothing the question did not
    span = toks[first][0], toks[last][1]
    if all(w.lower() in question_words for w in _WORD_AT.findall(raw[span[0] : span[1]])):
        return None
    return span


# Where a list is introduced: "indicators, such as A, B and C", "areas include A, B and C".
# (Not "like": "would like to send troops and tanks" is no list.)
_INTRODUCED = re.compile(
    r"\b(?:such\s+as|including|namely|(?<!not\s)(?<!n't\s)include[sd]?)\s+([^.;:()\n]+)",
    re.IGNORECASE,
)


def _introduced_lists(raw: str, a: int, b: int) -> list[Span]:
    """Lists of items joined by "and" or "or" that "such as", "including" or "namely"
    introduce."""
    out = []
    for m in _INTRODUCED.finditer(raw, a, b):
        s, e = m.span(1)
        last = re.search(r"\s(?:and|or)\s", raw[s:e])
        if last is None:
            continue
        # The list ends with the item after its "and"/"or" (", allies can ..." is not in it).
        comma = raw.find(",", s + last.end(), e)
        e = comma if comma >= 0 else e
        e = s + len(raw[s:e].rstrip(" ,"))
        out.append((s, e))
    return out


# What a source is called; its name stands after "according to" or before "reported".
_SOURCE_NOUNS = frozenset(
    "news outlet outlets source sources newspaper newspapers broadcaster broadcasters agency "
    "agencies media publication publications network networks channel paper papers".split()
)
_SOURCE_CUE = re.compile(
    rf"\b[Aa]ccording[ \t]+to[ \t]+(?:the[ \t]+)?({_CAP}(?:[ \t]+{_CAP})*)"
    rf"|\breported[ \t]+by[ \t]+(?:the[ \t]+)?({_CAP}(?:[ \t]+{_CAP})*)"
    # (Not "said": whoever is quoted is not the outlet that reported it.)
    rf"|\b({_CAP}(?:[ \t]+{_CAP})*)[ \t]+(?:reported|reports)\b"
)


def _sources(raw: str, a: int, b: int, question_words: set[str]) -> list[Span]:
    """Names given as the source of a report in raw[a:b]."""
    out = []
    for m in _SOURCE_CUE.finditer(raw, a, b):
        g = m.lastindex  # the one cue that matched
        span = _clean_name(raw, m.start(g), m.end(g), question_words)
        if span is not None:
            out.append(span)
    return out


# "Who is Russia's president?", "who is the german chancellor": a role held in a place.
_ROLE_ASKED = re.compile(
    r"^\s*(?:(?:and|but|so)\s+)?who(?:'s|’s|\s+is|\s+was|\s+are|\s+were)\s+(?:the\s+)?"
    r"(?:([a-z][\w.]*?)(?:'s|’s|s'|s)?\s+)?([a-z]+)\s*\??\s*$",
    re.IGNORECASE,
)


def _place_word(word: str, typed: str) -> str:
    """The place a role question qualifies its title with ("russias", "Russia's", "german"),
    lowercased; "" when the word is no place ("the special envoy", "the current president")."""
    low = word.lower().strip(".")
    if not low or _is_title(low) or low in _ADJECTIVES or low in _PHRASE_END:
        return ""
    possessive = typed[len(word) : len(word) + 1] in ("'", "’", "s")  # "Russia's", "russias"
    nationality = _MAYBE_NATIONALITY.search(low) is not None
    return low if possessive or nationality or word[:1].isupper() else ""


def _role_holders(raw: str, a: int, b: int, question: str) -> list[Span] | None:
    """For "who is X's <title>": the name right after that title in raw[a:b] where the word
    before the title stands for X ("Russian President vladimir putin"; the casing of names in
    a text may be broken, so lowercase words count). None when the question is not of that
    form; an empty list when no such name stands in the sentences."""
    m = _ROLE_ASKED.match(question)
    if not m or not _is_title(m.group(2).lower()):
        return None
    place, title = _place_word(m.group(1) or "", m.group(0)[m.start(1) : m.end(1) + 2]), m.group(2)
    out = []
    for t in re.finditer(rf"\b{re.escape(title)}\b", raw[a:b], re.IGNORECASE):
        s = a + t.start()
        before = raw[max(a, s - 30) : s].split()
        stem = place[: max(4, len(place) - 1)]
        if place and not (before and before[-1].lower().startswith(stem)):
            continue
        names: list[Span] = []
        for w in _WORD_AT.finditer(raw, a + t.end(), b):
            low = w.group(0).lower()
            gap = raw[names[-1][1] if names else a + t.end() : w.start()]
            if gap.strip() or low in _PHRASE_END or _is_title(low):
                break
            # A name keeps its case: capitalised words, or (broken casing) two lowercase ones.
            cased = raw[names[0][0]].isupper() if names else w.group(0)[0].isupper()
            if names and (w.group(0)[0].isupper() != cased or (not cased and len(names) == 2)):
                break
            if len(names) == 3:
                break
            names.append(w.span())
        lowercase = bool(names) and not raw[names[0][0]].isupper()
        if names and (not lowercase or len(names) == 2):  # "president visited" is no name
            out.append((names[0][0], names[-1][1]))
    # No place asked and no name after the title: the sentence may name the holder otherwise.
    return out if out or place else None


def find_short(
    question: str,
    raw: str,
    spans: Sequence[Span],
    headers: Mapping[int, tuple[str, ...]] | None = None,
) -> Span | None:
    """The exact span of `raw` inside `spans` (the highlighted sentences) that answers the
    factoid `question`, or None. `headers`: the column headers of table rows, by row start."""
    form = factoid_kind(question)
    if form is None or not spans:
        return None
    kind, noun = form
    someone = asks_who_someone_is(question) if kind == "who" else None
    if someone is not None:
        mentions = [(a, b, *at) for a, b in spans for at in named_in(raw, a, b, someone)]
        if mentions:
            return _role(raw, mentions)  # no role said: no short answer, not another name
    if noun and headers:
        # Table rows: the cell under the column X names, in the row that holds most of the
        # question's own words ("... in the refugee support table": the Refugee Support row).
        cells = []
        for a, b in spans:
            # A highlight may join neighbouring rows: look at each row inside it.
            for r in sorted(h for h in headers if a <= h < b):
                e = raw.find("\n", r, b)
                e = b if e < 0 else e
                cell = _cell_under(raw, r, e, headers[r], noun)
                if cell is not None:
                    cells.append((-len(_anchors(raw, r, e, question)), r, cell))
        if cells:
            return min(cells)[2]
    if noun in _HEADING_NOUNS:
        # "Which section covers ...?": the answer is a heading line, the whole of it.
        lines = [(a, b) for a, b in spans if _reads_as_heading(raw[a:b])]
        return lines[0] if len(lines) == 1 else None
    # X itself may be part of the name ("Which organization" -> "... Treaty Organization").
    qwords = _question_words(question) - {noun, noun + "s"}
    qlow = question.lower()
    candidates: list[Span] = []
    anchors: list[int] = []
    x_at: list[int] = []
    role_form = False
    # Read in its own words: a follow-up's carried focus may hold "author", asking for none
    # (its names stay question words: the carried names are no answer).
    author = asks_for_author(strip_carried(question))
    month_only = kind == "when" and asks_for_month(strip_carried(question))
    starts = {x for x, _ in spans}  # where the highlighted sentences open
    for a, b in spans:
        anchors += _anchors(raw, a, b, question)
        if kind == "when":
            for m in _DATE.finditer(raw, a, b):
                t = m.group(0)
                if month_only and not re.search(_MONTHS, t):
                    continue  # "Which month?" is not answered by a year
                if t.lower() in qlow or (t.startswith("May") and not re.match(r"May\s+\d", t)):
                    continue  # "may" is a verb unless a day or a year follows
                candidates.append((m.start(), m.end()))
        elif kind == "number":
            years_ok = "old" in qlow or "long" in qlow
            for m in _NUMBER.finditer(raw, a, b):
                t = m.group(0).strip().rstrip(".,")
                if not t or (_YEAR_ONLY.match(t) and not years_ok) or t.lower() in qlow:
                    continue
                candidates.append((m.start(), m.start() + len(t)))
        elif kind == "where":
            for m in _PLACE.finditer(raw, a, b):
                span = _clean_name(raw, m.start(1), m.end(1), qwords)
                if span and not re.fullmatch(_MONTHS, raw[span[0] : span[1]]):
                    candidates.append(span)
            if not candidates and noun:
                # "Which countries ...": a true name; "European" or an opening word is none.
                found = _names(raw, a, b, qwords)
                candidates += [c for c in found if _true_name(raw, c, starts)]
        elif kind == "who":
            held = _role_holders(raw, a, b, question)
            if held is not None:
                # "Who is X's <title>?": the name after that title, or no short answer when
                # X's is not said (another place's holder of the title is no answer).
                role_form = True
                candidates += held
                continue
            found = _names(raw, a, b, qwords)
            # A person's name reads "Dan Hoffman", not "CIA Moscow": prefer those, and full ones.
            people = [s for s in found if _PERSON.fullmatch(raw[s[0] : s[1]])]
            for group in (people, found):
                multi = [s for s in group if " " in raw[s[0] : s[1]]]
                if multi or group:
                    candidates += multi or group
                    break
        else:  # which X: a name near X (no X in the sentence: no certain answer)
            near = [m.start() for m in re.finditer(rf"\b{re.escape(noun[:5])}", raw[a:b], re.I)]
            x_at += [a + i for i in near]
            candidates += _names(raw, a, b, qwords)
    sources = []
    if kind == "which" and noun in _SOURCE_NOUNS:
        # "Which outlet reported ...": the name given as the source ("according to CNN").
        sources = [span for a, b in spans for span in _sources(raw, a, b, qwords)]
    if sources and noun.endswith("s"):
        # "Which outlets ...": the list a source stands in ("by CNN and AP News").
        lists = _lists(raw, sorted(set(candidates) | set(sources)))
        within = [x for x in lists if any(x[0] <= y[0] and y[1] <= x[1] for y in sources)]
        candidates = within or sources
    elif sources:
        candidates = sources
    elif kind in ("which", "where"):
        candidates = _which(raw, spans, candidates, noun, kind, x_at, anchors, qwords)
        if kind == "which" and x_at:
            anchors = x_at
    if kind == "who" and author and not role_form:
        # "Who wrote ...": the name a byline gives ("By Eleanor Vance"), on its own line.
        byline = [
            (m.start(1), m.end(1)) for a, b in spans for m in _BYLINE_NAME.finditer(raw, a, b)
        ]
        candidates = byline or candidates
    best = _nearest(candidates, anchors)
    if best is None:
        return None
    s, e = best
    while e > s and raw[e - 1] in ".,;:":
        e -= 1
    return (s, e) if e > s else None


def _which(
    raw: str,
    spans: Sequence[Span],
    names: list[Span],
    noun: str,
    kind: str,
    x_at: list[int],
    anchors: list[int],
    question_words: set[str],
) -> list[Span]:
    """The candidates of "which X" (and of "which country"-like "where" questions) among the
    `names` found in the highlighted `spans`.

    X in the sentence: the names near it, else the noun phrase X heads ("the 2016 election").
    No X there ("Which broadcaster reported ..." / "... according to CNN"): true names (not a
    capitalised opening word, not a nationality) close to the question's own words. A plural
    X asks for a whole list: of names, or of any items introduced by "such as" or "including".
    """
    candidates = names
    if kind == "which" and x_at:
        candidates = [c for c in names if any(_gap(c, x) <= NEAR_CHARS for x in x_at)]
    elif kind == "which":
        starts = {a for a, _ in spans}
        candidates = [c for c in names if _true_name(raw, c, starts)]
    if is_plural(noun):
        lists = _lists(raw, sorted(candidates))
        if lists:
            return lists  # the sentence the ranking chose holds one list of names: that one
        introduced = [span for a, b in spans for span in _introduced_lists(raw, a, b)]
        if introduced:
            return introduced
    if kind == "which" and not x_at:
        candidates = [c for c in candidates if any(_gap(c, x) <= NEAR_CHARS for x in anchors)]
    if kind == "which" and not candidates:
        phrases = (
            _phrase_of(raw, a, b, x, question_words) for a, b in spans for x in x_at if a <= x < b
        )
        candidates = [p for p in phrases if p is not None][:1]
    return candidates


def short_answer(
    question: str,
    doc_id: str,
    raw: str,
    spans: Sequence[Span],
    headers: Mapping[int, tuple[str, ...]] | None = None,
) -> ShortAnswer | None:
    """The verified short answer of `question` in the highlighted `spans` of `raw`, or None."""
    found = find_short(question, raw, spans, headers)
    if found is None:
        return None
    s, e = found
    if not any(a <= s and e <= b for a, b in spans):
        return None
    return ShortAnswer(raw[s:e], doc_id, s, e)


def first_new_name(text: str, question: str) -> str | None:
    """The first name in `text` the question does not hold (whom a "who" answer names)."""
    found = _names(text, 0, len(text), _question_words(question))
    multi = [s for s in found if " " in text[s[0] : s[1]]]
    pick = (multi or found)[:1]
    return text[pick[0][0] : pick[0][1]] if pick else None
