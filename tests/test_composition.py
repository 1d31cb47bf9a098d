"""Short answers (exact spans in the answering sentence) and answers composed from several
citations (duplicates merged into one sentence with all their markers). Made-up text only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from qa.ask.answering import (
    NOT_FOUND,
    Answer,
    Citation,
    anchored_short_answer,
    answer_text,
    settle,
)
from qa.ask.shortanswer import ShortAnswer, factoid_kind, find_short, short_answer

SENTENCE = (
    "After weeks of talks, Trade Secretary Ben Okonkwo met Foreign Minister Lena Alvarez in "
    "Lisbon on March 3, 2021, and some 4,500 delegates attended."
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Where did Okonkwo and Alvarez meet?", "Lisbon"),
        ("When did Okonkwo meet Alvarez?", "March 3, 2021"),
        ("In what year did Okonkwo meet Alvarez?", "March 3, 2021"),
        ("How many delegates attended?", "4,500"),
        ("Who met Alvarez in Lisbon?", "Ben Okonkwo"),
        ("Whom did Okonkwo meet?", "Lena Alvarez"),
        ("Which city hosted the talks?", "Lisbon"),
        ("Why did they meet?", None),  # not a factoid question
        ("What did they discuss?", None),
    ],
)
def test_short_answer_is_an_exact_span_of_the_sentence(question: str, expected: str | None) -> None:
    raw = "Intro line.\n" + SENTENCE + " Later text."
    a = raw.index(SENTENCE)
    found = find_short(question, raw, [(a, a + len(SENTENCE))])
    got = raw[found[0] : found[1]] if found else None
    assert got == expected


def test_which_x_needs_a_name_near_x() -> None:
    raw = "The Harbour Alliance, an organisation of ports, was founded by Mara Feldt."
    found = find_short("Which organisation was founded by Feldt?", raw, [(0, len(raw))])
    assert found and raw[found[0] : found[1]] == "The Harbour Alliance".removeprefix("The ")
    assert find_short("Which river flows there?", raw, [(0, len(raw))]) is None


def test_no_short_answer_when_no_span_is_certain() -> None:
    raw = "The meeting went well, officials said."
    assert find_short("When did they meet?", raw, [(0, len(raw))]) is None
    assert find_short("How many came?", raw, [(0, len(raw))]) is None
    # Only inside the highlighted spans: a date elsewhere is not an answer.
    raw = "They met. It was in May 2020."
    assert find_short("When did they meet?", raw, [(0, 9)]) is None


def test_short_answer_is_verified_against_the_text() -> None:
    raw = "Intro.\n" + SENTENCE
    a = raw.index(SENTENCE)
    s = short_answer("Where did they meet?", "d1", raw, [(a, len(raw))])
    assert s == ShortAnswer("Lisbon", "d1", raw.index("Lisbon"), raw.index("Lisbon") + 6)
    assert raw[s.start : s.end] == s.text
    assert factoid_kind("And when was that?") == ("when", "")
    assert factoid_kind("What happened?") is None


# --- composition ------------------------------------------------------------------------------

DOC1 = "Head.\nThe bridge opened in 2019 after years of delay. It cost 40 million euros."
DOC2 = "Other.\nAfter years of delay, the bridge opened in 2019. Tolls began in 2020."
DOC3 = "Third.\nThe bridge is 2 km long. Ferries stopped running."


def _span(raw: str, sentence: str) -> tuple[int, int]:
    a = raw.index(sentence)
    return a, a + len(sentence)


def _build():  # type: ignore[no-untyped-def]
    docs = {
        d: SimpleNamespace(raw=raw, row_headers={})
        for d, raw in (("d1", DOC1), ("d2", DOC2), ("d3", DOC3))
    }
    return SimpleNamespace(documents=docs)


def _cite(n: int, doc: str, raw: str, sentence: str, close: bool = True) -> Citation:
    start = raw.index("\n") + 1
    return Citation(
        n=n, doc_id=doc, title="t", byline=None, section="s", start=start, end=len(raw),
        text=raw[start:], highlights=(_span(raw, sentence),), score=0.5, doc_sha256="x",
        close=close,
    )  # fmt: skip


def test_repeated_facts_merge_into_one_sentence_with_all_markers() -> None:
    cites = [
        _cite(1, "d1", DOC1, "The bridge opened in 2019 after years of delay."),
        _cite(2, "d2", DOC2, "After years of delay, the bridge opened in 2019."),
        _cite(3, "d3", DOC3, "The bridge is 2 km long."),
    ]
    text = answer_text(cites, _build())
    assert text == (
        "The bridge opened in 2019 after years of delay. [1][2] The bridge is 2 km long. [3]"
    )


def test_only_close_citations_add_sentences_and_at_most_three() -> None:
    cites = [
        _cite(1, "d1", DOC1, "It cost 40 million euros."),
        _cite(2, "d2", DOC2, "Tolls began in 2020.", close=False),
        _cite(3, "d3", DOC3, "The bridge is 2 km long."),
        _cite(4, "d3", DOC3, "Ferries stopped running."),
        _cite(5, "d2", DOC2, "After years of delay, the bridge opened in 2019."),
    ]
    text = answer_text(cites, _build())
    assert "Tolls" not in text
    assert text.count(".") == 3 and "[5]" not in text


def test_used_flags_and_the_short_answer_follow_the_answer_text() -> None:
    cites = (
        _cite(1, "d1", DOC1, "The bridge opened in 2019 after years of delay."),
        _cite(2, "d2", DOC2, "Tolls began in 2020.", close=False),
    )
    answer = Answer("When did the bridge open?", True, "", cites)
    done = settle(answer, _build())
    assert [c.used for c in done.citations] == [True, False]
    assert done.short_answer is not None and done.short_answer.text == "2019"
    assert DOC1[done.short_answer.start : done.short_answer.end] == "2019"
    d = done.to_dict()
    assert d["searched"] == "When did the bridge open?"
    assert d["short_answer"]["text"] == "2019" and d["citations"][0]["used"] is True
    assert "close" not in d["citations"][0]
    # Not answerable: no sentence, nothing used, no short answer.
    none = settle(Answer("q", False, "", cites), _build())
    assert none.answer == NOT_FOUND and not any(c.used for c in none.citations)
    assert none.short_answer is None


def test_used_citations_come_first_numbered_from_one() -> None:
    cites = (
        _cite(1, "d1", DOC1, "The bridge opened in 2019 after years of delay."),
        _cite(2, "d2", DOC2, "Tolls began in 2020.", close=False),
        _cite(3, "d3", DOC3, "The bridge is 2 km long."),
    )
    done = settle(Answer("How long is the bridge?", True, "", cites), _build())
    # Ranked 1, 2, 3 with 2 unused: shown as 1, 2 (was 3), then 3 (was 2), never "[1][3]".
    assert [(c.n, c.doc_id, c.used) for c in done.citations] == [
        (1, "d1", True),
        (2, "d3", True),
        (3, "d2", False),
    ]
    assert done.answer.endswith("The bridge is 2 km long. [2]") and "[3]" not in done.answer
    assert settle(done, _build()) == done  # settling again changes nothing


def test_a_short_answer_moves_with_its_citation_or_is_dropped() -> None:
    c = _cite(1, "d1", DOC1, "The bridge opened in 2019 after years of delay.")
    at = DOC1.index("2019")
    answer = Answer("q", True, "x [1]", (c,), short_answer=ShortAnswer("2019", "d1", at, at + 4))
    assert anchored_short_answer(answer) is answer
    spans = tuple((a + 5, b + 5) for a, b in c.highlights)
    shifted = Citation(
        **{**c.__dict__, "start": c.start + 5, "end": c.end + 5, "highlights": spans}
    )
    moved = anchored_short_answer(
        Answer("q", True, "x", (shifted,), short_answer=answer.short_answer)
    )
    assert moved.short_answer == ShortAnswer("2019", "d1", at + 5, at + 9)
    other = _cite(1, "d3", DOC3, "The bridge is 2 km long.")
    gone = anchored_short_answer(Answer("q", True, "x", (other,), short_answer=answer.short_answer))
    assert gone.short_answer is None


def test_a_highlight_joining_table_rows_spells_out_each_row_with_its_header() -> None:
    from qa.corpus import parse_document

    raw = (
        "Aid\n\nSome text about aid.\n\n| Country | Contribution |\n|---|---|\n"
        "| Norway | Fisheries |\n| Chile | Copper |\n"
    )
    build = SimpleNamespace(documents={"d": parse_document("d", raw)})

    def read(a: int, b: int) -> str:
        c = Citation(
            n=1, doc_id="d", title="t", byline=None, section="s", start=0, end=len(raw),
            text=raw, highlights=((a, b),), score=0.5, doc_sha256="x", close=True,
        )  # fmt: skip
        return answer_text([c], build)

    a, b = raw.index("| Norway"), raw.index("Copper |") + len("Copper |")
    assert read(a, b) == (
        "Country: Norway; Contribution: Fisheries. Country: Chile; Contribution: Copper. [1]"
    )
    # One row and plain sentences read as before.
    assert read(a, raw.index("Fisheries |") + 11) == "Country: Norway; Contribution: Fisheries. [1]"
    assert read(raw.index("Some"), raw.index("aid.") + 4) == "Some text about aid. [1]"


def test_brackets_in_an_articles_own_words_are_not_markers() -> None:
    raw = "Head.\nThe report [12] was cited in 2019 by the board [1] itself."
    docs = {"d1": SimpleNamespace(raw=raw, row_headers={})}
    sentence = "The report [12] was cited in 2019 by the board [1] itself."
    cites = (_cite(1, "d1", raw, sentence),)
    done = settle(
        Answer("When was the report cited?", True, "", cites), SimpleNamespace(documents=docs)
    )
    assert done.answer == sentence + " [1]" and [c.used for c in done.citations] == [True]
