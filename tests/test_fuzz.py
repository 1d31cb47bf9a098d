"""Bad input, tried for real: generated questions into the core, generated corpus files into the
indexer, and a large schemathesis run against the HTTP API's own OpenAPI document.

- `QAService.ask` on arbitrary Unicode (control characters, right-to-left text, emoji and ZWJ
  sequences, lone surrogates, only punctuation, up to 10,000 characters) returns an answer whose
  citations are exact, or refuses with QuestionError; never another exception.
- A corpus file of arbitrary text (CRLF, lone CR, BOM, glued sentences, tables) is indexed or
  skipped with a reason, and every passage and sentence offset is exact in the file's text.
- schemathesis: thousands of positive and negative cases over every operation (slow).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa.ask.answering import Answer
from qa.ask.service import QAService
from qa.chunking import ChunkSettings, chunk_document, merge_duplicates
from qa.errors import QuestionError
from qa.index.build import read_corpus
from qa.settings import Settings
from qa.web.app import create_app
from tests.figures import record
from tests.test_openapi import rejected_or_too_large

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

WORDS = ["Rubio", "Lavrov", "Malaysia", "NATO", "Ukraine", "sanctions", "when", "who", "?"]
RTL = st.text(st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), min_size=1, max_size=60)
EMOJI = st.lists(
    st.sampled_from(["😀", "🇺🇦", "👩‍👩‍👧", "🏳️‍🌈", "🤷🏽‍♀️", "\u200d", "\ufe0f", "🧨"]),
    min_size=1,
    max_size=30,
).map("".join)
CONTROL = st.text(
    st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Co", "Cn"]), min_size=1, max_size=40
)
PUNCTUATION = st.text(
    st.characters(categories=["Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So"]),
    min_size=1,
    max_size=200,
)
SURROGATE = st.sampled_from(["\ud800", "\udfff", "\udcff", "\ud83d"])
LONG = st.builds(
    lambda unit, n: (unit * n)[:n],
    st.sampled_from(["a", "é", "😀", " ", "ا", "Where? ", "\u202e", "Rubio Lavrov "]),
    st.integers(900, 10_000),
)
ANY = st.text(st.characters(), max_size=300)
MIXED = st.lists(
    st.one_of(st.sampled_from(WORDS), RTL, EMOJI, CONTROL, PUNCTUATION, SURROGATE, st.just(" ")),
    min_size=1,
    max_size=12,
).map("".join)
QUESTIONS = st.one_of(MIXED, ANY, RTL, EMOJI, CONTROL, PUNCTUATION, LONG)


def check_answer(service: QAService, question: str, answer: Answer) -> None:
    """An answer is whole: its question echoed, its citations exact and serializable as UTF-8."""
    assert answer.question == question
    assert isinstance(answer.answer, str) and answer.answer
    idx = service.index()
    assert answer.build == idx.build_id
    for c in answer.citations:
        doc = idx.documents[c.doc_id]
        assert doc.raw[c.start : c.end] == c.text and doc.sha256 == c.doc_sha256
        assert all(c.start <= a <= b <= c.end for a, b in c.highlights)
    json.dumps(answer.to_dict(), ensure_ascii=False).encode("utf-8")


def fuzz_ask(service: QAService, examples: int) -> dict[str, int]:
    tally = {"answered": 0, "refused": 0}

    @settings(FUZZ, max_examples=examples)
    @given(QUESTIONS)
    def run(question: str) -> None:
        try:
            answer = service.ask(question)
        except QuestionError as exc:
            assert str(exc)
            tally["refused"] += 1
            return
        check_answer(service, question, answer)
        tally["answered"] += 1

    run()
    return tally


def test_ask_on_arbitrary_unicode_answers_or_refuses(service: QAService) -> None:
    tally = fuzz_ask(service, 300)
    assert tally["answered"] > 50 and tally["refused"] > 20, tally


@pytest.mark.slow
def test_ask_on_arbitrary_unicode_many(service: QAService) -> None:
    tally = fuzz_ask(service, 2000)
    record("ask_fuzz", {"cases": sum(tally.values()), **tally})


@pytest.mark.parametrize(
    "question",
    [
        "\x00\x01\x02 Where did Rubio meet Lavrov? \x7f\x1b[31m",
        "\u202eWhere did Rubio meet Lavrov?\u202c",
        "أين التقى روبيو ولافروف؟",
        "😀" * 1000,
        "?!.,;:-" * 100,
        "\ud83d Where did Rubio meet Lavrov?",
        "\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029",
        "x" * 10_000,
    ],
)
def test_hostile_questions_by_hand(service: QAService, question: str) -> None:
    try:
        answer = service.ask(question)
    except QuestionError:
        return
    check_answer(service, question, answer)


# --- corpus files of arbitrary text -----------------------------------------------------------

LINES = st.sampled_from(
    [
        "Heading Line",
        "A sentence here. Another one follows!",
        "Glued.What now?",
        "Question: Why?",
        "- item one",
        "| Country | Aid |",
        "|---|---|",
        "| Poland | Refugees |",
        "U.S. aid, Lt. Gen. Smith said.",
        "é’“”🙂 مرحبا",
        "x" * 700,
        "",
        " ",
    ]
)
ARTICLE = st.tuples(
    st.lists(st.one_of(LINES, st.text(st.characters(codec="utf-8"), max_size=80)), max_size=40),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
).map(lambda t: ("\ufeff" if t[2] else "") + t[1].join(t[0]))


@settings(FUZZ, max_examples=120)
@given(ARTICLE)
def test_any_article_file_is_indexed_exactly_or_skipped_with_a_reason(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp)
        data = text.encode("utf-8", "surrogatepass")
        (seeds / "article.txt").write_bytes(data)
        docs, reports = read_corpus(seeds)
        (report,) = reports
        if report.status != "indexed":
            assert report.status == "skipped" and report.reason, report
            return
        (doc,) = docs
        raw = data.decode("utf-8")
        assert doc.raw == raw
        s = ChunkSettings(max_chars=400, max_tokens=100, min_tokens=10)
        for p in merge_duplicates(chunk_document(doc, s)):
            assert raw[p.start : p.end] == p.text and p.text.strip() == p.text
            assert all(p.start <= a < b <= p.end for a, b in p.sentences)
            for loc in p.also_at:
                assert raw[loc.start : loc.end].strip()


# --- schemathesis, large ----------------------------------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_schemathesis_thousands_of_cases(
    built_index: Settings, service: QAService, tmp_path: Path
) -> None:
    """The web helper's tests/test_openapi.py runs 50 cases per operation and mode; this runs
    400, different seeds, with every check (no 500, documented status, content type, headers and
    body schema; negative cases must be refused)."""
    app = create_app(
        replace(built_index, rate_limit=0, feedback_db=tmp_path / "fb.sqlite3"), service
    )
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        definition = operation.definition.raw
        has_inputs = bool(definition.get("requestBody") or definition.get("parameters"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not has_inputs:
                continue
            label = f"{operation.method.upper()} {operation.path} {mode.value}"
            counts[label] = _fuzz_operation(operation, mode, 400)
    record("schemathesis", {"cases": sum(counts.values()), "by_operation": counts})
    assert sum(counts.values()) >= 2000, counts


def _fuzz_operation(operation: schemathesis.APIOperation, mode: GenerationMode, n: int) -> int:
    # A schema-violating body may also break the body-size limit (413), which is checked first.
    checks = CHECKS + ([rejected_or_too_large] if mode is GenerationMode.NEGATIVE else [])
    ran = 0

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(20261122)  # other cases than tests/test_openapi.py's, the same on every run
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(checks=checks)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # no negative value exists for a path segment
    return ran
