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


def test_a_table_row_answers_with_the_cell_under_the_header_the_question_names() -> None:
    raw = "Country | Role |\n---|---|\nNorway | Fisheries Support |\nChile | Copper Exports |\n"
    row = raw.index("Chile")
    headers = {row: ("Country", "Role")}
    q = "Which country handles copper exports, according to the table?"
    span = find_short(q, raw, [(row, raw.index("\n", row))], headers)
    assert span is not None and raw[span[0] : span[1]] == "Chile"
    # Without the header the role's capitalised words were taken for the place.
    assert find_short("Which role does Chile play?", raw, [(row, raw.index("\n", row))], headers)


def test_which_x_without_x_in_the_sentence_takes_a_true_name_near_the_question_words() -> None:
    raw = "The flooding of the harbour was first reported by BBC on Monday."
    span = find_short("Which broadcaster reported the flooding?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "BBC"
    # A capitalised opening word or a nationality is no answer.
    raw = "Worldwide, Danish officials reported the flooding late."
    assert find_short("Which agency reported the flooding?", raw, [(0, len(raw))]) is None


def test_a_plural_which_x_gets_the_whole_list_of_names() -> None:
    raw = "Talks could be hosted by the Red Cross, the Arctic Council or Norway, officials said."
    span = find_short("Which organisations could host the talks?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Red Cross, the Arctic Council or Norway"
    raw = "Both Chile and Peru signed the pact."
    span = find_short("Which two countries signed the pact?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Chile and Peru"


def test_a_choice_between_the_questions_own_options_gets_no_short_answer() -> None:
    raw = "The treaty was signed in 1990, two years before the summit in Oslo."
    assert find_short("Which came first, the treaty or the summit?", raw, [(0, len(raw))]) is None


def test_which_x_is_the_head_noun_past_counts_and_adjectives() -> None:
    from qa.ask.shortanswer import factoid_kind

    assert factoid_kind("Which European countries sent observers?") == ("where", "countries")
    assert factoid_kind("which two western alliances did it join") == ("which", "alliances")
    assert factoid_kind("Which Middle Eastern conflict was discussed?") == ("which", "conflict")
    assert factoid_kind("Which official resigned?") == ("which", "official")
    assert factoid_kind("Which cities were flooded?") == ("where", "cities")


def test_who_prefers_a_persons_full_name_and_keeps_first_names_ending_like_nationalities() -> None:
    raw = "Dan Hoffman, a former CIA Moscow station chief, said the thaw would take years."
    span = find_short("Who said the thaw would take years?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Dan Hoffman"
    raw = "The talks were led by Russian Foreign Minister Sergey Lavrov."
    span = find_short("Who led the talks?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Sergey Lavrov"


def test_a_name_the_question_holds_is_not_its_answer_even_possessive() -> None:
    raw = "Russia's President Vladimir Putin spoke."
    span = find_short("who is russias president", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "Vladimir Putin"


def test_hyphen_joined_names_are_never_cut_at_the_hyphen() -> None:
    raw = "The Rubio-Lavrov talks were reported by CNN and AP News."
    span = find_short("Which news outlets reported the talks?", raw, [(0, len(raw))])
    assert span is not None and raw[span[0] : span[1]] == "CNN and AP News"
    raw2 = "Senator Jane Doe-Smith spoke."
    span2 = find_short("Who spoke?", raw2, [(0, len(raw2))])
    assert span2 is not None and raw2[span2[0] : span2[1]] == "Jane Doe-Smith"


def test_a_table_answer_comes_from_the_row_the_question_describes() -> None:
    raw = (
        "Country | Role | Contribution\n"
        "Germany | Diplomacy | Negotiation Support\n"
        "Poland | Aid | Refugee Support"
    )
    rows = [(raw.index("Germany"), raw.index("Poland") - 1), (raw.index("Poland"), len(raw))]
    header = ("Country", "Role", "Contribution")
    headers = {a: header for a, _ in rows}
    q = "Which country gives refugee support in the table?"
    span = find_short(q, raw, rows, headers)
    assert span is not None and raw[span[0] : span[1]] == "Poland"
    joined = [(rows[0][0], rows[1][1])]  # neighbouring rows highlighted as one span
    span = find_short(q, raw, joined, headers)
    assert span is not None and raw[span[0] : span[1]] == "Poland"


def short(q: str, raw: str) -> str | None:
    """The short answer of `q` when all of `raw` is highlighted."""
    span = find_short(q, raw, [(0, len(raw))])
    return raw[span[0] : span[1]] if span else None


def test_who_is_a_named_person_is_answered_with_their_role() -> None:
    # The description set off after the name, without its article.
    raw = "Sergey Lavrov, as Russia's Foreign Minister, is a seasoned diplomat."
    assert short("Who is Sergey Lavrov?", raw) == "Russia's Foreign Minister"
    raw = "Marco Rubio, the Secretary of State, leads the talks."
    assert short("who is marco rubio", raw) == "Secretary of State"
    # Or the title words before it, past the first name.
    raw = "Rubio met with Russian Foreign Minister Sergey Lavrov in Malaysia."
    assert short("Who's Lavrov?", raw) == "Russian Foreign Minister"
    # A clause after the name without a title is no role, and no other name is a guess.
    raw = "Trump, who won the election, met Dan Hoffman."
    assert short("Who is Trump?", raw) is None
    # "Who is the envoy?" asks for a name, as before.
    raw = "Retired Lt. Gen. Keith Kellogg is the envoy."
    assert short("who is the special envoy", raw) == "Keith Kellogg"


def test_who_is_with_a_lowercase_predicate_still_asks_for_a_name() -> None:
    assert short("who was killed", "Dan Hoffman was killed in the attack.") == "Dan Hoffman"
    # A title before the name never reaches back past the sentence before it.
    assert short("Who is Lavrov?", "He met the Trade Minister. Lavrov said no.") is None
    assert short("Who is Lavrov?", "He met Trade Minister Ivanov. Lavrov said no.") is None
    # A full stop after a place is no abbreviation, and a comma ends the title.
    raw = "They flew to Iran. Foreign Minister Lavrov said no."
    assert short("Who is Lavrov?", raw) == "Foreign Minister"
    raw = "Russia's Foreign Minister, Sergey Lavrov, said no."
    assert short("Who is Sergey Lavrov?", raw) == "Russia's Foreign Minister"


def _short(question: str, raw: str) -> str | None:
    span = find_short(question, raw, [(0, len(raw))])
    return None if span is None else raw[span[0] : span[1]]


def test_a_lead_in_about_the_reader_is_not_a_question_for_a_date() -> None:
    from qa.ask.shortanswer import factoid_kind

    assert factoid_kind("When reading the report, who signed it?") == ("who", "")
    assert factoid_kind("When going through the piece, I wondered what it meant") is None
    assert factoid_kind("When did the talks start?") == ("when", "")


def test_which_x_without_a_name_is_the_noun_phrase_x_heads() -> None:
    raw = "Charges over its alleged role in the 2019 regional election were dropped."
    assert _short("Which election was the party accused over?", raw) == "2019 regional election"
    raw = "The inquiry of the former council's missing funds has closed, officials said."
    assert (
        _short("Which inquiry has closed?", raw) == "inquiry of the former council's missing funds"
    )
    # X alone says nothing the question does not: no short answer.
    assert _short("Which election was it?", "The election was close.") is None


def test_a_plural_which_x_takes_a_list_introduced_by_such_as() -> None:
    raw = (
        "Progress is judged by measures such as wage growth, rents, and school places, allies say."
    )
    assert _short("Which measures judge progress?", raw) == "wage growth, rents, and school places"
    # Without "and" or "or" there is no list to take.
    assert _short("Which measures judge progress?", "It rests on measures such as rents.") is None
    # "include" introduces one too.
    raw = "Areas of common interest include water rights, fishing, and river dredging."
    assert _short("Which areas interest both?", raw) == "water rights, fishing, and river dredging"
    assert _short("Which areas interest both?", "The areas include fishing.") is None
    assert _short("Which areas interest both?", "It does not include fishing and dredging.") is None


def test_a_follow_up_s_carried_focus_asks_for_no_byline() -> None:
    raw = "John Smith chairs the commission, officials said.\nBy Eleanor Vance\n"
    spans = [(0, len(raw))]
    plain = find_short("Who chairs the commission?", raw, spans)
    carried = find_short("Who chairs the commission? (Feldt, author, piece)", raw, spans)
    assert plain == carried and raw[plain[0] : plain[1]] == "John Smith"


def test_which_outlet_is_the_name_given_as_the_source() -> None:
    raw = "According to Reuters, the minister met Ortega in Quito on Friday."
    assert _short("Which news agency reported the meeting?", raw) == "Reuters"


def test_who_is_a_places_title_is_the_name_after_that_title_in_that_place() -> None:
    raw = (
        "Talks between Chilean President gabriel boric and Peruvian President Dina Boluarte ended."
    )
    assert _short("who is perus president", raw) == "Dina Boluarte"
    assert _short("Who is Chile's president?", raw) == "gabriel boric"
    # Another place's holder of the title is no answer to this place's.
    assert _short("Who is Bolivia's president?", raw) is None


def test_which_countries_is_never_answered_with_a_nationality() -> None:
    raw = "Officials said Scandinavian nations would send observers to Chile."
    assert _short("Which countries will send observers to Chile?", raw) is None
    raw = "Observers from Norway will go to Chile."
    assert _short("Which country will send observers to Chile?", raw) == "Norway"


def test_review_cases_a_verb_a_quote_and_a_wish_are_no_answers() -> None:
    assert _short("Who is Russia's president?", "The Russian president visited Beijing.") is None
    raw = "The IAEA agency inspected the plant, Rafael Grossi said."
    assert _short("Which agency inspected the plant?", raw) == "IAEA"
    assert (
        _short("Which countries sent troops?", "They would like to send troops and tanks.") is None
    )


def test_a_name_ending_in_ing_opens_no_lead_in() -> None:
    from qa.ask.shortanswer import factoid_kind

    assert factoid_kind("When Beijing hosted the summit, who attended?") == ("when", "")
    assert factoid_kind("when king charles visited canada") == ("when", "")
