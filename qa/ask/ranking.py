"""The ranking and answerability policy, all in one place: four small learned models.

A question's candidates come from two retrievers (dense vectors in Chroma, BM25). Each candidate's
sentences are scored by the sentence model over SENTENCE_FEATURES; each passage by the passage
model over PASSAGE_FEATURES (its best sentence's score among them); and the top passage, over
ANSWER_FEATURES, by the answerability model (the probability that the articles answer the
question at all, on which "not in the articles" is decided) and the top model (the probability
that the top passage is the one that answers, when they do): their product is the probability
that the cited passage answers. Every model is a logistic regression whose weights are learned
on the `dev` question sets by `qa train` and committed in `weights.json` beside this module.

When the passage model leaves its first two passages close (the lead under a learned margin),
the cross-encoder (qa.encoders.cross) reads the top RERANK_DEPTH with the question, and they are
ordered by their standardised learned scores plus a learned weight times its standardised
scores: a slower reading only where the fast one is unsure. Nothing here is tuned by hand
except the highlight's neighbour rules, the candidate pool's size and the re-read depth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.ask.features import PASSAGE_FEATURES, SENTENCE_FEATURES, CorpusFacts, QuestionFacts
from qa.ask.query import Query
from qa.ask.query import parse_query as read_question
from qa.ask.spelling import Speller
from qa.chunking import Passage
from qa.encoders.cross import shared_cross_encoder
from qa.index.loaded import LoadedBuild
from qa.text import Span, continues_previous

# How many candidates each retriever contributes before ranking.
CANDIDATES = 30

# The top passage, described for the answerability model by:
ANSWER_FEATURES = (
    "score",  # its learned passage score
    "margin",  # how far it leads the second passage
    "dense",  # its cosine similarity to the question
    "best_similarity",  # its best sentence's similarity
    "coverage",  # share of the question's content words it holds, weighted by rarity
    "proper_coverage",  # share of the question's names it holds
    "type_missing",  # the question's form asks for something it does not hold
    "unknown",  # share of the question's content words the corpus never uses
    "names_unknown",  # share of the question's names the corpus never uses
    "any_name_unknown",  # the question names something the corpus never mentions
    "missing_rarest",  # rarity of the rarest question word the passage lacks (0..1)
    "sentence_rare_overlap",  # share of the question's rare vocabulary its best sentence holds
    "sentence_type_missing",  # the question's form asks for something its best sentence lacks
)

# Highlights: the best sentence, and a neighbour when it is part of the same answer.
SECOND_SENTENCE_RATIO = 0.85  # a neighbour this similar (share of the best's) joins it
SHORT_SENTENCE_WORDS = 7  # a best sentence this short (a term, a fragment) takes the next one
CONTINUATION_RATIO = 0.75  # a next sentence that continues the best one joins at this share

WEIGHTS_FILE = "weights.json"

# How many of the top passages the cross-encoder re-reads when the passage model is unsure.
RERANK_DEPTH = 5


class PassageReader(Protocol):
    """What re-reads passages: the cross-encoder, or a stand-in in unit tests."""

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class LinearModel:
    """A logistic regression: `features` named, `coef` per feature, and the intercept."""

    features: tuple[str, ...]
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_dict(cls, d: dict[str, Any], expected: tuple[str, ...]) -> LinearModel:
        """A model from its JSON form; ValueError when it weighs other features than these."""
        if tuple(d["features"]) != expected:
            raise ValueError(f"weights for {d['features']}, but the code computes {expected}")
        return cls(
            tuple(d["features"]), np.array(d["coef"], dtype=np.float64), float(d["intercept"])
        )

    def score(self, x: np.ndarray) -> np.ndarray:
        """The log-odds of each row of `x` (columns in `features` order)."""
        return x @ self.coef + self.intercept

    def probability(self, x: np.ndarray) -> np.ndarray:
        """The probability of each row of `x`."""
        return 1.0 / (1.0 + np.exp(-self.score(x)))


@dataclass(frozen=True)
class Rerank:
    """When the cross-encoder re-reads and how much it counts (learned by `qa train`): when the
    first passage leads the second by less than `margin` (in learned score), the top
    RERANK_DEPTH are ordered by z(learned score) + weight * z(cross-encoder score)."""

    weight: float = 0.0
    margin: float = 0.0  # 0: never re-read

    def to_dict(self) -> dict[str, float]:
        """The JSON form written to weights.json."""
        return {"weight": self.weight, "margin": self.margin}


@dataclass(frozen=True)
class Weights:
    """The four learned models, when to re-read, and where they came from."""

    sentence: LinearModel
    passage: LinearModel
    answerable: LinearModel  # P(the articles answer the question)
    top: LinearModel  # P(the top passage answers it | the articles answer it)
    threshold: float  # the answerable probability calibrated as the default QA_MIN_SCORE
    source: str  # what they were trained on (shown by `qa eval`)
    rerank: Rerank = Rerank()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Weights:
        """Weights from their JSON form (what `qa train` writes); ValueError when a model is
        missing (a file written for other code: run `qa train`)."""
        missing = [k for k in ("sentence", "passage", "answerable", "top", "rerank") if k not in d]
        if missing:
            raise ValueError(f"weights without the {', '.join(missing)} model; run `qa train`")
        return cls(
            LinearModel.from_dict(d["sentence"], SENTENCE_FEATURES),
            LinearModel.from_dict(d["passage"], PASSAGE_FEATURES),
            LinearModel.from_dict(d["answerable"], ANSWER_FEATURES),
            LinearModel.from_dict(d["top"], ANSWER_FEATURES),
            float(d["threshold"]),
            str(d.get("source", "")),
            Rerank(float(d["rerank"]["weight"]), float(d["rerank"]["margin"])),
        )

    @classmethod
    def blank(cls) -> Weights:
        """Weights of zero for every feature the code computes: what `qa train` starts from, so
        that training never depends on the committed file (which may name other features)."""

        def zero(names: tuple[str, ...]) -> LinearModel:
            return LinearModel(names, np.zeros(len(names)), 0.0)

        return cls(
            zero(SENTENCE_FEATURES),
            zero(PASSAGE_FEATURES),
            zero(ANSWER_FEATURES),
            zero(ANSWER_FEATURES),
            0.5,
            "blank",
        )


def weights_path() -> Path:
    """The committed weights file inside the package."""
    return Path(str(resources.files("qa.ask") / WEIGHTS_FILE))


@cache
def shipped_weights() -> Weights:
    """The committed weights (read once per process)."""
    return Weights.from_dict(json.loads(weights_path().read_text(encoding="utf-8")))


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
    # (sentence index within passage, learned score, similarity, introduces: see _introduces),
    # best first.
    sentences: tuple[tuple[int, float, float, bool], ...]
    features: np.ndarray  # PASSAGE_FEATURES
    best_rare_overlap: float = 0.0  # the best sentence's rare_overlap
    headings: tuple[int, ...] = ()  # indices of its sentences that are heading lines

    def feature(self, name: str) -> float:
        """One named passage feature."""
        return float(self.features[PASSAGE_FEATURES.index(name)])


@dataclass(frozen=True)
class Scored:
    """Every candidate of one question, described and scored (what training learns from)."""

    rows: np.ndarray
    sentence_features: np.ndarray  # one row per sentence of the candidates, in row order
    sentence_counts: np.ndarray  # sentences of each candidate
    sentence_scores: np.ndarray
    passage_features: np.ndarray  # one row per candidate
    passage_scores: np.ndarray


class Ranker:
    """The ranking policy applied to one loaded build."""

    def __init__(
        self,
        build: LoadedBuild,
        weights: Weights | None = None,
        reader: Callable[[], PassageReader] | None = None,
    ) -> None:
        self.build = build
        self.facts = CorpusFacts(build)
        self.speller = Speller(d.raw for d in build.documents.values())
        self.weights = weights or shipped_weights()
        # The cross-encoder, loaded on the first question that needs it.
        self._reader = reader or shared_cross_encoder

    def parse_query(self, question: str) -> Query:
        """Read a question against this build: its misspellings corrected against the corpus's
        words, its acronyms spelled out as the corpus does."""
        return read_question(self.speller.correct(question), self.facts.acronyms)

    def lexical_hits(self, query: Query) -> LexicalHits:
        """BM25 candidates for the query; needs no query vector, so it can run while one is made."""
        bm25 = self.build.lexical.scores(query.search)
        n, m = len(bm25), min(CANDIDATES, len(bm25))
        # argpartition: the top m without sorting every passage's score (100,000 at scale).
        top = np.argpartition(-bm25, m - 1)[:m] if 0 < m < n else np.arange(n)
        return LexicalHits(bm25, top, float(bm25.max()) if bm25.size else 0.0)

    def score(
        self,
        query: Query,
        qvec: np.ndarray,
        lexical: LexicalHits | None = None,
        prior_docs: tuple[str, ...] = (),
    ) -> tuple[Scored, QuestionFacts] | None:
        """Every candidate of the question, described and scored; None when there is none.

        `prior_docs`: for a follow-up, the documents the conversation's last turn cited (the
        first is where its answer came from, which the passage model may favour)."""
        build = self.build
        n = len(build.passages)
        if n == 0:
            return None
        hits = build.store.query(qvec, min(CANDIDATES, n))
        lex = lexical if lexical is not None else self.lexical_hits(query)
        found = {h.row for h in hits if 0 <= h.row < n} | {int(r) for r in lex.top}
        rows = np.array(sorted(found), dtype=np.int64)
        facts = self.facts.question(query)
        sx, counts = self.facts.sentence_matrix(query, facts, qvec, rows)
        s_scores = self.weights.sentence.score(sx)
        muted = _introduces(sx, query)
        best, best_sim = _best_per_passage(s_scores, sx[:, 0], counts, muted)
        dense = (build.vectors[rows] @ qvec).astype(np.float64)
        lex_scores = lex.scores[rows].astype(np.float64) / lex.max if lex.max > 0 else 0.0 * dense
        last = prior_docs[0] if prior_docs else None
        px = self.facts.passage_matrix(query, facts, rows, dense, lex_scores, best, best_sim, last)
        return Scored(rows, sx, counts, s_scores, px, self.weights.passage.score(px)), facts

    def retrieve(
        self,
        query: Query,
        qvec: np.ndarray,
        limit: int,
        lexical: LexicalHits | None = None,
        prior_docs: tuple[str, ...] = (),
    ) -> list[Candidate]:
        """The best `limit` passages for the query (`qvec` embeds `query.embed`), best first
        (`prior_docs` as for `score`)."""
        scored = self.score(query, qvec, lexical, prior_docs)
        if scored is None:
            return []
        s, _ = scored
        order = self.order(query, s)[:limit]
        ends = np.cumsum(s.sentence_counts)
        introduces = _introduces(s.sentence_features, query)
        heading = s.sentence_features[:, SENTENCE_FEATURES.index("heading")] > 0
        out = []
        for i in order.tolist():
            a, b = int(ends[i] - s.sentence_counts[i]), int(ends[i])
            row = int(s.rows[i])
            rare = s.sentence_features[a:b, SENTENCE_FEATURES.index("rare_overlap")]
            sentences = sorted(
                zip(
                    range(b - a),
                    s.sentence_scores[a:b].tolist(),
                    s.sentence_features[a:b, 0].tolist(),
                    introduces[a:b].tolist(),
                    strict=True,
                ),
                # A question, a lead-in, a header row or a heading introduces the answer: it
                # comes last.
                key=lambda t: (t[3], -t[1]),
            )
            out.append(
                Candidate(
                    row,
                    self.build.passages[row],
                    float(s.passage_scores[i]),
                    tuple(sentences),
                    s.passage_features[i],
                    float(rare[sentences[0][0]]) if sentences else 0.0,
                    tuple(np.flatnonzero(heading[a:b]).tolist()),
                )
            )
        return out

    def order(self, query: Query, s: Scored, rerank: Rerank | None = None) -> np.ndarray:
        """The candidates of `s` best first: by the passage model, the top RERANK_DEPTH re-read
        by the cross-encoder when the first leads by less than the margin (`rerank`: the
        weights' unless given)."""
        order = np.argsort(-s.passage_scores, kind="stable")
        r = rerank if rerank is not None else self.weights.rerank
        if len(order) < 2 or s.passage_scores[order[0]] - s.passage_scores[order[1]] >= r.margin:
            return order
        top = order[:RERANK_DEPTH]
        read = self.reread(query, s.rows[top])
        mixed = _standardised(s.passage_scores[top]) + r.weight * _standardised(read)
        return np.concatenate([top[np.argsort(-mixed, kind="stable")], order[RERANK_DEPTH:]])

    def warm(self) -> None:
        """Load the cross-encoder now, if the weights ever re-read (a server calls this at
        start, so that its first unsure question does not pay about 0.5 s for the load)."""
        if self.weights.rerank.margin > 0 and len(self.build.passages):
            self._reader().scores("warm-up", [self.build.passages[0].text])

    def reread(self, query: Query, rows: np.ndarray) -> np.ndarray:
        """The cross-encoder's scores of the passages at `rows` for the question."""
        texts = [self.build.passages[int(r)].text for r in rows]
        return self._reader().scores(query.text, texts)

    def answer_features(self, query: Query, candidates: list[Candidate]) -> np.ndarray:
        """ANSWER_FEATURES of the top candidate (zeros when there is none)."""
        if not candidates:
            return np.zeros(len(ANSWER_FEATURES))
        top = candidates[0]
        second = candidates[1].score if len(candidates) > 1 else top.score - 5.0
        facts = self.facts.question(query)
        unknown = [t for t in query.terms if t not in self.facts.idf]
        names_unknown = [t for t in facts.names if t not in self.facts.idf]
        return np.array(
            [
                top.score,
                top.score - second,
                top.feature("dense"),
                top.feature("best_similarity"),
                top.feature("coverage"),
                top.feature("proper_coverage"),
                top.feature("type_missing"),
                len(unknown) / len(query.terms) if query.terms else 0.0,
                len(names_unknown) / len(facts.names) if facts.names else 0.0,
                float(bool(names_unknown)),
                max(
                    (self.facts.rarity(t) for t in query.terms - self.facts.passage_terms[top.row]),
                    default=0.0,
                )
                / self.facts.idf_unknown,
                top.best_rare_overlap,
                float(
                    query.wanted is not None
                    and bool(top.sentences)
                    and not self.facts.answers_form(query, top.row, top.sentences[0][0])
                ),
            ]
        )

    @staticmethod
    def worth_searching(query: Query) -> bool:
        """Whether the question has a word to look for: "x" or "?" is answered by nothing in
        particular, and whatever ranked first would be a guess."""
        return bool(query.terms)

    def decide(self, query: Query, candidates: list[Candidate], min_score: float) -> Ranked:
        """Highlights for every candidate, whether the articles answer the question (the
        answerable probability reaches `min_score`), and how likely the top one answers it."""
        p, top = 0.0, 0.0
        if candidates and self.worth_searching(query):
            x = self.answer_features(query, candidates)
            p = float(self.weights.answerable.probability(x))
            top = p * float(self.weights.top.probability(x))
        return Ranked(
            tuple(candidates),
            tuple(highlights(c) for c in candidates),
            p,
            bool(candidates) and p >= min_score,
            top,
        )


@dataclass(frozen=True)
class Ranked:
    """The policy's verdict on one question: passages best first, each with its highlights, the
    probability that the articles answer the question (answerable: at least the threshold), and
    the probability that the top passage is what answers it."""

    candidates: tuple[Candidate, ...]
    highlights: tuple[tuple[Span, ...], ...]
    support: float
    answerable: bool
    top_probability: float = 0.0


def highlights(c: Candidate) -> tuple[Span, ...]:
    """The answering sentence(s) of a passage, as absolute spans; adjacent ones joined.

    The best sentence is the sentence model's choice; a neighbour joins it when it is nearly
    as similar to the question, when the best is a fragment, or when the next one continues it.
    """
    if not c.sentences:
        return ((c.passage.start, c.passage.end),)
    spans = c.passage.sentences
    best_i, _, best, _ = c.sentences[0]
    chosen = {best_i}
    if best_i in c.headings:
        return (spans[best_i],)  # a heading asked for: the heading line, nothing more
    for i, _, sim, muted in c.sentences[1:]:
        if (
            not muted
            and i not in c.headings
            and abs(i - best_i) == 1
            and sim >= best * SECOND_SENTENCE_RATIO
        ):
            chosen.add(i)
            break
    text = c.passage.text
    base = c.passage.start

    def sentence(i: int) -> str:
        return text[spans[i][0] - base : spans[i][1] - base]

    sims = {i: sim for i, _, sim, muted in c.sentences if not muted}
    if best_i > 0 and best_i - 1 not in c.headings and continues_previous(sentence(best_i)):
        chosen.add(best_i - 1)  # "His approach is firm": say whose
    nxt = best_i + 1
    if nxt < len(spans) and nxt in sims and len(chosen) == 1:
        if len(sentence(best_i).split()) <= SHORT_SENTENCE_WORDS:
            chosen.add(nxt)  # a term or a fragment: its explanation follows
        elif continues_previous(sentence(nxt)) and sims[nxt] >= best * CONTINUATION_RATIO:
            chosen.add(nxt)  # "... new ideas. The details of these ideas remain confidential."
    merged: list[Span] = []
    for i in sorted(chosen):
        s, e = spans[i]
        if merged and i - 1 in chosen:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return tuple(merged)


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def _introduces(sx: np.ndarray, query: Query) -> np.ndarray:
    """Which sentences (rows of SENTENCE_FEATURES) introduce an answer rather than give one:
    a question, a lead-in or a table header, and a heading line unless the question asks about
    headings. Such a sentence is never a passage's answer while another is there."""
    muted = sx[:, SENTENCE_FEATURES.index("muted")] > 0
    if query.wants_heading:
        return muted
    return muted | (sx[:, SENTENCE_FEATURES.index("heading")] > 0)


def _best_per_passage(
    scores: np.ndarray, similarity: np.ndarray, counts: np.ndarray, muted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each passage's best sentence's score and similarity: the best-scoring sentence that is not
    muted, else the best muted one (a passage without sentences gets a score far below any
    other and similarity 0). The same choice as the first of a Candidate's sentences."""
    best = np.full(len(counts), -10.0)
    sim = np.zeros(len(counts))
    has = counts > 0
    if not has.any():
        return best, sim
    passage_of = np.repeat(np.arange(len(counts)), counts)
    # One sort for all passages: by passage, unmuted first, best score first, earlier first.
    order = np.lexsort((np.arange(len(scores)), -scores, muted, passage_of))
    firsts = order[(np.cumsum(counts) - counts)[has]]
    best[has], sim[has] = scores[firsts], similarity[firsts]
    return best, sim
