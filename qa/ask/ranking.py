"""The ranking and answerability policy, all in one place: features, weights, decisions.

A question's candidates come from two retrievers (dense vectors in Chroma, BM25); each is
described by named features (its similarity to the question, its best sentence's, its BM25
score, how much of the question's rare vocabulary it holds, whether it holds what the
question's form asks for), and ranked by a weighted sum of them plus a few lifts. The same
features decide which sentences to highlight and whether the corpus answers at all. Every
weight is a constant below, beside the reading of the question it responds to (qa.ask.query).
The weights were chosen with `qa eval` on the shipped question sets (see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from qa.ask.query import Query, answer_tokens, content_terms, corpus_acronyms, is_new_answer
from qa.ask.query import parse_query as read_question
from qa.chunking import Passage
from qa.index.loaded import LoadedBuild
from qa.text import Span, continues_previous

# How many candidates each retriever contributes before fusion.
CANDIDATES = 30

# The passage score: a weighted sum of its features...
W_DENSE = 0.35  # the passage's cosine similarity to the question
W_SENTENCE = 0.5  # its best sentence's score (below)
W_LEXICAL = 0.10  # its BM25 score, as a share of the best candidate's
# ...plus lifts for what the question's reading asks for:
W_NAMED_DOC = 0.1  # the question names the article's author ("according to Vance")
W_TABLE = 0.05  # the question points at a table or list, and the passage is one
W_TYPE = 0.05  # the question's form wants a date, number or place, and the passage has one
META_BONUS = 0.3  # the question asks who wrote an article: its byline passage (and sentence)

# A sentence's score: its cosine similarity to the question...
W_SENTENCE_OVERLAP = 0.15  # ...plus this times the share of the question's words it holds
ANSWER_TYPE_BONUS = 0.12  # ...plus this when it holds what the question's form asks for

# Highlights: the best sentence, and a neighbour when it is part of the same answer.
SECOND_SENTENCE_RATIO = 0.85  # a neighbour scoring this share of the best one joins it
SHORT_SENTENCE_WORDS = 7  # a best sentence this short (a term, a fragment) takes the next one
CONTINUATION_RATIO = 0.75  # a next sentence that continues the best one joins at this share

# Answerability: the top passage's support, against the calibrated threshold (settings.min_score).
SUPPORT_SENTENCE = 0.55  # its best sentence's similarity
SUPPORT_DENSE = 0.25  # its own similarity
SUPPORT_COVERAGE = 0.2  # the share of the question's rare words it holds
TYPE_MISMATCH_PENALTY = 0.3  # it lacks the date, number or place the question's form asks for


@dataclass(frozen=True)
class LexicalHits:
    """BM25 for one question: every passage's score and the rows of the best few."""

    scores: np.ndarray
    top: np.ndarray  # rows of the CANDIDATES best scores, in no order
    max: float


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


class Ranker:
    """The ranking policy applied to one loaded build: the corpus facts it needs per sentence
    (content words, which sentences may never be highlighted, rarity of words) are worked out
    once, when the build is loaded, so a question costs a few matrix products."""

    def __init__(self, build: LoadedBuild) -> None:
        self.build = build
        passages, documents = build.passages, build.documents
        sentence_terms: list[list[set[str]]] = []
        # Sentences that must never be the highlight: questions and table header rows.
        sentence_muted: list[list[bool]] = []
        for p in passages:
            doc = documents[p.doc_id]
            spans = [doc.raw[a:b] for a, b in p.sentences]
            sentence_terms.append([content_terms(t) for t in spans])
            sentence_muted.append(
                [
                    # A lead-in ("... include:") introduces the answer but is not it.
                    t.rstrip().endswith(("?", ":")) or ("|" in t and a not in doc.row_headers)
                    for t, (a, _b) in zip(spans, p.sentences, strict=True)
                ]
            )
        self.passage_terms = [set().union(set(), *ts) for ts in sentence_terms]
        # The same facts as flat arrays over all sentences, so that a question scores every
        # candidate's sentences with a few vector operations instead of a Python loop each.
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        term_counts: list[int] = []
        for ts in sentence_terms:
            for terms in ts:
                term_counts.append(len(terms))
                term_ids.extend(vocab.setdefault(t, len(vocab)) for t in terms)
        self._vocab = vocab
        self._term_ids = np.array(term_ids, dtype=np.int64)
        self._term_start = np.concatenate([[0], np.cumsum(term_counts, dtype=np.int64)])
        self._muted = np.array([m for ms in sentence_muted for m in ms], dtype=bool)
        self._byline = np.array(
            [
                p.kind == "meta" and documents[p.doc_id].raw.startswith("By ", a)
                for p in passages
                for a, _b in p.sentences
            ],
            dtype=bool,
        )
        self._tabular = np.array([p.kind in ("table", "list") for p in passages], dtype=bool)
        self.is_meta = np.array([p.kind == "meta" for p in passages], dtype=bool)
        self._idf, self._idf_unknown = _rarity(self.passage_terms)
        self._match_memo: dict[tuple[str, int, int], tuple[tuple[str, ...], ...]] = {}
        self.acronyms = corpus_acronyms([d.raw for d in documents.values()])
        # Surnames from bylines: "according to the Vance article" points at one document.
        self._byline_docs: dict[str, set[str]] = {}
        for doc_id, d in documents.items():
            if d.byline:
                self._byline_docs.setdefault(d.byline.split()[-1], set()).add(doc_id)

    def parse_query(self, question: str) -> Query:
        """Read a question against this build (its acronyms)."""
        return read_question(question, self.acronyms)

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

    def lexical_hits(self, query: Query) -> LexicalHits:
        """BM25 candidates for the query; needs no query vector, so it can run while one is made."""
        bm25 = self.build.lexical.scores(query.search)
        n, m = len(bm25), min(CANDIDATES, len(bm25))
        # argpartition: the top m without sorting every passage's score (100,000 at scale).
        # In a small corpus rows sharing no term with the question may fill the m; they are
        # scored like any other candidate.
        top = np.argpartition(-bm25, m - 1)[:m] if 0 < m < n else np.arange(n)
        return LexicalHits(bm25, top, float(bm25.max()) if bm25.size else 0.0)

    def retrieve(
        self, query: Query, qvec: np.ndarray, limit: int, lexical: LexicalHits | None = None
    ) -> list[Candidate]:
        """The best `limit` passages for the query (`qvec` embeds `query.embed`), best first.

        `lexical` is `lexical_hits(query)` when the caller has already computed it. Every
        candidate is scored with array operations; only the ones returned become Candidates.
        """
        build = self.build
        n = len(build.passages)
        if n == 0:
            return []
        hits = build.store.query(qvec, min(CANDIDATES, n))
        lex = lexical if lexical is not None else self.lexical_hits(query)
        found = {h.row for h in hits if 0 <= h.row < n} | {int(r) for r in lex.top}
        rows = np.array(sorted(found), dtype=np.int64)
        if not query.author:
            rows = rows[~self.is_meta[rows]]
        if not len(rows):
            return []
        dense = (build.vectors[rows] @ qvec).astype(np.float64)
        first = build.sentence_offsets[rows]
        counts = build.sentence_offsets[rows + 1] - first
        gathered = _ranges(first, counts)
        muted = self._muted[gathered]
        sentence_scores, overlaps = self._sentence_scores(
            query, qvec, rows, first, counts, gathered
        )
        best = _best_sentence(sentence_scores, muted, counts, dense)
        lex_scores = (
            lex.scores[rows].astype(np.float64) / lex.max
            if lex.max > 0
            else np.zeros(len(rows), dtype=np.float64)
        )
        # The same sums, in the same order, as one candidate at a time would add them.
        score = W_DENSE * dense + W_SENTENCE * best + W_LEXICAL * lex_scores
        if query.author:
            score[self.is_meta[rows]] += META_BONUS
        named = self.named_documents(query.text)
        if named:
            in_named = [build.passages[r].doc_id in named for r in rows.tolist()]
            score[np.array(in_named, dtype=bool)] += W_NAMED_DOC
        if query.wants_table:
            score[self._tabular[rows]] += W_TABLE
        if query.wanted is not None:
            typed = [self._type_match(query, int(r)) is True for r in rows]
            score[np.array(typed, dtype=bool)] += W_TYPE
        ranked = np.argsort(-score, kind="stable")
        ends = np.cumsum(counts)
        q_weight = sum(self.idf(t) for t in query.terms)

        def candidate(i: int) -> Candidate:
            row = int(rows[i])
            a, b = int(ends[i] - counts[i]), int(ends[i])
            found_terms = query.terms & self.passage_terms[row]
            coverage = sum(self.idf(t) for t in found_terms) / q_weight if q_weight else 0.0
            return Candidate(
                row,
                build.passages[row],
                float(score[i]),
                float(dense[i]),
                float(lex_scores[i]),
                _sentence_order(sentence_scores[a:b], overlaps[a:b], muted[a:b]),
                coverage,
                self._type_match(query, row),
            )

        return [candidate(int(i)) for i in self._with_section_rest(rows, ranked, limit)]

    def _sentence_scores(
        self,
        query: Query,
        qvec: np.ndarray,
        rows: np.ndarray,
        first: np.ndarray,
        counts: np.ndarray,
        gathered: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score and question-term overlap of every sentence of the candidate `rows` (their
        `counts` sentences from row `first` of the sentence vectors, `gathered`), concatenated.

        A sentence scores its similarity to the question plus 0.15 x the share of the question's
        content words it holds, plus a bonus when it holds what the question's form asks for
        (a date for "when") and, for authorship questions, when it is the byline.
        """
        sims = (self.build.sentence_vectors[gathered] @ qvec).astype(np.float64)
        q_ids = [self._vocab[t] for t in query.terms if t in self._vocab]
        if q_ids:
            wanted_terms = np.zeros(len(self._vocab), dtype=bool)
            wanted_terms[q_ids] = True
            t0 = self._term_start[gathered]
            t_counts = self._term_start[gathered + 1] - t0
            in_question = wanted_terms[self._term_ids[_ranges(t0, t_counts)]]
            sentence_of = np.repeat(np.arange(len(gathered)), t_counts)
            shared = np.bincount(sentence_of, weights=in_question, minlength=len(gathered))
            overlaps = shared / len(query.terms)
        else:
            overlaps = np.zeros(len(gathered), dtype=np.float64)
        scores = sims + W_SENTENCE_OVERLAP * overlaps
        if query.wanted is not None:
            local = gathered - np.repeat(first, counts)
            typed = [
                is_new_answer(self._matches(query.wanted, r, i), query.stems6)
                for r, i in zip(np.repeat(rows, counts).tolist(), local.tolist(), strict=True)
            ]
            scores[np.array(typed, dtype=bool)] += ANSWER_TYPE_BONUS
        if query.author:
            scores[self._byline[gathered]] += META_BONUS  # the byline answers "who wrote it"
        return scores, overlaps

    def _type_match(self, query: Query, row: int) -> bool | None:
        """None when the question's form expects nothing; else whether the passage has it."""
        if query.focus and not query.focus <= self.passage_terms[row]:
            return False  # it never names what the question asks about
        if query.wanted is not None:
            return is_new_answer(self._matches(query.wanted, row, -1), query.stems6)
        return None

    def _with_section_rest(self, rows: np.ndarray, ranked: np.ndarray, limit: int) -> list[int]:
        """Positions (into `rows`) of the passages to return, keeping the rest of the best
        passage's section in view.

        A section too long for one passage is cut in two; the half the question did not match
        best is still the likeliest place for an answer the ranking missed, so it takes the last
        slot when it did not earn one (only when there are more candidates than slots).
        """
        top = [int(i) for i in ranked[:limit]]
        if len(ranked) <= limit or limit < 3:
            return top
        passages = self.build.passages
        first = passages[int(rows[top[0]])]
        text = self.build.documents[first.doc_id].raw
        for i in ranked[limit:]:
            p = passages[int(rows[i])]
            if (
                p.doc_id == first.doc_id
                and p.section == first.section
                and p.kind == first.kind
                and not text[min(p.end, first.end) : max(p.start, first.start)].strip()
            ):
                return [*top[:-1], int(i)]
        return top

    def _matches(
        self, pattern: re.Pattern[str], row: int, sentence: int
    ) -> tuple[tuple[str, ...], ...]:
        """`answer_tokens` of a passage's sentence (-1: the whole passage), memoised: the same
        passages come back question after question, and the regexes cost more than the rest."""
        key = (pattern.pattern, row, sentence)
        found = self._match_memo.get(key)
        if found is None:
            p = self.build.passages[row]
            start, end = (p.start, p.end) if sentence < 0 else p.sentences[sentence]
            found = answer_tokens(pattern, self.build.documents[p.doc_id].raw, start, end)
            # At most 3 patterns x (sentences + passages) entries; a race only computes the
            # same value twice.
            self._match_memo[key] = found
        return found


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of `arange(s, s + c)` for each start and count, without a loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, counts)


def _sentence_order(
    scores: np.ndarray, overlaps: np.ndarray, muted: np.ndarray
) -> tuple[tuple[int, float, float, bool], ...]:
    """One passage's sentences as (index, score, overlap, muted), in highlight order.

    Muted sentences (questions, table headers, lead-ins) rank after every other sentence, so
    the highlight lands on the answer, not on the FAQ question that asked it.
    """
    scored = list(
        zip(range(len(scores)), scores.tolist(), overlaps.tolist(), muted.tolist(), strict=True)
    )
    scored.sort(key=lambda t: (t[3], -t[1]))
    return tuple(scored)


def _best_sentence(
    scores: np.ndarray, muted: np.ndarray, counts: np.ndarray, dense: np.ndarray
) -> np.ndarray:
    """Each candidate's first sentence in `_sentence_order`, from the concatenated
    sentence `scores` (`counts` per candidate): the best that is not muted, else the best muted
    one; a passage without sentences counts its `dense` similarity."""
    best = dense.copy()
    has = counts > 0
    if not has.any():
        return best
    # Reduce over the non-empty segments only: reduceat misreads empty ones.
    starts = (np.cumsum(counts) - counts)[has]
    open_best = np.maximum.reduceat(np.where(muted, -np.inf, scores), starts)
    muted_best = np.maximum.reduceat(np.where(muted, scores, -np.inf), starts)
    best[has] = np.where(open_best > -np.inf, open_best, muted_best)
    return best


def _rarity(passage_terms: list[set[str]]) -> tuple[dict[str, float], float]:
    """Each term's inverse document frequency over passages, and that of an unseen term (the
    rarest of all: words the corpus never uses weigh most in the coverage feature)."""
    df: dict[str, int] = {}
    for terms in passage_terms:
        for t in terms:
            df[t] = df.get(t, 0) + 1
    n = max(1, len(passage_terms))
    return {t: float(np.log((n + 1) / (c + 0.5))) for t, c in df.items()}, float(
        np.log((n + 1) / 0.5)
    )


def support_score(top: Candidate) -> float:
    """How well the top passage supports an answer, in 0..1.

    Mixes the best sentence's similarity, the passage's similarity and the share of the
    question's content words (weighted by rarity) the passage contains: a close paraphrase of an
    answerable question scores high on the first two, while a plausible question about something
    the corpus never mentions loses on the third. A question whose form asks for a date, number
    or place is not supported by a passage that holds none.
    """
    value = (
        SUPPORT_SENTENCE * top.best_sentence
        + SUPPORT_DENSE * top.dense
        + SUPPORT_COVERAGE * top.coverage
    )
    if top.type_match is False:
        value -= TYPE_MISMATCH_PENALTY
    return max(0.0, min(1.0, value))


def highlights(c: Candidate) -> tuple[Span, ...]:
    """The answering sentence(s) of a passage, as absolute spans; adjacent ones joined."""
    if not c.sentences:
        return ((c.passage.start, c.passage.end),)
    spans = c.passage.sentences
    best_i, best, _, _ = c.sentences[0]
    chosen = {best_i}
    # A neighbour that scores nearly as well is part of the answer ("... prisoner exchanges.").
    for i, sim, _, muted in c.sentences[1:]:
        if not muted and abs(i - best_i) == 1 and sim >= best * SECOND_SENTENCE_RATIO:
            chosen.add(i)
            break
    text = c.passage.text
    base = c.passage.start

    def sentence(i: int) -> str:
        return text[spans[i][0] - base : spans[i][1] - base]

    scores = {i: sim for i, sim, _, muted in c.sentences if not muted}
    if best_i > 0 and continues_previous(sentence(best_i)):
        chosen.add(best_i - 1)  # "His approach is firm": say whose
    nxt = best_i + 1
    if nxt < len(spans) and nxt in scores and len(chosen) == 1:
        if len(sentence(best_i).split()) <= SHORT_SENTENCE_WORDS:
            chosen.add(nxt)  # a term or a fragment: its explanation follows
        elif continues_previous(sentence(nxt)) and scores[nxt] >= best * CONTINUATION_RATIO:
            chosen.add(nxt)  # "... new ideas. The details of these ideas remain confidential."
    merged: list[Span] = []
    for i in sorted(chosen):
        s, e = spans[i]
        if merged and i - 1 in chosen:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)


@dataclass(frozen=True)
class Ranked:
    """The policy's verdict on one question: passages best first, each with its highlights,
    and whether the corpus answers (the top passage's support against the threshold)."""

    candidates: tuple[Candidate, ...]
    highlights: tuple[tuple[Span, ...], ...]
    support: float
    answerable: bool


def decide(candidates: list[Candidate], min_score: float) -> Ranked:
    """Highlights for every candidate, and the answerability decision."""
    support = support_score(candidates[0]) if candidates else 0.0
    return Ranked(
        tuple(candidates),
        tuple(highlights(c) for c in candidates),
        support,
        bool(candidates) and support >= min_score,
    )
