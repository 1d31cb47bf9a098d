"""The chunker: exact offsets, full coverage, limits, sections, FAQ pairs and duplicates."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.chunking import ChunkSettings, Passage, chunk_document, merge_duplicates
from qa.corpus import HEADING, Document, load_document, parse_document
from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
LIMITS = ChunkSettings()


@pytest.fixture(scope="module")
def docs() -> list[Document]:
    return [load_document(p) for p in sorted(SEEDS.glob("*.txt"))]


def _check_invariants(doc: Document, passages: list[Passage], s: ChunkSettings) -> None:
    covered = set()
    for p in passages:
        assert doc.raw[p.start : p.end] == p.text
        assert p.text == p.text.strip() and p.text
        assert len(p.text) <= s.max_chars
        for a, b in p.sentences:
            assert p.start <= a < b <= p.end
        covered.update(range(p.start, p.end))
    # Every non-blank character of every content block lies in a passage.
    for b in doc.blocks:
        if b.kind != HEADING:
            missing = [
                i for i in range(b.start, b.end) if i not in covered and not doc.raw[i].isspace()
            ]
            assert not missing, (b, missing[:5])


def test_seed_passages_are_exact_and_within_limits(docs: list[Document]) -> None:
    for doc in docs:
        passages = chunk_document(doc)
        _check_invariants(doc, passages, LIMITS)
        assert all(p.tokens <= LIMITS.max_tokens for p in passages)


def test_passages_never_cross_a_heading(docs: list[Document]) -> None:
    for doc in docs:
        heads = [b for b in doc.blocks if b.kind == HEADING]
        for p in chunk_document(doc):
            # Headings may only open a passage (a run of them: a heading and its sub-heading).
            inside = [h for h in heads if p.start <= h.start < p.end]
            opening = p.sentences[: len(inside)]
            assert [(h.start, h.end) for h in inside] == list(opening), (doc.id, p.section)


def test_faq_question_and_answer_form_one_passage(docs: list[Document]) -> None:
    doc = docs[0]
    faq = [p for p in chunk_document(doc) if p.kind == "faq"]
    assert len(faq) == 5
    p = faq[1]
    assert p.text.startswith(
        "What are the potential obstacles to a peaceful resolution in Ukraine?"
    )
    assert p.text.endswith("the involvement of external actors.")
    assert p.section == "What are the potential obstacles to a peaceful resolution in Ukraine?"


def test_repeated_faq_is_merged_with_every_location(docs: list[Document]) -> None:
    passages = merge_duplicates([p for d in docs for p in chunk_document(d)])
    why = [p for p in passages if p.text.startswith("Why are US-Russia relations so strained")]
    assert len(why) == 1
    assert len(why[0].also_at) == 1
    loc = why[0].also_at[0]
    doc001 = docs[1]
    assert doc001.raw[loc.start : loc.end].startswith("Why are US-Russia relations so strained")
    assert loc.start > why[0].end


def test_table_passage_spells_out_rows_with_header(docs: list[Document]) -> None:
    passages = chunk_document(docs[3])
    table = next(p for p in passages if "Poland | Humanitarian Aid" in p.text)
    assert "Country: Poland; Role in Ukraine Crisis: Humanitarian Aid" in table.search_text


def test_long_paragraph_splits_at_sentences_without_orphans() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank today. "
    raw = "Heading\n" + sentence * 40
    doc = parse_document("long", raw.strip())
    s = ChunkSettings(max_chars=600, max_tokens=120, min_tokens=20)
    passages = chunk_document(doc, s)
    _check_invariants(doc, passages, s)
    assert len(passages) >= 5
    sizes = [len(p.text) for p in passages]
    assert min(sizes) > max(sizes) / 2, sizes  # balanced: no tiny tail
    assert all(p.text.endswith(".") for p in passages)


def test_sentence_longer_than_limit_is_cut_at_spaces() -> None:
    raw = "word " * 600
    doc = parse_document("w", raw.strip())
    passages = chunk_document(doc)
    _check_invariants(doc, passages, LIMITS)
    assert all(not p.text.startswith(" ") and "wor d" not in p.text for p in passages)


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=3000
) | st.lists(
    st.sampled_from(
        [
            "Heading Line",
            "A sentence here.",
            "Glued.What now?",
            "- item one",
            "a | b |",
            "---|---|",
            "x" * 300,
            "\n",
            "\n\n",
            " ",
            "é’“”🙂",
            "Question: Why?",
            "U.S. aid.",
        ]
    ),
    max_size=80,
).map(lambda parts: "\n".join(parts))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text)
def test_chunker_invariants_on_arbitrary_text(raw: str) -> None:
    doc = parse_document("any", raw)
    for b in doc.blocks:
        assert doc.raw[b.start : b.end].strip() == doc.raw[b.start : b.end]
    s = ChunkSettings(max_chars=400, max_tokens=100, min_tokens=10)
    _check_invariants(doc, chunk_document(doc, s), s)


@settings(max_examples=100, deadline=None)
@given(_text)
def test_parser_leaves_no_text_behind(raw: str) -> None:
    """Every non-blank character is in a block, or on a title, byline or table-rule line."""
    doc = parse_document("any", raw)
    inside = set()
    for b in doc.blocks:
        inside.update(range(b.start, b.end))
    pos = 0
    for line_raw in raw.splitlines(keepends=True):
        line = line_raw.strip()
        for i in range(pos, pos + len(line_raw)):
            if raw[i].isspace() or i in inside:
                continue
            structural = line in (doc.title, f"By {doc.byline}")
            assert structural or set(line) <= set("-|: \t"), (i, line)
        pos += len(line_raw)


def test_a_section_s_first_passage_opens_with_its_heading(docs: list[Document]) -> None:
    opened = 0
    for doc in docs:
        passages = chunk_document(doc)
        for h in (b for b in doc.blocks if b.kind == HEADING):
            p = next((p for p in passages if p.start <= h.start < p.end), None)
            if p is None:
                continue  # a heading over an FAQ, or with no room in a full first passage
            opened += 1
            assert (h.start, h.end) in p.sentences  # the heading line is a sentence alone
            assert p.kind != "faq" and p.search_text.count(doc.raw[h.start : h.end]) == 1
    assert opened >= 48  # of the seeds' 54 headings
