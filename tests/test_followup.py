"""Follow-up questions: which depend on the conversation, and what each is searched as.

Made-up sentences only: the rules read the form of English questions, not the corpus.
"""

from __future__ import annotations

import pytest

from qa.ask.followup import Turn, check_history, dependence, key_words, names, resolve
from qa.errors import QuestionError

MEETING = Turn(
    "Where did Alvarez and Okonkwo meet?",
    "Foreign Minister Lena Alvarez met Trade Secretary Ben Okonkwo in Lisbon. [1]",
    (("doc_a", 10, 200),),
)
WHO = Turn(
    "Who is the chair of the Harbour Commission?",
    "Mara Feldt has chaired the Harbour Commission since 2019. [1]",
    (("doc_b", 0, 90),),
)
PLAN = Turn("What did Norland say about the water plan?", "Norland backed it. [1]")


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("What did she say about it?", "reference"),
        ("Why did they leave?", "reference"),
        ("Was this announced before?", "reference"),
        ("Did the same happen in the north?", "reference"),
        ("What did the latter promise?", "reference"),
        ("Who wrote that piece?", "reference"),
        ("What happened there?", "reference"),
        ("Who said that?", "reference"),
        ("And Vellmark?", "ellipsis"),
        ("What about the OECD?", "ellipsis"),
        ("How so?", "ellipsis"),
        ("Since when?", "ellipsis"),
        ("Why not?", "ellipsis"),
        ("But what did the council decide?", "opener"),
        ("So what changed afterwards?", "opener"),
        ("And what else?", "ellipsis"),
        ("Casualties?", "short"),
        ("2024?", "short"),  # a year or a code is a word to lean on
        ("Q3?", "short"),
        ("Any details?", "short"),
    ],
)
def test_dependent_questions_are_recognised(question: str, kind: str) -> None:
    assert dependence(question) == kind


@pytest.mark.parametrize(
    "question",
    [
        "Who is Feldt?",
        "What is the OECD?",
        "What did Norland say about its water plan?",  # bound by the name before it
        "What did Alvarez say about her plans?",
        "Are there tariffs on steel?",  # existential "there"
        "Did the minister say that the port would close?",  # "that" as a conjunction
        "What happened this year in Lisbon?",  # a time, not a reference
        "Which country hosted the summit in 2019?",
        # An opener before a question with its own name and topic: a change of subject.
        "And what did Feldt decide about the harbour tariffs?",
        # No word at all: not a question, and the history cannot make it one.
        "x",
        "?",
        "7 ?",
    ],
)
def test_standalone_questions_are_searched_as_typed(question: str) -> None:
    assert dependence(question) is None
    r = resolve(question, [MEETING, WHO])
    assert r.kind == "standalone" and r.text == question and not r.followup


def test_a_pronoun_carries_the_last_turns_names_and_words() -> None:
    r = resolve("What did the president think about it?", [MEETING])
    assert r.followup and r.text.startswith("What did the president think about it? (")
    assert "Alvarez" in r.text and "Okonkwo" in r.text and "meet" in r.text
    assert r.docs == ("doc_a",)


def test_there_carries_what_the_where_answer_found() -> None:
    assert "Lisbon" in resolve("What happened there?", [MEETING]).text
    assert "Lisbon" not in resolve("What did the president think about it?", [MEETING]).text


def test_he_and_she_become_the_one_person_a_who_answer_names() -> None:
    r = resolve("Where did she study?", [WHO])
    assert r.text.startswith("Where did Mara Feldt study?")
    r = resolve("What did her deputy announce?", [WHO])
    assert r.text.startswith("What did Mara Feldt's deputy announce?")
    # Before an acronym too; but "her" as an object stays the person.
    r = resolve("What does her TL;DR say?", [WHO])
    assert r.text.startswith("What does Mara Feldt's TL;DR say?")
    assert resolve("Who met her in Lisbon?", [WHO]).text.startswith("Who met Mara Feldt in")
    paid = resolve("Did they pay her US$5,000?", [WHO]).text
    assert paid.startswith("Did they pay Mara Feldt US$")


def test_he_after_who_is_x_is_x_not_the_role_the_answer_gives() -> None:
    # The short answer of "Who is X?" is X's role: "he" still means X.
    turn = Turn("Who is Mara Feldt?", "Mara Feldt, as Norland's Water Minister, spoke. [1]")
    assert resolve("How old is he?", [turn]).text.startswith("How old is Mara Feldt?")
    turn = Turn("who is feldt", "Water Minister Mara Feldt spoke. [1]")
    assert resolve("What did he say?", [turn]).text.startswith("What did feldt say?")


def test_the_latter_and_the_former_become_the_names_of_the_last_question() -> None:
    assert resolve("What did the latter say?", [MEETING]).text.startswith("What did Okonkwo say?")
    assert resolve("What did the former say?", [MEETING]).text.startswith("What did Alvarez say?")


def test_an_elliptical_name_takes_the_place_of_the_first_name() -> None:
    assert resolve("And Vellmark?", [PLAN]).text == "What did Vellmark say about the water plan?"
    r = resolve("What about the OECD?", [PLAN])
    assert r.text == "What did the OECD say about the water plan?"
    # A phrase that names nothing is searched with the last question's focus.
    r = resolve("And the costs?", [PLAN])
    assert r.text.startswith("And the costs? (") and "Norland" in r.text


def test_bare_question_words_carry_the_focus() -> None:
    for q in ("How so?", "Since when?", "Why?"):
        r = resolve(q, [PLAN])
        assert r.kind == "ellipsis" and "Norland" in r.text and "water" in r.text


def test_a_change_of_topic_is_not_dragged_back() -> None:
    r = resolve("When did the Dunmore bridge open?", [MEETING, PLAN])
    assert r.text == "When did the Dunmore bridge open?"


def test_resolution_follows_the_conversation_turn_by_turn() -> None:
    # The second turn leaned on the first; the third leans on the second's resolved reading.
    history = [PLAN, Turn("And Vellmark?", "Vellmark opposed it. [1]")]
    r = resolve("Why?", history)
    assert "Vellmark" in r.text and "water" in r.text


def test_no_history_means_no_follow_up() -> None:
    assert resolve("What did she say?", []).text == "What did she say?"


def test_names_and_key_words() -> None:
    assert names("Did Lena Alvarez meet the Secretary of State of Norland?") == [
        "Lena Alvarez",
        "Secretary of State of Norland",
    ]
    assert names("What did the EU and U.N. say?") == ["EU", "U.N."]
    assert names("Where is it?") == []
    assert key_words("What did the council decide about the harbour tariffs?") == [
        "council",
        "decide",
        "harbour",
        "tariffs",
    ]


def test_history_is_checked() -> None:
    turns = check_history([{"question": "a?", "answer": "b", "citations": []}])
    assert turns == (Turn("a?", "b", ()),)
    with pytest.raises(QuestionError, match="limit is 10"):
        check_history([{"question": "a"}] * 11)
    with pytest.raises(QuestionError, match="history\\[0\\]"):
        check_history([{"question": 3}])
    with pytest.raises(QuestionError, match="citations"):
        check_history([{"question": "a", "citations": [{"doc_id": "d", "start": "1", "end": 2}]}])


def test_she_after_who_wrote_is_the_bylines_author() -> None:
    history = check_history(
        [
            {
                "question": "Who wrote the article about the Rubio-Lavrov meeting?",
                "answer": "US-Russia Relations: Ukraine, Diplomacy, and Geopolitical Shifts "
                "By Eleanor Vance [1]",
            }
        ]
    )
    assert resolve("what else does she cover", history).text.startswith(
        "what else does Eleanor Vance cover"
    )


def test_a_follow_up_favours_the_article_the_last_answer_came_from(service) -> None:  # type: ignore[no-untyped-def]
    from qa.ask.features import PASSAGE_FEATURES

    ranker = service.ranker()
    # The lift is the passage model's learned weight for "last_cited_article", and a lift.
    lift = float(ranker.weights.passage.coef[PASSAGE_FEATURES.index("last_cited_article")])
    assert lift > 0
    query = ranker.parse_query("What about the sanctions?")
    qvec = service.embedder.encode([query.embed])[0]
    plain = ranker.retrieve(query, qvec, 10)
    top_doc = plain[0].passage.doc_id
    other = next(c for c in plain if c.passage.doc_id != top_doc)
    lifted = ranker.retrieve(query, qvec, 10, prior_docs=(other.passage.doc_id, top_doc))
    by_row = {c.row: c.score for c in lifted}
    # Only the first article counts.
    assert by_row[other.row] == pytest.approx(other.score + lift)
    same = [c for c in plain if c.passage.doc_id == top_doc]
    assert all(by_row[c.row] == pytest.approx(c.score) for c in same)
    favoured = other.passage.doc_id
    before = [c.row for c in plain]
    after = [c.row for c in lifted]
    moves = [before.index(r) - after.index(r) for r in after if r in before]
    moves_favoured = [
        before.index(c.row) - after.index(c.row)
        for c in lifted
        if c.passage.doc_id == favoured and c.row in before
    ]
    assert all(m >= 0 for m in moves_favoured) and any(m > 0 for m in moves_favoured), moves


def test_him_after_who_is_the_answer_s_person_past_an_abbreviated_title() -> None:
    history = check_history(
        [
            {
                "question": "who is the special envoy for ukraine",
                "answer": "Discussions led by Secretary of State Marco Rubio and retired Lt. Gen. "
                "Keith Kellogg, Special Envoy for Ukraine and Russia, highlight an "
                "administration keen on mediating. [1]",
            }
        ]
    )
    assert "Keith Kellogg" in resolve("And who leads the talks with him?", history).text


def test_the_person_an_answer_of_several_headlines_names_is_the_first_ones() -> None:
    # Two bylines composed into one answer: the name is the first's, not a run across both.
    history = check_history(
        [
            {
                "question": "Who wrote the article on the harbour strike?",
                "answer": "Harbour Strike: Ports, Unions and Shifts By Mara Feldt [1] "
                "Harbour Strike: Unions and Ports By Jon Aalto [2]",
            }
        ]
    )
    assert resolve("what else does she cover", history).text.startswith(
        "what else does Mara Feldt cover"
    )


def test_and_x_after_a_which_list_question_is_one_more_candidate_not_a_new_place() -> None:
    history = (
        Turn(
            "Which countries have pledged ships to the Arctic patrol?",
            "Nordic states such as Norway and Iceland pledged ships [1]",
        ),
    )
    text = resolve("what about Canada?", history).text
    # Not "Which countries have pledged ships to the Canada patrol?": Canada is carried along.
    assert text.startswith("what about Canada?") and "Arctic" in text
    # After a question about one thing, "And X?" still asks the same of X.
    history = (Turn("When did Norway join the treaty?", "It joined in 1994 [1]"),)
    assert resolve("and Iceland?", history).text == "When did Iceland join the treaty?"


def test_that_before_a_noun_ending_in_s_still_refers_back() -> None:
    assert dependence("What caused that crisis?") == "reference"
    assert dependence("Who reported that news?") == "reference"
    assert dependence("Who wrote the article that calls the war a battle?") is None


def test_a_wordless_turn_after_a_conversation_is_not_answered(service) -> None:  # type: ignore[no-untyped-def]
    history = [
        Turn("Where did Rubio and Lavrov meet?"),
        Turn("What did they agree on?"),
    ]
    for junk in ("x", "?", "7"):
        answer = service.ask(junk, history=history)
        assert not answer.answerable and answer.searched == junk, junk
