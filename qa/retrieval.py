"""Question -> ranked passages: dense (Chroma) and BM25 candidates, fused, with sentence scores.

`OpenIndex` is one published build loaded for querying. Everything it needs per query is in
memory except the HNSW search, so a query costs one embedding plus a few small matrix products.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa import builds
from qa.chunking import Passage
from qa.lexical import LexicalIndex
from qa.store import StoreError, VectorStore
from qa.text import words

# How many candidates each retriever contributes before fusion.
CANDIDATES = 30
# Fusion weights, chosen with `qa eval` on the shipped question sets (see README).
W_DENSE = 0.45
W_SENTENCE = 0.35
W_LEXICAL = 0.20

_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "about",
        "as",
        "into",
        "over",
        "and",
        "or",
        "but",
        "not",
        "no",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "has",
        "have",
        "had",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "their",
        "there",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "we",
        "you",
        "i",
        "me",
        "my",
        "our",
        "your",
        "can",
        "could",
        "would",
        "should",
        "will",
        "may",
        "might",
        "must",
        "shall",
        "than",
        "then",
        "so",
        "such",
        "any",
        "some",
        "many",
        "much",
        "more",
        "most",
        "other",
        "very",
        "also",
        "just",
        "only",
        "according",
        "article",
        "say",
        "said",
        "says",
        "tell",
        "according",
    ]
)


_MONTHS = "january february march april may june july august september october november december"
_DATE = re.compile(
    r"\b(?:1[89]\d\d|20\d\d)\b|\b(?:" + "|".join(_MONTHS.split()) + r")\b", re.IGNORECASE
)
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
    r"first|second|third|fourth|fifth|dozens?|hundreds?|thousands?|millions?|"
    r"billions?)\b",
    re.IGNORECASE,
)
_ASKS_DATE = re.compile(r"^\s*(?:when\b|(?:in |since )?what (?:year|month|date|day)\b)", re.I)
_ASKS_NUMBER = re.compile(
    r"^\s*(?:how (?:many|much|long|old)\b|what (?:number|percentage)\b)", re.I
)
# Bonus for a sentence that holds the kind of thing the question asks for (a date for "when").
ANSWER_TYPE_BONUS = 0.12


def answer_type(question: str) -> re.Pattern[str] | None:
    """What a sentence must contain to answer the question's form ("when" -> a date), if any."""
    if _ASKS_DATE.search(question):
        return _DATE
    if _ASKS_NUMBER.search(question):
        return _NUMBER
    return None


def content_terms(text: str) -> set[str]:
    """Stemmed content words of `text` (stop words dropped), for overlap scores."""
    return set(_stem([w for w in words(text) if w not in _STOP and len(w) > 1]))


def _stem(ws: list[str]) -> list[str]:
    import Stemmer

    global _STEMMER
    if _STEMMER is None:
        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER.stemWords([w.replace("'s", "").replace("'", "") for w in ws])


_STEMMER: Any = None


@dataclass(frozen=True)
class Candidate:
    """A passage scored for one question."""

    row: int
    passage: Passage
    score: float
    dense: float
    lexical: float
    # (sentence index within passage, score, term overlap, is a question), best first.
    sentences: tuple[tuple[int, float, float, bool], ...]

    @property
    def best_sentence(self) -> float:
        """Similarity of the passage's best answering sentence."""
        return self.sentences[0][1] if self.sentences else 0.0


class OpenIndex:
    """A published build, loaded and ready for queries."""

    def __init__(self, index_dir: Path, build_id: str, chroma_url: str = "") -> None:
        files = builds.build_files(index_dir, build_id)
        self.build_id = build_id
        self.manifest = builds.read_manifest(files)
        try:
            self.passages = builds.read_passages(files)
            self.vectors = builds.read_vectors(files.vectors)
            self.sentence_vectors = builds.read_vectors(files.sentence_vectors)
            docs = json.loads(files.documents.read_text(encoding="utf-8"))
            self.lexical = LexicalIndex.load(files.bm25, len(self.passages))
        except (OSError, ValueError, KeyError) as exc:
            raise builds.IndexUnavailable(
                f"build {build_id} is damaged ({exc.__class__.__name__}: {exc}); "
                "run `qa index` to rebuild"
            ) from exc
        self.documents: dict[str, dict[str, Any]] = {d["id"]: d for d in docs}
        n = len(self.passages)
        if self.vectors.shape[0] != n or n != self.manifest.get("passages"):
            raise builds.IndexUnavailable(
                f"build {build_id} is damaged (vectors do not match passages); run `qa index`"
            )
        if self.vectors.shape[1] != self.manifest.get("dimension"):
            raise builds.IndexUnavailable(
                f"build {build_id} has {self.vectors.shape[1]}-d vectors but its manifest says "
                f"{self.manifest.get('dimension')}; run `qa index`"
            )
        store_url = chroma_url if self.manifest.get("store") != "embedded" else ""
        try:
            self.store = VectorStore.open(None if store_url else files.chroma, build_id, store_url)
            stored = self.store.count()
        except StoreError as exc:
            raise builds.IndexUnavailable(f"{exc}; run `qa index` to rebuild") from exc
        if stored != n:
            raise builds.IndexUnavailable(
                f"build {build_id}'s vector store holds {stored} of {n} vectors; run `qa index`"
            )
        self._table_headers = {
            (doc_id, int(a)): tuple(h)
            for doc_id, d in self.documents.items()
            for a, _b, h in d.get("table_rows", [])
        }
        # Row of each passage's first sentence in sentence_vectors.
        self.sentence_offsets = np.cumsum([0] + [len(p.sentences) for p in self.passages])
        self.sentence_terms = [
            [content_terms(self.documents[p.doc_id]["text"][a:b]) for a, b in p.sentences]
            for p in self.passages
        ]

    @property
    def model(self) -> str:
        """Name of the embedding model the build was made with."""
        return str(self.manifest.get("model"))

    def table_header_at(self, doc_id: str, start: int) -> tuple[str, ...]:
        """Header cells of the table row starting at `start`, or () when it is not a row."""
        return self._table_headers.get((doc_id, start), ())

    def retrieve(self, question: str, qvec: np.ndarray, limit: int) -> list[Candidate]:
        """The best `limit` passages for the question, best first."""
        n = len(self.passages)
        if n == 0:
            return []
        hits = self.store.query(qvec, min(CANDIDATES, n))
        bm25 = self.lexical.scores(question)
        top_lex = np.argsort(-bm25)[: min(CANDIDATES, n)]
        rows = sorted({h.row for h in hits if 0 <= h.row < n} | {int(r) for r in top_lex})
        max_bm25 = float(bm25.max()) if bm25.size else 0.0
        q_terms = content_terms(question)
        wanted = answer_type(question)
        out = []
        for row in rows:
            dense = float(self.vectors[row] @ qvec)
            lexical = float(bm25[row]) / max_bm25 if max_bm25 > 0 else 0.0
            sents = self._score_sentences(row, qvec, q_terms, wanted)
            best = sents[0][1] if sents else dense
            score = W_DENSE * dense + W_SENTENCE * best + W_LEXICAL * lexical
            out.append(Candidate(row, self.passages[row], score, dense, lexical, sents))
        out.sort(key=lambda c: -c.score)
        return out[:limit]

    def _score_sentences(
        self, row: int, qvec: np.ndarray, q_terms: set[str], wanted: re.Pattern[str] | None
    ) -> tuple[tuple[int, float, float, bool], ...]:
        a, b = self.sentence_offsets[row], self.sentence_offsets[row + 1]
        if a == b:
            return ()
        sims = self.sentence_vectors[a:b] @ qvec
        p = self.passages[row]
        text = self.documents[p.doc_id]["text"]
        scored = []
        for i, sim in enumerate(sims):
            s, e = p.sentences[i]
            overlap = len(q_terms & self.sentence_terms[row][i]) / len(q_terms) if q_terms else 0.0
            # A question is never the answer to itself: FAQ questions rank after every
            # statement, so the highlight lands on the answer.
            is_question = text[s:e].rstrip().endswith("?")
            score = float(sim) + 0.15 * overlap
            if wanted is not None and wanted.search(text, s, e):
                score += ANSWER_TYPE_BONUS
            scored.append((i, score, overlap, is_question))
        scored.sort(key=lambda t: (t[3], -t[1]))
        return tuple(scored)
