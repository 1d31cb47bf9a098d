"""The signals the ranking policy weighs: named features of a question's candidate passages and
of their sentences, computed with a few array operations per question.

`CorpusFacts` holds what a build's text says once and for all (each sentence's content words,
which sentences are lead-ins or table headers, word rarity, headings, bylines); `passage_matrix`
and `sentence_matrix` describe one question's candidates in the columns named by
PASSAGE_FEATURES and SENTENCE_FEATURES. What the features are worth is learned (qa.ask.ranking).
No feature names a word of any corpus: each is a general property of a question and a text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qa.ask.query import Query, answer_tokens, content_terms, corpus_acronyms, is_new_answer
from qa.index.loaded import LoadedBuild

# Each sentence of a candidate passage, described by:
SENTENCE_FEATURES = (
    "similarity",  # cosine similarity of the sentence's vector to the question's
    "overlap",  # share of the question's content words the sentence holds
    "rare_overlap",  # the same, each word weighted by its rarity in the corpus
    "proper_overlap",  # share of the question's names (capitalised words, acronyms) it holds
    "type_found",  # it holds what the question's form asks for (a date for "when"), not in it
    "type_wanted",  # the question's form asks for something (a date, a number, a place)
    "byline_for_author",  # it is a byline and the question asks who wrote an article
    "muted",  # a question, a lead-in ending in ':' or a table header: it introduces, not answers
    "first",  # it opens its passage
    "heading",  # it is a section heading line
    "heading_asked",  # it is a heading, and the question asks about a heading or section
)

# Each candidate passage, described by:
PASSAGE_FEATURES = (
    "dense",  # cosine similarity of the passage's vector to the question's
    "best_sentence",  # the learned score of its best sentence
    "best_similarity",  # that sentence's cosine similarity
    "lexical",  # its BM25 score, as a share of the best candidate's
    "coverage",  # share of the question's content words it holds, weighted by rarity
    "proper_coverage",  # share of the question's names it holds
    "numbers",  # share of the question's numbers it holds
    "heading",  # share of the question's content words in its section heading
    "title",  # share of the question's content words in its article's title
    "type_found",  # it holds what the question's form asks for, and the question does not
    "type_missing",  # the question's form asks for something it does not hold
    "table_wanted",  # the question points at a table or list, and it is one
    "author_meta",  # the question asks who wrote an article, and it is the byline passage
    "meta",  # it is an article's title-and-byline passage
    "named_article",  # the question names the author of its article
    "focus_missing",  # "who is the X": it never names X
    "faq",  # it is a question and answer from an FAQ section
    "last_cited_article",  # a follow-up's passage from the article the last answer came from
)

_NUMBER = re.compile(r"\b\d[\d,.]*\b")
QUESTION_MEMO = 4096  # questions whose facts are remembered
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][\w'’-]+|\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class QuestionFacts:
    """What the features need from a question beyond its Query."""

    term_weight: float  # sum of the rarity of its content words
    names: frozenset[str]  # stemmed names: capitalised words past the first, acronyms
    numbers: frozenset[str]


class CorpusFacts:
    """A build's text, worked out once when it is loaded, so a question costs a few matrix
    products: every sentence's content words as flat arrays, and the facts of each passage."""

    def __init__(self, build: LoadedBuild) -> None:
        self.build = build
        passages, documents = build.passages, build.documents
        sentence_terms: list[set[str]] = []
        muted: list[bool] = []
        byline: list[bool] = []
        first: list[bool] = []
        heading: list[bool] = []
        for p in passages:
            doc = documents[p.doc_id]
            heads = doc.heading_starts
            for i, (a, b) in enumerate(p.sentences):
                heading.append(a in heads)
                text = doc.raw[a:b]
                sentence_terms.append(content_terms(text))
                # A lead-in ("... include:") introduces the answer but is not it; a table's
                # header row names columns.
                muted.append(
                    text.rstrip().endswith(("?", ":")) or ("|" in text and a not in doc.row_headers)
                )
                byline.append(p.kind == "meta" and doc.raw.startswith("By ", a))
                first.append(i == 0)
        self.passage_terms: list[set[str]] = []
        offsets = build.sentence_offsets
        for r in range(len(passages)):
            self.passage_terms.append(
                set().union(set(), *sentence_terms[offsets[r] : offsets[r + 1]])
            )
        self.vocab: dict[str, int] = {}
        term_ids: list[int] = []
        term_counts: list[int] = []
        for terms in sentence_terms:
            term_counts.append(len(terms))
            term_ids.extend(self.vocab.setdefault(t, len(self.vocab)) for t in sorted(terms))
        self.term_ids = np.array(term_ids, dtype=np.int64)
        self.term_start = np.concatenate([[0], np.cumsum(term_counts, dtype=np.int64)])
        self.muted = np.array(muted, dtype=bool)
        self.byline = np.array(byline, dtype=bool)
        self.first = np.array(first, dtype=bool)
        self.heading = np.array(heading, dtype=bool)
        self.tabular = np.array([p.kind in ("table", "list") for p in passages], dtype=bool)
        self.is_meta = np.array([p.kind == "meta" for p in passages], dtype=bool)
        self.is_faq = np.array([p.kind == "faq" for p in passages], dtype=bool)
        self.heading_terms = [content_terms(p.section) for p in passages]
        self.title_terms = {d.id: content_terms(d.display_title) for d in documents.values()}
        # Term -> the passages holding it (in their text, their heading, their article's title):
        # a question's few terms then count into every passage at once.
        self._in_text = _postings(self.passage_terms)
        self._in_heading = _postings(self.heading_terms)
        self._in_title = _postings([self.title_terms[p.doc_id] for p in passages])
        self.doc_ids = np.array([p.doc_id for p in passages], dtype=object)
        self.idf, self.idf_unknown = _rarity(self.passage_terms)
        self.idf_by_id = np.array([self.idf[t] for t in self.vocab], dtype=np.float64)
        self.acronyms = corpus_acronyms([d.raw for d in documents.values()])
        # Surnames from bylines: "according to the Vance article" points at one document.
        self.byline_docs: dict[str, set[str]] = {}
        for doc_id, d in documents.items():
            if d.byline:
                self.byline_docs.setdefault(d.byline.split()[-1], set()).add(doc_id)
        self._match_memo: dict[tuple[str, int, int], tuple[tuple[str, ...], ...]] = {}
        self._question_memo: dict[tuple[str, str], QuestionFacts] = {}

    def rarity(self, term: str) -> float:
        """Inverse document frequency of a stemmed term (words the corpus never uses: rarest)."""
        return self.idf.get(term, self.idf_unknown)

    def question(self, query: Query) -> QuestionFacts:
        """The question-level facts the features share (worked out once per question: the
        ranking and the answerability decision both ask)."""
        key = (query.text, query.search)
        found = self._question_memo.get(key)
        if found is None:
            names = frozenset(
                t for m in _NAME.finditer(query.text) for t in content_terms(m.group(0))
            )
            found = QuestionFacts(
                sum(self.rarity(t) for t in query.terms),
                names,
                frozenset(_NUMBER.findall(query.text)),
            )
            if len(self._question_memo) >= QUESTION_MEMO:
                self._question_memo.clear()  # bounded; a race only works one out twice
            self._question_memo[key] = found
        return found

    def named_documents(self, question: str) -> set[str]:
        """Documents whose author the question names ("according to Eleanor Vance")."""
        found: set[str] = set()
        for surname, docs in self.byline_docs.items():
            if re.search(rf"\b{re.escape(surname)}\b", question):
                found |= docs
        return found

    def answers_form(self, query: Query, row: int, sentence: int) -> bool:
        """Whether a passage's sentence (-1: the whole passage) holds what the question's form
        asks for and the question does not already say; memoised, since the same passages come
        back question after question and the regexes cost more than the rest."""
        if query.wanted is None:
            return False
        key = (query.wanted.pattern, row, sentence)
        found = self._match_memo.get(key)
        if found is None:
            p = self.build.passages[row]
            start, end = (p.start, p.end) if sentence < 0 else p.sentences[sentence]
            found = answer_tokens(query.wanted, self.build.documents[p.doc_id].raw, start, end)
            self._match_memo[key] = found  # a race only computes the same value twice
        return is_new_answer(found, query.stems6)

    def sentence_matrix(
        self, query: Query, facts: QuestionFacts, qvec: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """SENTENCE_FEATURES of every sentence of the passages `rows`, concatenated in row order,
        and the number of sentences of each row."""
        offsets = self.build.sentence_offsets
        first = offsets[rows]
        counts = offsets[rows + 1] - first
        gathered = ranges(first, counts)
        n = len(gathered)
        sims = (self.build.sentence_vectors[gathered] @ qvec).astype(np.float64)
        terms = [t for t in query.terms if t in self.vocab]
        names = [t for t in facts.names if t in self.vocab]
        held = self._held_terms(gathered) if terms or names else None
        plain = self._shared(held, n, terms, None) / max(1, len(query.terms))
        rare = self._shared(held, n, terms, self.idf_by_id) / max(facts.term_weight, 1e-9)
        proper = self._shared(held, n, names, None) / max(1, len(facts.names))
        local = gathered - np.repeat(first, counts)
        type_found = np.zeros(n)
        if query.wanted is not None:
            pairs = zip(np.repeat(rows, counts).tolist(), local.tolist(), strict=True)
            type_found = np.array([self.answers_form(query, r, i) for r, i in pairs], dtype=float)
        m = np.column_stack(
            [
                sims,
                plain,
                rare,
                proper,
                type_found,
                np.full(n, float(query.wanted is not None)),
                self.byline[gathered] & query.author,
                self.muted[gathered],
                self.first[gathered],
                self.heading[gathered],
                self.heading[gathered] & query.wants_heading,
            ]
        ).astype(np.float64)
        return m, counts

    def _held_terms(self, gathered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary ids of the terms of the sentences `gathered`, and for each id, the
        position in `gathered` of the sentence holding it."""
        t0 = self.term_start[gathered]
        t_counts = self.term_start[gathered + 1] - t0
        return self.term_ids[ranges(t0, t_counts)], np.repeat(np.arange(len(gathered)), t_counts)

    def _shared(
        self,
        held: tuple[np.ndarray, np.ndarray] | None,
        n: int,
        terms: list[str],
        weights: np.ndarray | None,
    ) -> np.ndarray:
        """For each of the `n` sentences whose terms are `held`, how many of `terms` it holds
        (summing `weights` of the terms' ids when given)."""
        if not terms or held is None:
            return np.zeros(n)
        ids = [self.vocab[t] for t in terms]
        wanted = np.zeros(len(self.vocab), dtype=np.float64)
        wanted[ids] = 1.0 if weights is None else weights[ids]
        term_ids, sentence_of = held
        return np.bincount(sentence_of, weights=wanted[term_ids], minlength=n)

    def passage_matrix(
        self,
        query: Query,
        facts: QuestionFacts,
        rows: np.ndarray,
        dense: np.ndarray,
        lexical: np.ndarray,
        best_sentence: np.ndarray,
        best_similarity: np.ndarray,
        last_cited: str | None = None,
    ) -> np.ndarray:
        """PASSAGE_FEATURES of the passages `rows` (their dense similarity, normalised BM25,
        and best sentence's learned score and similarity given; for a follow-up, the document
        the last answer came from)."""
        n = len(self.build.passages)
        named = self.named_documents(query.text)
        q_terms = query.terms
        m = np.zeros((len(rows), len(PASSAGE_FEATURES)))
        m[:, 0], m[:, 1], m[:, 2], m[:, 3] = dense, best_sentence, best_similarity, lexical
        if facts.term_weight:
            rare = _count(self._in_text, n, q_terms, self.rarity)
            m[:, 4] = rare[rows] / facts.term_weight
        if facts.names:
            m[:, 5] = _count(self._in_text, n, facts.names)[rows] / len(facts.names)
        if facts.numbers:
            texts = self.build.passages
            m[:, 6] = [_share(facts.numbers, texts[r].text) for r in rows.tolist()]
        if q_terms:
            m[:, 7] = _count(self._in_heading, n, q_terms)[rows] / len(q_terms)
            m[:, 8] = _count(self._in_title, n, q_terms)[rows] / len(q_terms)
        if query.wanted is not None:
            found = np.array([self.answers_form(query, r, -1) for r in rows.tolist()], dtype=bool)
            m[:, 9], m[:, 10] = found, ~found
        m[:, 11] = query.wants_table and self.tabular[rows]
        m[:, 12] = query.author and self.is_meta[rows]
        m[:, 13] = self.is_meta[rows]
        if named:
            m[:, 14] = np.isin(self.doc_ids[rows], list(named))
        if query.focus:
            m[:, 15] = _count(self._in_text, n, query.focus)[rows] < len(query.focus)
        m[:, 16] = self.is_faq[rows]
        if last_cited is not None:
            m[:, 17] = self.doc_ids[rows] == last_cited
        return m


def _postings(term_sets: list[set[str]]) -> dict[str, np.ndarray]:
    """Each term -> the indices of the sets holding it."""
    found: dict[str, list[int]] = {}
    for i, terms in enumerate(term_sets):
        for t in terms:
            found.setdefault(t, []).append(i)
    return {t: np.array(ids, dtype=np.int64) for t, ids in found.items()}


def _count(
    postings: dict[str, np.ndarray],
    n: int,
    terms: frozenset[str] | set[str],
    weight: Callable[[str], float] | None = None,
) -> np.ndarray:
    """For each of `n` items, how many of `terms` it holds (summing `weight(term)` if given)."""
    out = np.zeros(n)
    for t in terms:
        ids = postings.get(t)
        if ids is not None:
            out[ids] += 1.0 if weight is None else weight(t)
    return out


def _share(numbers: frozenset[str], text: str) -> float:
    """Share of the question's numbers that stand in `text` (0 when it has none)."""
    if not numbers:
        return 0.0
    found = set(_NUMBER.findall(text))
    return len(numbers & found) / len(numbers)


def _rarity(passage_terms: list[set[str]]) -> tuple[dict[str, float], float]:
    """Each term's inverse document frequency over passages, and that of an unseen term."""
    df: dict[str, int] = {}
    for terms in passage_terms:
        for t in terms:
            df[t] = df.get(t, 0) + 1
    n = max(1, len(passage_terms))
    idf = {t: float(np.log((n + 1) / (c + 0.5))) for t, c in df.items()}
    return idf, float(np.log((n + 1) / 0.5))


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of `arange(s, s + c)` for each start and count, without a loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, counts)
