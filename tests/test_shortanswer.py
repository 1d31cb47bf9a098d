"""Short answers: an exact span of a highlighted sentence, of the kind the question asks for."""

from __future__ import annotations

from qa.ask.shortanswer import find_short


def test_who_wrote_is_the_bylines_name_not_the_titles() -> None:
    raw = "US-Russia Relations: Ukraine, Diplomacy, and Geopolitical Shifts\nBy Eleanor Vance\n"
    q = "Who wrote the article about the Rubio-Lavrov meeting?"
    span = find_short(q, raw, [(0, len(raw) - 1)])
    assert span is not None and raw[span[0] : span[1]] == "Eleanor Vance"


def test_where_is_the_place_the_question_does_not_name() -> None:
    raw = "Rubio met with Russian Foreign Minister Sergey Lavrov in Malaysia."
    span = find_short("Where did Rubio and Lavrov meet?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Malaysia"
