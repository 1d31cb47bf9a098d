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
W_DENSE = 0.35
W_SENTENCE = 0.5
W_LEXICAL = 0.10
W_DOC = 0.0
# Lift of passages from an article the question names by its author.
W_NAMED_DOC = 0.1
FUSION = "linear"
RRF_K = 60
# Lift of a passage that holds what the question's form asks for (a date for "when").
W_TYPE = 0.05
# Lift of the byline passage for questions about authorship.
META_BONUS = 0.3

_STOP = frozenset(
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
# Quantities other than years: "how many" is rarely answered by "2014".
_NUMBER = re.compile(
    r"\b(?!(?:1[89]|20)\d\d\b)\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|"
    r"ten|dozens?|hundreds?|thousands?|millions?|billions?|trillions?|half|percent)\b",
    re.IGNORECASE,
)
# "in Malaysia", "at Helsinki": a capitalised place after a preposition (case-sensitive).
_PLACE = re.compile(r"\b(?:in|at|to|from|near)\s+(?:the\s+)?[A-Z][a-z]{2,}")
_ASKS_DATE = re.compile(
    r"^\s*(?:when\b|(?:in |since |on )?what (?:year|month|date|day)\b)", re.IGNORECASE
)
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
# Bonus for a sentence that holds the kind of thing the question asks for (a date for "when").
ANSWER_TYPE_BONUS = 0.12


def answer_type(question: str) -> re.Pattern[str] | None:
    """What a sentence must contain to answer the question's form ("when" -> a date), if any."""
    if _ASKS_DATE.search(question):
        return _DATE
    if _ASKS_NUMBER.search(question):
        return _NUMBER
    if _ASKS_PLACE.search(question):
        return _PLACE
    return None


def has_new_answer(
    pattern: re.Pattern[str], text: str, start: int, end: int, q_words: set[str]
) -> bool:
    """True when `text[start:end]` holds a match of `pattern` that the question does not already
    say: "in Malaysia" cannot answer "which Malaysian city", it only repeats the question."""
    for m in pattern.finditer(text, start, end):
        tokens = [w[:6] for w in words(m.group(0)) if w not in _STOP]
        if any(t not in q_words for t in tokens) or not tokens:
            return True
    return False


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
    return re.sub(r"\b(?:[A-Za-z]\.){2,}", lambda m: m.group(0).replace(".", ""), text)


def content_terms(text: str) -> set[str]:
    """Stemmed content words of `text` (stop words dropped), for overlap scores."""
    return set(_stem([w for w in words(join_initials(text)) if w not in _STOP and len(w) > 1]))


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
    # (sentence index within passage, score, term overlap, never-highlight), best first.
    sentences: tuple[tuple[int, float, float, bool], ...]
    # Share of the question's content words (weighted by rarity) found in the passage.
    coverage: float = 0.0
    # None when the question's form expects nothing; else whether the passage has it.
    type_match: bool | None = None

    @property
    def best_sentence(self) -> float:
        """Similarity of the passage's best answering sentence."""
        return self.sentences[0][1] if self.sentences else 0.0


def _rank_fusion(cands: list[Candidate]) -> list[Candidate]:
    """Reciprocal-rank fusion of the dense, sentence and lexical rankings (experimental)."""
    from dataclasses import replace

    score = {c.row: 0.0 for c in cands}
    for key, w in (
        (lambda c: c.dense, W_DENSE),
        (lambda c: c.best_sentence, W_SENTENCE),
        (lambda c: c.lexical, W_LEXICAL),
    ):
        for rank, c in enumerate(sorted(cands, key=lambda c: -key(c)), start=1):
            score[c.row] += w / (RRF_K + rank)
    return [replace(c, score=score[c.row] * (RRF_K + 1)) for c in cands]


_PHRASE = re.compile(r"\b[A-Z][a-z]+(?:\s+(?:(?:of|and|for|the)\s+)?[A-Z][a-z]+){1,5}\b")
_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
_MINOR = frozenset({"of", "and", "for", "the"})


def corpus_acronyms(texts: list[str]) -> dict[str, str]:
    """Acronyms the corpus spells out but never uses: "European Union" -> EU."""
    out: dict[str, str] = {}
    for text in texts:
        for m in _PHRASE.finditer(text):
            phrase = m.group(0)
            initials = "".join(w[0] for w in phrase.split() if w not in _MINOR)
            out.setdefault(initials, phrase)
    # An acronym the articles themselves use needs no expansion (and "US" is not "Unified
    # Stance"): keep only the ones a reader would type but the corpus never does.
    used = {m.group(0) for text in texts for m in _ACRONYM.finditer(text)}
    return {k: v for k, v in out.items() if k not in used}


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
        self.sentence_terms: list[list[set[str]]] = []
        # Sentences that must never be the highlight: questions and table header rows.
        self.sentence_muted: list[list[bool]] = []
        for p in self.passages:
            raw = self.documents[p.doc_id]["text"]
            spans = [raw[a:b] for a, b in p.sentences]
            self.sentence_terms.append([content_terms(t) for t in spans])
            self.sentence_muted.append(
                [
                    # A lead-in ("... include:") introduces the answer but is not it.
                    t.rstrip().endswith(("?", ":"))
                    or ("|" in t and (p.doc_id, a) not in self._table_headers)
                    for t, (a, _b) in zip(spans, p.sentences, strict=True)
                ]
            )
        self.passage_terms = [set().union(set(), *ts) for ts in self.sentence_terms]
        df: dict[str, int] = {}
        for terms in self.passage_terms:
            for t in terms:
                df[t] = df.get(t, 0) + 1
        n = max(1, len(self.passages))
        self._idf = {t: float(np.log((n + 1) / (c + 0.5))) for t, c in df.items()}
        self._idf_unknown = float(np.log((n + 1) / 0.5))
        self.is_meta = np.array([p.kind == "meta" for p in self.passages], dtype=bool)
        self.acronyms = corpus_acronyms([d["text"] for d in self.documents.values()])
        # Surnames from bylines: "according to the Vance article" points at one document.
        self._byline_docs: dict[str, set[str]] = {}
        for doc_id, d in self.documents.items():
            if d.get("byline"):
                self._byline_docs.setdefault(d["byline"].split()[-1], set()).add(doc_id)
        # One vector per document (the mean of its passages): "according to the article on
        # Putin-Trump talks" should favour that article's passages.
        doc_ids = sorted({p.doc_id for p in self.passages})
        self._doc_row = {d: i for i, d in enumerate(doc_ids)}
        self.passage_doc = np.array([self._doc_row[p.doc_id] for p in self.passages], dtype=int)
        doc_vecs = np.zeros((len(doc_ids), self.vectors.shape[1]), dtype=np.float32)
        np.add.at(doc_vecs, self.passage_doc, self.vectors)
        norms = np.linalg.norm(doc_vecs, axis=1, keepdims=True)
        self.doc_vectors = doc_vecs / np.where(norms == 0, 1, norms)

    @property
    def model(self) -> str:
        """Name of the embedding model the build was made with."""
        return str(self.manifest.get("model"))

    def table_header_at(self, doc_id: str, start: int) -> tuple[str, ...]:
        """Header cells of the table row starting at `start`, or () when it is not a row."""
        return self._table_headers.get((doc_id, start), ())

    def expand_query(self, question: str) -> str:
        """The question with acronyms the corpus spells out expanded: "EU" -> "EU (European
        Union)", so both the embedding and BM25 see the words the articles use."""
        extra = []
        for m in _ACRONYM.finditer(question):
            phrase = self.acronyms.get(m.group(0))
            if phrase and phrase.lower() not in question.lower():
                extra.append(phrase)
        return f"{question} ({'; '.join(extra)})" if extra else question

    def named_documents(self, question: str) -> set[str]:
        """Documents whose author the question names ("according to Eleanor Vance")."""
        found: set[str] = set()
        for surname, docs in self._byline_docs.items():
            if re.search(rf"\b{re.escape(surname)}\b", question):
                found |= docs
        return found

    def idf(self, term: str) -> float:
        """Rarity of a stemmed term in this build (words the corpus never uses are rarest)."""
        return self._idf.get(term, self._idf_unknown)

    def retrieve(self, question: str, qvec: np.ndarray, limit: int) -> list[Candidate]:
        """The best `limit` passages for the question, best first."""
        n = len(self.passages)
        if n == 0:
            return []
        hits = self.store.query(qvec, min(CANDIDATES, n))
        bm25 = self.lexical.scores(question)
        top_lex = np.argsort(-bm25)[: min(CANDIDATES, n)]
        rows = {h.row for h in hits if 0 <= h.row < n} | {int(r) for r in top_lex}
        author = asks_for_author(question)
        if not author:
            rows = {r for r in rows if not self.is_meta[r]}
        max_bm25 = float(bm25.max()) if bm25.size else 0.0
        q_terms = content_terms(question)
        q_weight = sum(self.idf(t) for t in q_terms)
        wanted = answer_type(question)
        q_words = question_stems(question)
        focus = question_focus(question)
        doc_sims = self.doc_vectors @ qvec
        named = self.named_documents(question)
        out = []
        for row in sorted(rows):
            dense = float(self.vectors[row] @ qvec)
            lexical = float(bm25[row]) / max_bm25 if max_bm25 > 0 else 0.0
            sents = self._score_sentences(row, qvec, q_terms, wanted, author, q_words)
            best = sents[0][1] if sents else dense
            score = (
                W_DENSE * dense
                + W_SENTENCE * best
                + W_LEXICAL * lexical
                + W_DOC * float(doc_sims[self.passage_doc[row]])
            )
            if author and self.is_meta[row]:
                score += META_BONUS
            if self.passages[row].doc_id in named:
                score += W_NAMED_DOC
            found = q_terms & self.passage_terms[row]
            coverage = sum(self.idf(t) for t in found) / q_weight if q_weight else 0.0
            type_match = None
            if focus and not focus <= self.passage_terms[row]:
                type_match = False  # it never names what the question asks about
            elif wanted is not None:
                text = self.documents[self.passages[row].doc_id]["text"]
                p = self.passages[row]
                type_match = has_new_answer(wanted, text, p.start, p.end, q_words)
                if type_match:
                    score += W_TYPE
            out.append(
                Candidate(
                    row, self.passages[row], score, dense, lexical, sents, coverage, type_match
                )
            )
        if FUSION == "rrf":
            out = _rank_fusion(out)
        out.sort(key=lambda c: -c.score)
        return out[:limit]

    def _score_sentences(
        self,
        row: int,
        qvec: np.ndarray,
        q_terms: set[str],
        wanted: re.Pattern[str] | None,
        author: bool = False,
        q_words: frozenset[str] | set[str] = frozenset(),
    ) -> tuple[tuple[int, float, float, bool], ...]:
        a, b = self.sentence_offsets[row], self.sentence_offsets[row + 1]
        if a == b:
            return ()
        sims = self.sentence_vectors[a:b] @ qvec
        p = self.passages[row]
        text = self.documents[p.doc_id]["text"]
        muted = self.sentence_muted[row]
        scored = []
        for i, sim in enumerate(sims):
            s, e = p.sentences[i]
            overlap = len(q_terms & self.sentence_terms[row][i]) / len(q_terms) if q_terms else 0.0
            score = float(sim) + 0.15 * overlap
            if wanted is not None and has_new_answer(wanted, text, s, e, q_words):
                score += ANSWER_TYPE_BONUS
            if author and p.kind == "meta" and text.startswith("By ", s):
                score += META_BONUS  # the byline answers "who wrote it"
            scored.append((i, score, overlap, muted[i]))
        # Muted sentences (questions, table headers) rank after every other sentence, so the
        # highlight lands on the answer, not on the FAQ question that asked it.
        scored.sort(key=lambda t: (t[3], -t[1]))
        return tuple(scored)
