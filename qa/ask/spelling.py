"""Misspelt question words, corrected against the corpus's own vocabulary.

A reader types "Lavrove" or "sanctons"; neither BM25 nor the content-word features can match a
word the articles never use. A word of five letters or more that the corpus does not contain,
and that is not a function word, is replaced by the corpus word closest to it in spelling
(difflib's ratio at least CUTOFF, the same first letter, a length within two letters: typos
rarely touch the first letter, and the buckets keep a lookup under a millisecond), keeping its
capital; every other word is left as typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher

from qa.ask.query import STOP_WORDS
from qa.text import words

CUTOFF = 0.84
MIN_LETTERS = 5
_TOKEN = re.compile(r"[A-Za-z][a-z]+|[A-Za-z]+")


class Speller:
    """The corpus's words, by length, for correcting a question's misspellings."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.known: set[str] = set()
        for text in texts:
            self.known.update(w.replace("'", "") for w in words(text))
        self._buckets: dict[tuple[str, int], list[str]] = {}
        for w in sorted(self.known):
            if w.isalpha():
                self._buckets.setdefault((w[0], len(w)), []).append(w)
        # Corrections already worked out (questions repeat words); bounded.
        self._memo: dict[str, str | None] = {}

    def closest(self, word: str) -> str | None:
        """The corpus word closest in spelling to `word` (lower case), or None."""
        if word in self._memo:
            return self._memo[word]
        best, best_ratio = None, CUTOFF
        m = SequenceMatcher(autojunk=False)
        m.set_seq2(word)
        for n in range(len(word) - 2, len(word) + 3):
            for candidate in self._buckets.get((word[0], n), ()):
                m.set_seq1(candidate)
                if m.real_quick_ratio() < best_ratio or m.quick_ratio() < best_ratio:
                    continue
                r = m.ratio()
                if r > best_ratio or (r == best_ratio and best is None):
                    best, best_ratio = candidate, r
        if len(self._memo) < 10_000:
            self._memo[word] = best
        return best

    def correct(self, question: str) -> str:
        """`question` with each unknown word of MIN_LETTERS or more replaced by its correction."""

        def fix(m: re.Match[str]) -> str:
            w = m.group(0)
            low = w.lower()
            if len(low) < MIN_LETTERS or low in self.known or low in STOP_WORDS:
                return w
            found = self.closest(low)
            if found is None:
                return w
            return found.capitalize() if w[0].isupper() else found

        return _TOKEN.sub(fix, question)
