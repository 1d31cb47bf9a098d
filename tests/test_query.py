"""Question understanding: answer types, source clauses, acronyms, focus, authorship."""

from __future__ import annotations

import pytest

from qa.ask.query import (
    answer_tokens,
    content_terms,
    corpus_acronyms,
    is_new_answer,
    join_initials,
    parse_query,
    question_focus,
)


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        ("When was Trump re-elected?", "re-elected on November 5, 2024.", True),
        ("When was Trump re-elected?", "Trump's re-election may shift policy.", False),
        (
            "How many refugees has Poland taken in?",
            "Poland gives refugee support since 2022.",
            False,
        ),
        ("How many soldiers were sent?", "Some 4,000 soldiers were sent.", True),
        ("Where did Rubio and Lavrov meet?", "They met in Malaysia.", True),
        ("In which Malaysian city did they meet?", "They met in Malaysia.", False),
    ],
)
def test_answer_type_needs_new_information(question: str, text: str, expected: bool) -> None:
    q = parse_query(question)
    assert q.wanted is not None
    assert is_new_answer(answer_tokens(q.wanted, text, 0, len(text)), q.stems6) is expected


def test_questions_without_a_typed_form_expect_nothing() -> None:
    assert parse_query("Why are relations strained?").wanted is None


def test_source_clause_is_left_out_of_the_embedding_only() -> None:
    q = parse_query(
        "What is the most probable outcome of the war according to the article on the "
        "prospects of Putin-Trump talks?"
    )
    assert q.embed == "What is the most probable outcome of the war?"
    assert "Putin-Trump" in q.search
    t = parse_query("Which country provides refugee support according to the table?")
    assert t.wants_table and "table" not in t.embed
    named = parse_query("Since what year has the conflict gone on, according to Eleanor Vance?")
    assert "Vance" not in named.embed and "Vance" in named.search


def test_clause_stays_when_it_is_the_whole_question() -> None:
    q = parse_query("What is in the table?")
    assert q.embed == q.search


def test_acronyms_the_corpus_never_uses_are_expanded() -> None:
    acronyms = corpus_acronyms(
        ["The European Union has imposed sanctions. The US and NATO agree. Unified Stance."]
    )
    assert acronyms["EU"] == "European Union"
    assert "US" not in acronyms  # the corpus writes "US" itself
    assert "European Union" in parse_query("What did the EU do?", acronyms).search


def test_focus_and_author_intent() -> None:
    assert question_focus("Who is the Secretary General of NATO?") == {
        "secretari",
        "general",
        "nato",
    }
    assert question_focus("Why is it so?") == set()
    assert parse_query("Who wrote the piece with the SWOT analysis?").author
    assert not parse_query("Who met Lavrov?").author


def test_initials_and_stop_words() -> None:
    assert join_initials("U.S. officials and the U.K.") == "US officials and the UK"
    assert content_terms("What did the U.S. say about Russia’s sanctions?") == {
        "us",
        "russia",
        "sanction",
    }


def test_author_questions_ask_for_the_byline_not_a_focus() -> None:
    q = parse_query("Who is the author of the article whose TL;DR covers the Rubio-Lavrov talks?")
    assert q.author and q.focus == set()


def test_month_and_ordinal_year_questions_read_as_what_they_ask() -> None:
    from qa.ask.query import answer_type

    month = answer_type("In which month was the treaty signed?")
    assert month is not None and month.search("signed in March") and not month.search("in 1990")
    year = answer_type("Which year was the treaty signed?")
    assert year is not None and year.search("in 1990")
    assert answer_type("What year of the drought is it now?") is None  # an ordinal, not 1990


def test_an_opener_does_not_hide_what_the_question_asks_for() -> None:
    from qa.ask.query import answer_type

    assert answer_type("So when did he resign?") == answer_type("When did he resign?")
    assert answer_type("And, where was it held?") == answer_type("Where was it held?")
    assert answer_type("Andrew said what?") is None  # a name that starts like an opener


def test_a_place_named_by_what_it_is_answers_where() -> None:
    from qa.ask.query import answer_tokens, answer_type, is_new_answer, question_stems

    where = answer_type("Where is the lantern festival held?")
    assert where is not None
    text = "It is held every spring in the harbour town of Quillmouth."
    found = answer_tokens(where, text, 0, len(text))
    assert is_new_answer(found, question_stems("Where is the lantern festival held?"))
    # Not any capitalised word after "in": "in recent talks with Lavrov" names no place.
    assert not where.search("in recent talks with Lavrov")


def test_the_question_s_form_is_read_in_its_own_words_only() -> None:
    assert parse_query("Which section covers the shooting?").wants_heading
    # A follow-up carries the last question's words in parentheses; they ask for nothing.
    assert not parse_query("How old is he? (section, ceasefire, article)").wants_heading
    assert parse_query("Who wrote the piece on tariffs?").author
    assert not parse_query("What does Vance's summary say? (Vance, author, piece)").author
