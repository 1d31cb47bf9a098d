"""Retrieval scores all candidates with array operations: they must match the per-sentence rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qa.ask.query import Query, answer_tokens, content_terms, is_new_answer
from qa.ask.ranking import (
    ANSWER_TYPE_BONUS,
    CANDIDATES,
    META_BONUS,
    W_DENSE,
    W_LEXICAL,
    W_NAMED_DOC,
    W_SENTENCE,
    W_SENTENCE_OVERLAP,
    W_TABLE,
    W_TYPE,
    Ranker,
    _best_sentence,
    _ranges,
)
from qa.ask.service import QAService
from tests.paths import ROOT as PROJECT_ROOT

segments = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 6)), max_size=12)


@given(segments)
def test_ranges_is_the_concatenation_of_aranges(pairs: list[tuple[int, int]]) -> None:
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    expected = [i for s, c in pairs for i in range(s, s + c)]
    assert _ranges(starts, counts).tolist() == expected


@given(
    st.lists(
        st.lists(st.tuples(st.floats(-1, 2, allow_nan=False), st.booleans()), max_size=5),
        min_size=1,
        max_size=10,
    )
)
def test_best_sentence_is_the_first_in_highlight_order(
    passages: list[list[tuple[float, bool]]],
) -> None:
    # `_sentence_order` sorts a passage's sentences by (muted, -score): its first entry is the
    # best unmuted sentence, or the best muted one when all are muted.
    scores = np.array([s for p in passages for s, _ in p], dtype=np.float64)
    muted = np.array([m for p in passages for _, m in p], dtype=bool)
    counts = np.array([len(p) for p in passages], dtype=np.int64)
    dense = np.arange(len(passages), dtype=np.float64) / 10
    got = _best_sentence(scores, muted, counts, dense).tolist()
    for i, p in enumerate(passages):
        expected = sorted(p, key=lambda t: (t[1], -t[0]))[0][0] if p else dense[i]
        assert got[i] == expected


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
    "What sanctions were imposed on Russia?",
    "What is the capital of France?",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_candidate_score_adds_up_from_its_own_sentences(
    service: QAService, question: str
) -> None:
    idx, query, qvec = _read(service, question)
    ranked = idx.retrieve(query, qvec, 20)
    assert ranked
    named = idx.named_documents(query.text)
    for c in ranked:
        extra = 0.0
        if query.author and c.passage.kind == "meta":
            extra += META_BONUS
        if c.passage.doc_id in named:
            extra += W_NAMED_DOC
        if query.wants_table and c.passage.kind in ("table", "list"):
            extra += W_TABLE
        if c.type_match is True and query.wanted is not None:
            extra += W_TYPE
        # best_sentence is the first of the candidate's ordered sentences, the score comes from
        # the segmented maximum: they agree to rounding.
        base = W_DENSE * c.dense + W_SENTENCE * c.best_sentence + W_LEXICAL * c.lexical
        assert c.score == pytest.approx(base + extra, abs=1e-9), c.passage.section
    # Best first, except the last slot, which may hold the rest of the top passage's section.
    scores = [c.score for c in ranked[:-1]]
    assert scores == sorted(scores, reverse=True)
    if not query.author:
        assert all(c.passage.kind != "meta" for c in ranked)


def test_a_question_of_unknown_words_still_ranks(service: QAService) -> None:
    # No query term is in the corpus's vocabulary: sentence scores fall back to similarity alone.
    idx = service.ranker()
    query = idx.parse_query("Xylophone quokka zzyzx?")
    assert not query.terms & set(idx._vocab)
    ranked = idx.retrieve(query, service.embedder.encode([query.embed])[0], 5)
    assert len(ranked) == 5
    assert all(c.sentences for c in ranked)


def test_ranges_of_nothing_is_empty() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert _ranges(empty, empty).shape == (0,)


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


def _one_at_a_time(ranker: Ranker, query: Query, qvec: np.ndarray) -> dict[int, tuple]:
    """The scoring rules applied to one candidate and one sentence at a time, straight from the
    passage texts: (score, ordered sentences) by row. The oracle for the array version."""
    idx = ranker.build
    n = len(idx.passages)
    lex = ranker.lexical_hits(query)
    rows = {h.row for h in idx.store.query(qvec, min(CANDIDATES, n))} | set(lex.top.tolist())
    named = ranker.named_documents(query.text)
    out = {}
    for row in sorted(rows):
        p = idx.passages[row]
        if p.kind == "meta" and not query.author:
            continue
        raw = idx.documents[p.doc_id].raw
        first = int(idx.sentence_offsets[row])
        sentences = []
        for i, (a, b) in enumerate(p.sentences):
            text = raw[a:b]
            sim = float(idx.sentence_vectors[first + i] @ qvec)
            overlap = len(query.terms & content_terms(text)) / len(query.terms)
            score = sim + W_SENTENCE_OVERLAP * overlap
            wanted = query.wanted
            if wanted is not None and is_new_answer(answer_tokens(wanted, raw, a, b), query.stems6):
                score += ANSWER_TYPE_BONUS
            if query.author and p.kind == "meta" and raw.startswith("By ", a):
                score += META_BONUS
            muted = text.rstrip().endswith(("?", ":")) or (
                "|" in text and a not in idx.documents[p.doc_id].row_headers
            )
            sentences.append((i, score, overlap, muted))
        sentences.sort(key=lambda t: (t[3], -t[1]))
        dense = float(idx.vectors[row] @ qvec)
        best = sentences[0][1] if sentences else dense
        lexical = float(lex.scores[row]) / lex.max if lex.max > 0 else 0.0
        score = W_DENSE * dense + W_SENTENCE * best + W_LEXICAL * lexical
        if query.author and p.kind == "meta":
            score += META_BONUS
        if p.doc_id in named:
            score += W_NAMED_DOC
        if query.wants_table and p.kind in ("table", "list"):
            score += W_TABLE
        focus_missing = query.focus and not query.focus <= ranker.passage_terms[row]
        wanted = query.wanted
        if (
            wanted
            and not focus_missing
            and is_new_answer(answer_tokens(wanted, raw, p.start, p.end), query.stems6)
        ):
            score += W_TYPE
        out[row] = (score, tuple(sentences))
    return out


@pytest.mark.parametrize("question", QUESTIONS)
def test_array_scoring_equals_scoring_one_candidate_at_a_time(
    service: QAService, question: str
) -> None:
    idx, query, qvec = _read(service, question)
    oracle = _one_at_a_time(idx, query, qvec)
    ranked = idx.retrieve(query, qvec, 20)
    expected = sorted(oracle, key=lambda r: -oracle[r][0])
    # The last slot may hold the rest of the top passage's section instead.
    assert [c.row for c in ranked[:-1]] == expected[: len(ranked) - 1]
    # Similarities here are float32 dot products of one row at a time, there one matrix product:
    # they agree to float32 precision.
    for c in ranked:
        score, sentences = oracle[c.row]
        assert c.score == pytest.approx(score, abs=1e-6)
        assert [(i, m) for i, _, _, m in c.sentences] == [(i, m) for i, _, _, m in sentences]
        assert [s for _, s, _, _ in c.sentences] == pytest.approx(
            [s for _, s, _, _ in sentences], abs=1e-6
        )
        assert [o for _, _, o, _ in c.sentences] == [o for _, _, o, _ in sentences]


def test_the_rest_of_a_split_section_takes_the_last_slot(service: QAService) -> None:
    # The section that answers this is cut in two passages; the half that did not rank still
    # takes the fifth slot, ahead of passages that scored higher.
    idx, query, qvec = _read(service, "On what date was Trump elected president again?")
    top5 = idx.retrieve(query, qvec, 5)
    first, last = top5[0].passage, top5[-1].passage
    assert (last.doc_id, last.section, last.kind) == (first.doc_id, first.section, first.kind)
    assert top5[-1].score < top5[-2].score
    ranked = idx.retrieve(query, qvec, 20)
    assert top5[-1].row not in [c.row for c in ranked[:5]]
    # With one slot to spare there is no last slot to give: plain ranking.
    assert [c.row for c in idx.retrieve(query, qvec, 2)] == [c.row for c in ranked[:2]]
