"""Ranking: candidates are described by named features with array operations, which must match
the same features worked out one sentence at a time, and scored by the learned models."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.ask.features import PASSAGE_FEATURES, SENTENCE_FEATURES, ranges
from qa.ask.query import Query, answer_tokens, content_terms, is_new_answer
from qa.ask.ranking import RERANK_DEPTH, Ranker, Rerank, Scored, _best_per_passage
from qa.ask.service import QAService
from qa.corpus import HEADING, Document
from tests.paths import ROOT as PROJECT_ROOT

segments = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 6)), max_size=12)


@given(segments)
def test_ranges_is_the_concatenation_of_aranges(pairs: list[tuple[int, int]]) -> None:
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    expected = [i for s, c in pairs for i in range(s, s + c)]
    assert ranges(starts, counts).tolist() == expected


def test_ranges_of_nothing_is_empty() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert ranges(empty, empty).shape == (0,)


@given(
    st.lists(
        st.lists(
            st.tuples(st.floats(-5, 5, allow_nan=False), st.floats(-1, 1), st.booleans()),
            max_size=5,
        ),
        min_size=1,
        max_size=10,
    )
)
def test_best_per_passage_is_the_best_unmuted_sentence(
    passages: list[list[tuple[float, float, bool]]],
) -> None:
    scores = np.array([s for p in passages for s, _, _ in p], dtype=np.float64)
    sims = np.array([m for p in passages for _, m, _ in p], dtype=np.float64)
    muted = np.array([u for p in passages for _, _, u in p], dtype=bool)
    counts = np.array([len(p) for p in passages], dtype=np.int64)
    best, best_sim = _best_per_passage(scores, sims, counts, muted)
    for i, p in enumerate(passages):
        if not p:
            assert best[i] < -5 and best_sim[i] == 0
            continue
        top = min(range(len(p)), key=lambda j: (p[j][2], -p[j][0], j))
        assert best[i] == p[top][0] and best_sim[i] == p[top][1]


def _read(service: QAService, question: str) -> tuple[Ranker, Query, np.ndarray]:
    """The ranking over the serving build, the question read against it, and its vector."""
    ranker = service.ranker()
    query = ranker.parse_query(question)
    return ranker, query, service.embedder.encode([query.embed])[0]


QUESTIONS = [
    "When did Russia begin its full-scale invasion?",  # a date wanted
    "How many refugees has Poland taken in?",  # a number wanted
    "Where did Rubio and Lavrov meet?",  # a place wanted
    "Who wrote the article about the Rubio-Lavrov meeting?",  # the byline
    "Which country gives refugee support, according to the table?",  # a table
    "According to Eleanor Vance, what did Rubio discuss?",  # an author's article
    "Who is the Secretary General of NATO?",  # a focus
    "what sanctions were imposed on russia",
    "What is the capital of France?",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_scores_are_the_learned_models_over_the_features(service: QAService, question: str) -> None:
    ranker, query, qvec = _read(service, question)
    scored = ranker.score(query, qvec)
    assert scored is not None
    s, _ = scored
    w = ranker.weights
    assert s.sentence_scores == pytest.approx(s.sentence_features @ w.sentence.coef)
    assert s.passage_scores == pytest.approx(s.passage_features @ w.passage.coef)
    ranked = ranker.retrieve(query, qvec, 20)
    # Best first by the passage model, past the top few the cross-encoder may have re-read.
    assert [c.row for c in ranked] == s.rows[ranker.order(query, s)][:20].tolist()
    rest = [c.score for c in ranked[RERANK_DEPTH:]]
    assert rest == sorted(rest, reverse=True)
    # A candidate's best sentence is the sentence model's first choice.
    for c in ranked:
        if c.sentences:
            assert c.feature("best_sentence") == pytest.approx(c.sentences[0][1])
            order = [(t[3], -t[1]) for t in c.sentences]
            assert order == sorted(order)  # muted sentences (questions, lead-ins) last


def test_a_question_of_unknown_words_still_ranks(service: QAService) -> None:
    ranker, query, qvec = _read(service, "Xylophone quokka zzyzx?")
    assert not query.terms & set(ranker.facts.vocab)
    ranked = ranker.retrieve(query, qvec, 5)
    assert len(ranked) == 5 and all(c.sentences for c in ranked)
    features = ranker.answer_features(query, ranked)
    assert features[list(ranker.weights.answerable.features).index("unknown")] == 1.0


def _sentence_oracle(ranker: Ranker, query: Query, qvec: np.ndarray, row: int) -> list[list[float]]:
    """SENTENCE_FEATURES of one passage's sentences, worked out one at a time from their text."""
    build = ranker.build
    p = build.passages[row]
    doc = build.documents[p.doc_id]
    facts = ranker.facts.question(query)
    out = []
    for i, (a, b) in enumerate(p.sentences):
        text = doc.raw[a:b]
        terms = content_terms(text)
        held = query.terms & terms
        wanted = query.wanted
        out.append(
            [
                float(build.sentence_vectors[build.sentence_offsets[row] + i] @ qvec),
                len(held) / max(1, len(query.terms)),
                sum(ranker.facts.rarity(t) for t in held) / max(facts.term_weight, 1e-9),
                len(facts.names & terms) / max(1, len(facts.names)),
                float(
                    wanted is not None
                    and is_new_answer(answer_tokens(wanted, doc.raw, a, b), query.stems6)
                ),
                float(wanted is not None),
                float(query.author and p.kind == "meta" and doc.raw.startswith("By ", a)),
                float(
                    text.rstrip().endswith(("?", ":")) or ("|" in text and a not in doc.row_headers)
                ),
                float(i == 0),
                float(is_heading(doc, a)),
                float(is_heading(doc, a) and query.wants_heading),
            ]
        )
    return out


def is_heading(doc: Document, start: int) -> bool:
    """Whether a heading block of the document starts at `start`."""
    return any(bl.kind == HEADING and bl.start == start for bl in doc.blocks)


@pytest.mark.parametrize("question", QUESTIONS)
def test_sentence_features_equal_one_sentence_at_a_time(service: QAService, question: str) -> None:
    ranker, query, qvec = _read(service, question)
    scored = ranker.score(query, qvec)
    assert scored is not None
    s, _ = scored
    ends = np.cumsum(s.sentence_counts)
    for i, row in enumerate(s.rows.tolist()):
        a, b = int(ends[i] - s.sentence_counts[i]), int(ends[i])
        want = _sentence_oracle(ranker, query, qvec, row)
        want_m = np.array(want).reshape(-1, len(SENTENCE_FEATURES))
        np.testing.assert_allclose(s.sentence_features[a:b], want_m, atol=1e-5)


def _passage_row(ranker: Ranker, question: str, service: QAService, pick) -> dict[str, float]:  # type: ignore[no-untyped-def]
    ranker, query, qvec = _read(service, question)
    scored = ranker.score(query, qvec)
    assert scored is not None
    s, _ = scored
    rows = [i for i, r in enumerate(s.rows.tolist()) if pick(ranker.build.passages[r])]
    assert rows, "no candidate of the kind wanted"
    return dict(zip(PASSAGE_FEATURES, s.passage_features[rows[0]], strict=True))


def test_each_feature_is_named_once() -> None:
    assert len(set(PASSAGE_FEATURES)) == len(PASSAGE_FEATURES)
    assert len(set(SENTENCE_FEATURES)) == len(SENTENCE_FEATURES)


def test_passage_features_say_what_the_question_asks_for(service: QAService) -> None:
    ranker = service.ranker()
    byline = _passage_row(
        ranker,
        "Who wrote the article about the Rubio-Lavrov meeting?",
        service,
        lambda p: p.kind == "meta",
    )
    assert byline["author_meta"] == 1 and byline["meta"] == 1
    table = _passage_row(
        ranker,
        "Which country gives refugee support, according to the table?",
        service,
        lambda p: p.kind == "table",
    )
    assert table["table_wanted"] == 1
    text = _passage_row(
        ranker,
        "Which country gives refugee support, according to the table?",
        service,
        lambda p: p.kind == "text",
    )
    assert text["table_wanted"] == 0
    named = _passage_row(
        ranker,
        "According to Eleanor Vance, what did Rubio discuss?",
        service,
        lambda p: p.doc_id.startswith("000"),
    )
    assert named["named_article"] == 1
    date = _passage_row(
        ranker,
        "When did Russia begin its full-scale invasion?",
        service,
        lambda p: "February 2022" in p.text,
    )
    assert date["type_found"] == 1 and date["type_missing"] == 0
    focus = _passage_row(
        ranker,
        "Who is the Secretary General of NATO?",
        service,
        lambda p: "Secretary of State" in p.text,
    )
    assert focus["focus_missing"] == 1
    faq = _passage_row(
        ranker,
        "Why are US-Russia relations so strained right now?",
        service,
        lambda p: p.kind == "faq",
    )
    assert faq["faq"] == 1 and 0 <= faq["coverage"] <= 1 and 0 <= faq["heading"] <= 1


@given(st.text(alphabet=st.sampled_from(list("aAeéİıßſ’'-_1 .?Ωжи\u0301\t")), max_size=60))
def test_question_terms_are_the_passage_tokenizer_s(text: str) -> None:
    # A question must be cut into exactly the terms bm25s.tokenize makes of the passages, or
    # its words would miss their own postings.
    bm25s = pytest.importorskip("bm25s")
    from qa.index.lexical import LexicalIndex
    from qa.text import fold, stemmer

    lexical = LexicalIndex(None, 0)
    expected = bm25s.tokenize(
        [fold(text)], stopwords="en", stemmer=stemmer(), show_progress=False, return_ids=False
    )[0]
    assert lexical.query_terms(text) == [t for t in expected if t]


def test_question_terms_of_corpus_sentences() -> None:
    import bm25s

    from qa.index.lexical import LexicalIndex
    from qa.text import fold, stemmer

    lexical = LexicalIndex(None, 0)
    for path in sorted((PROJECT_ROOT / "seeds").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            expected = bm25s.tokenize(
                [fold(line)],
                stopwords="en",
                stemmer=stemmer(),
                show_progress=False,
                return_ids=False,
            )[0]
            assert lexical.query_terms(line) == [t for t in expected if t]


def test_the_default_threshold_is_the_trained_one(service: QAService) -> None:
    from dataclasses import replace

    from qa.ask.ranking import shipped_weights
    from qa.settings import Settings

    assert Settings.from_env(env={}).min_score is None  # None: the trained one
    assert Settings.from_env(env={"QA_MIN_SCORE": "0.7"}).min_score == 0.7
    if service.settings.min_score is None:
        assert service.min_score == shipped_weights().threshold
    chosen = QAService(replace(service.settings, min_score=0.7), service.embedder)
    try:
        assert chosen.min_score == 0.7
    finally:
        chosen.close()


def test_misspelt_words_are_corrected_against_the_corpus() -> None:
    from qa.ask.spelling import Speller

    sp = Speller(["Sanctions were imposed on Russia by the United States.", "Lavrov met Rubio."])
    assert sp.correct("what sanctons hit russia") == "what sanctions hit russia"
    assert sp.correct("Where did Lavrove go?") == "Where did Lavrov go?"
    # Known words, short words and words with no close corpus word stay as typed.
    assert sp.correct("Who won the FIFA World Cup?") == "Who won the FIFA World Cup?"
    assert sp.correct("Rubio met") == "Rubio met"


def _heading_spans(service: QAService) -> set[tuple[str, int, int]]:
    build = service.ranker().build
    return {
        (d.id, bl.start, bl.end)
        for d in build.documents.values()
        for bl in d.blocks
        if bl.kind == HEADING
    }


@pytest.mark.parametrize(
    "question",
    [
        "Where did Rubio and Lavrov meet?",
        "What did Rubio and Lavrov discuss in Malaysia?",
        "What is the TL;DR of the Eleanor Vance article?",
        "What does the background on the Ukraine conflict say?",
    ],
)
def test_a_heading_is_never_highlighted_unless_asked_for(service: QAService, question: str) -> None:
    heads = _heading_spans(service)
    answer = service.ask(question)
    for c in answer.citations:
        assert not any(
            doc == c.doc_id and a <= h < b for a, b in c.highlights for doc, h, _ in heads
        ), (question, c.section, c.highlights)


def test_a_question_about_a_section_cites_its_heading_alone(service: QAService) -> None:
    heads = _heading_spans(service)
    answer = service.ask(
        "Which section of Eleanor Vance's article covers the SBU officer shooting?"
    )
    top = answer.citations[0]
    assert (top.doc_id, *top.highlights[0]) in heads  # the heading line, nothing more
    short = answer.short_answer
    assert short is not None and (short.start, short.end) == tuple(top.highlights[0])


def test_weights_of_other_code_are_refused_with_what_to_do() -> None:
    from qa.ask.ranking import Weights

    with pytest.raises(ValueError, match="qa train"):
        Weights.from_dict({"sentence": {}, "passage": {}, "answerable": {}, "threshold": 0.5})
    # Weights of the code before the cross-encoder: no re-reading learned yet.
    import json

    from qa.ask.ranking import weights_path

    old = json.loads(weights_path().read_text(encoding="utf-8"))
    del old["rerank"]
    with pytest.raises(ValueError, match=r"rerank.*qa train"):
        Weights.from_dict(old)


class _Reader:
    """A stand-in cross-encoder: scores given by passage row, and the calls it got."""

    def __init__(self, by_row: dict[int, float], build) -> None:  # type: ignore[no-untyped-def]
        self.by_text = {build.passages[r].text: v for r, v in by_row.items()}
        self.calls: list[int] = []

    def scores(self, question: str, passages: list[str]) -> np.ndarray:
        self.calls.append(len(passages))
        return np.array([self.by_text.get(p, 0.0) for p in passages])


def _scored(scores: list[float]) -> Scored:
    n = len(scores)
    empty = np.zeros((0, 1))
    return Scored(
        np.arange(n), empty, np.zeros(n, dtype=np.int64), np.zeros(0), empty, np.array(scores)
    )


def test_the_cross_encoder_re_reads_the_top_only_when_the_lead_is_under_the_margin(
    service: QAService,
) -> None:
    build = service.index()
    query = Query("q", "q", "q")
    # Row 4 is the cross-encoder's clear favourite; row 7, past the re-read depth, never moves.
    scores = [9.0, 8.5, 8.0, 7.5, 7.0, 6.0, 5.0, 9.5 - 10]
    reader = _Reader({4: 10.0}, build)
    ranker = Ranker(build, service.ranker().weights, reader=lambda: reader)
    s = _scored(scores)
    # A lead of 0.5 over the second passage is not under a margin of 0.5: no re-reading.
    assert ranker.order(query, s, Rerank(3.0, 0.5)).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert reader.calls == []
    order = ranker.order(query, s, Rerank(3.0, 1.0)).tolist()
    assert reader.calls == [RERANK_DEPTH]
    assert order[0] == 4 and sorted(order[:RERANK_DEPTH]) == [0, 1, 2, 3, 4]
    assert order[RERANK_DEPTH:] == [5, 6, 7]
    # Without weight on its reading, the passage model's order stands.
    assert ranker.order(query, s, Rerank(0.0, 1.0)).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    # Never re-read: the blank weights.
    assert ranker.order(query, s, Rerank()).tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


def test_warm_loads_the_cross_encoder_only_when_the_weights_re_read(service: QAService) -> None:
    build = service.index()
    weights = service.ranker().weights
    assert weights.rerank.margin > 0  # the shipped weights re-read
    reader = _Reader({}, build)
    loads: list[int] = []

    def load() -> _Reader:
        loads.append(1)
        return reader

    Ranker(build, weights, reader=load).warm()
    assert loads == [1] and reader.calls == [1]  # loaded, and one pair read to allocate
    never = replace(weights, rerank=Rerank())
    Ranker(build, never, reader=load).warm()
    assert loads == [1]  # weights that never re-read never load it
