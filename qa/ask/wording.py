"""The words of a question or an answer: its names (capitalised runs, acronyms) and its other
content words, as the follow-up resolution and the short answer both read them."""

from __future__ import annotations

import re

WORD = re.compile(r"(?:[A-Z]\.){2,4}|[A-Za-z][\w'’.-]*[\w]|[A-Za-z]|\d[\d,.]*")


QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how whether is are was were do does did can could "
    "will would should has have had may might".split()
)


# Words that carry no topic of their own (besides the question words).
FUNCTION = frozenset(
    """
    a an the of to in on at by for from with about as into over and or but not no nor so yet
    this that these those it its they them their there he she his her him we you i me my our your
    us be been being am any some many much more most other another such very also just only
    than then too again else ever still even really all each every both either neither now
    say said says tell told think thought know knew mean means meant happen happened happens
    go goes went get got make made take took give gave come came see saw
    about after before during since until while because if
    """.split()
)


STOP = FUNCTION | QUESTION_WORDS | {"please", "ok", "okay", "yes", "thanks"}


MINOR = frozenset({"of", "and", "for", "the", "de", "von", "van", "al", "bin"})


# Words inside one name ("Secretary of State"); "and" joins two names, so it is not one.
JOINERS = MINOR - {"and"}


TITLE_CASE = re.compile(r"^[A-Z][a-z'’-]+$|^[A-Z][a-z]*[A-Z][\w'’-]*$")


ACRONYM = re.compile(r"^(?:[A-Z]{2,6}s?|(?:[A-Z]\.){2,4})$")


def tokens(text: str) -> list[str]:
    return [
        m.group(0).rstrip(".") if not ACRONYM.match(m.group(0)) else m.group(0)
        for m in WORD.finditer(text)
    ]


def names(text: str) -> list[str]:
    """Capitalised name sequences and acronyms of `text`, in order, without repeats.

    A capitalised function or question word ("What", "The", "And") is no name; a sequence may
    hold "of"/"and"/"for"/"the" inside ("Secretary of State").
    """
    toks = tokens(text)
    out: list[str] = []
    cur: list[str] = []

    def flush() -> None:
        while cur and cur[-1].lower() in MINOR:
            cur.pop()
        if cur:
            name = " ".join(cur).replace("’", "'")
            name = re.sub(r"'s$", "", name)
            if name and name not in out:
                out.append(name)
        cur.clear()

    for i, t in enumerate(toks):
        is_name = (TITLE_CASE.match(t) or ACRONYM.match(t)) and t.lower() not in STOP
        if is_name and i == 0 and not ACRONYM.match(t):
            # A question's first word is capitalised anyway: a name only when one follows.
            nxt = toks[1] if len(toks) > 1 else ""
            is_name = bool(TITLE_CASE.match(nxt) or ACRONYM.match(nxt))
        if is_name or (cur and t.lower() in JOINERS and t.islower()):
            cur.append(t)
        else:
            flush()
    flush()
    return out


def key_words(text: str) -> list[str]:
    """Lower-case content words of `text` that are not part of a name, in order, no repeats."""
    inside = {w.lower() for n in names(text) for w in n.split()}
    out: list[str] = []
    for t in tokens(text):
        w = t.lower().replace("’", "'")
        w = re.sub(r"'s$", "", w)
        if len(w) < 3 or w in STOP or w in inside or w[0].isdigit() or w in out:
            continue
        out.append(w)
    return out


MARKERS = re.compile(r"\s*\[\d+\]")  # the [n] after each sentence of an answer, one by one


def strip_markers(answer: str) -> str:
    """An answer text without its `[n]` citation markers."""
    return MARKERS.sub("", answer).strip()
