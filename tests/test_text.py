"""Sentence spans and folds on the traps the corpus sets."""

from __future__ import annotations

from qa.text import fold, sentence_spans, words


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def test_glued_sentences_are_split() -> None:
    text = "like the one in Ukraine.What are the potential obstacles?Obstacles include it."
    assert _sentences(text) == [
        "like the one in Ukraine.",
        "What are the potential obstacles?",
        "Obstacles include it.",
    ]


def test_abbreviations_and_initials_do_not_split() -> None:
    text = "Retired Lt. Gen. Keith Kellogg met U.S. officials. The U.S.Leadership grew."
    assert _sentences(text) == [
        "Retired Lt. Gen. Keith Kellogg met U.S. officials.",
        "The U.S.Leadership grew.",
    ]


def test_lowercase_sentence_start_is_a_sentence() -> None:
    text = "Sanctions bite. additionally, the effectiveness can be assessed."
    assert _sentences(text) == [
        "Sanctions bite.",
        "additionally, the effectiveness can be assessed.",
    ]


def test_quotes_close_a_sentence_and_newlines_always_split() -> None:
    text = "He said “we are way closer.” Then he left\nA new line"
    assert _sentences(text) == ["He said “we are way closer.”", "Then he left", "A new line"]


def test_offsets_are_absolute_within_a_window() -> None:
    text = "xx First one. Second one. yy"
    spans = sentence_spans(text, 3, 25)
    assert [text[a:b] for a, b in spans] == ["First one.", "Second one."]


def test_blank_and_empty_text_give_no_spans() -> None:
    assert sentence_spans("") == []
    assert sentence_spans(" \n\t ") == []


def test_fold_equates_curly_and_straight_apostrophes_and_case() -> None:
    assert fold("Russia’s  WAR\n") == fold("russia's war")
    assert words("Ukraine’s NATO bid") == ["ukraine's", "nato", "bid"]
