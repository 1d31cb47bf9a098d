"""The parser on every trap the seeds set: glued FAQ, repeated FAQ, tables, casing, endings."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.corpus import (
    FAQ_ANSWER,
    FAQ_QUESTION,
    HEADING,
    LIST_ITEM,
    TABLE_HEADER,
    TABLE_ROW,
    Document,
    decode_article,
    load_document,
    parse_document,
    table_row_text,
)
from qa.errors import CorpusFileError
from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"


@pytest.fixture(scope="module")
def docs() -> dict[str, Document]:
    return {p.stem[:3]: load_document(p) for p in sorted(SEEDS.glob("*.txt"))}


def _texts(doc: Document, kind: str) -> list[str]:
    return [doc.text(b) for b in doc.blocks if b.kind == kind]


def test_every_block_offset_is_exact_and_trimmed(docs: dict[str, Document]) -> None:
    for doc in docs.values():
        assert doc.raw == (SEEDS / f"{doc.id}.txt").read_text(encoding="utf-8")
        for b in doc.blocks:
            text = doc.raw[b.start : b.end]
            assert text and text == text.strip(), (doc.id, b)


def test_title_and_byline(docs: dict[str, Document]) -> None:
    assert docs["000"].title == "US-Russia Relations: Ukraine, Diplomacy, and Geopolitical Shifts"
    assert docs["000"].byline == "Eleanor Vance"
    assert docs["001"].byline == "Emily Wilson"
    # 002 and 003 open with a paragraph, not a title: the display title falls back to a heading.
    assert docs["002"].title is None and docs["003"].title is None
    assert docs["003"].display_title.startswith("Understanding Putin")


def test_glued_faq_questions_become_their_own_blocks(docs: dict[str, Document]) -> None:
    doc = docs["000"]
    questions = _texts(doc, FAQ_QUESTION)
    assert "What are the potential obstacles to a peaceful resolution in Ukraine?" in questions
    assert len(questions) == 5
    answers = _texts(doc, FAQ_ANSWER)
    assert answers[0].endswith("regional conflicts like the one in Ukraine.")
    # The answer right before a glued question ends at the period, the question starts after it.
    q = next(b for b in doc.blocks if doc.text(b).startswith("What are the potential obstacles"))
    assert doc.raw[q.start - 8 : q.start] == "Ukraine."


def test_glued_heading_after_an_answer(docs: dict[str, Document]) -> None:
    assert "Conclusion" in _texts(docs["000"], HEADING)
    headings = _texts(docs["001"], HEADING)
    assert "Timeline of Key Events in US-Russia Relations" in headings
    assert "Glossary of Key Terms" in headings


def test_repeated_faq_is_parsed_twice(docs: dict[str, Document]) -> None:
    questions = _texts(docs["001"], FAQ_QUESTION)
    assert questions.count("Why are US-Russia relations so strained right now?") == 2
    assert len(questions) == 6


def test_question_prefix_is_kept_in_text_but_not_in_section(docs: dict[str, Document]) -> None:
    doc = docs["002"]
    q = next(b for b in doc.blocks if b.kind == FAQ_QUESTION)
    assert doc.text(q).startswith("Question: What is the significance")
    assert q.section.startswith("What is the significance")


def test_table_rows_keep_their_header_and_skip_separators(docs: dict[str, Document]) -> None:
    doc = docs["003"]
    rows = [b for b in doc.blocks if b.kind == TABLE_ROW]
    assert not any(set(doc.text(b)) <= set("-|: ") for b in doc.blocks)
    poland = next(b for b in rows if doc.text(b).startswith("Poland"))
    assert poland.header == ("Country", "Role in Ukraine Crisis", "Contribution")
    assert table_row_text(doc.text(poland), poland.header) == (
        "Country: Poland; Role in Ukraine Crisis: Humanitarian Aid; Contribution: Refugee Support"
    )
    assert len([b for b in doc.blocks if b.kind == TABLE_HEADER]) == 5


def test_list_items_and_lowercase_starts(docs: dict[str, Document]) -> None:
    doc = docs["003"]
    items = _texts(doc, LIST_ITEM)
    assert (
        "- military Expenditure: Budget cuts in non-critical areas, "
        "reallocating funds to arm procurement." in items
    )
    assert "In summary" in _texts(doc, HEADING)
    assert any(
        t.startswith("the discussions between Vladimir Putin") for t in _texts(doc, "paragraph")
    )
    # "U.S.Leadership" is not a glued sentence boundary.
    assert "The Role of U.S.Leadership in Shaping Ukraine’s Future" in _texts(doc, HEADING)


def test_paraphrased_article_parses_into_sections(docs: dict[str, Document]) -> None:
    doc = docs["004"]
    assert doc.title == "A Historical past of Interplay and Underlying Tensions"
    headings = _texts(doc, HEADING)
    assert "Putin’s Goals and Strategic Imaginative and prescient" in headings
    assert len(headings) == 15
    assert not _texts(doc, FAQ_QUESTION)


def test_file_without_final_newline_keeps_its_last_sentence(docs: dict[str, Document]) -> None:
    for doc in docs.values():
        assert not doc.raw.endswith("\n")
        assert doc.blocks[-1].end == len(doc.raw.rstrip())


def test_sections_tile_the_document(docs: dict[str, Document]) -> None:
    for doc in docs.values():
        for a, b in zip(doc.sections, doc.sections[1:], strict=False):
            assert a.end == b.start
        assert doc.sections[-1].end == len(doc.raw)


def test_mixed_apostrophes_and_crlf_offsets_stay_exact() -> None:
    raw = "Title Here\r\nBy Jane Doe\r\nRussia’s aims. Ukraine's answer.\r\nWhat next?\r\nNothing."
    doc = parse_document("x", raw)
    assert doc.title == "Title Here" and doc.byline == "Jane Doe"
    assert [doc.text(b) for b in doc.blocks] == [
        "Russia’s aims. Ukraine's answer.",
        "What next?",
        "Nothing.",
    ]
    assert [b.kind for b in doc.blocks] == ["paragraph", FAQ_QUESTION, FAQ_ANSWER]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"caf\xe9 au lait", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CorpusFileError, match=reason):
        decode_article(data)


def test_load_document_hashes_the_file(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"Heading\nBody text.")
    doc = load_document(p)
    assert doc.id == "a" and len(doc.sha256) == 64


def test_the_opening_section_starts_after_the_title_and_byline() -> None:
    raw = "A Title Of An Article\nBy Jane Roe\n\nFirst paragraph of the text.\n\nSecond one.\n"
    doc = parse_document("x", raw)
    assert (doc.title, doc.byline) == ("A Title Of An Article", "Jane Roe")
    (only,) = doc.sections
    assert only.start == raw.index("First") and only.end == len(raw)
    assert doc.text(only).startswith("First paragraph")
