"""Conversations end to end: the API's history contract, follow-ups resolved by the service,
the terminal prompt's own history, and `qa eval` over conversation sets."""

from __future__ import annotations

import builtins
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from qa.ask.followup import Turn
from qa.ask.service import QAService
from qa.cli import _prompt_loop
from qa.eval.evaluate import evaluate
from qa.eval.metrics import METRICS
from qa.settings import Settings
from qa.web import schema
from qa.web.app import create_app

FIXTURE = Path(__file__).parent / "fixtures" / "conversations.jsonl"
FIRST = "Where did Rubio and Lavrov meet?"


@pytest.fixture
def client(built_index: Settings, service: QAService, tmp_path: Path) -> FlaskClient:
    s = replace(built_index, rate_limit=0, feedback_db=tmp_path / "fb.sqlite3")
    return create_app(s, service).test_client()


def _turn(d: dict[str, Any]) -> dict[str, Any]:
    cites = [{k: c[k] for k in ("doc_id", "start", "end")} for c in d["citations"]]
    return {"question": d["question"], "answer": d["answer"], "citations": cites}


def _valid(d: dict[str, Any]) -> None:
    errors = list(Draft202012Validator(schema.ANSWER).iter_errors(d))
    assert not errors, errors[0].message


def test_the_answer_object_has_searched_short_answer_and_used(client: FlaskClient) -> None:
    d = client.post("/api/ask", json={"question": FIRST}).get_json()
    _valid(d)
    assert d["searched"] == FIRST
    short = d["short_answer"]
    assert short["text"] == "Malaysia"
    doc = client.get(f"/api/documents/{short['doc_id']}").get_json()
    assert doc["text"][short["start"] : short["end"]] == "Malaysia"
    first = d["citations"][0]
    assert first["used"] and any(a <= short["start"] < b for a, b in first["highlights"])
    for c in d["citations"]:
        assert c["used"] == (f"[{c['n']}]" in d["answer"])


def test_a_follow_up_is_resolved_with_the_history(client: FlaskClient) -> None:
    d1 = client.post("/api/ask", json={"question": FIRST}).get_json()
    body = {"question": "What did Trump think about it?", "history": [_turn(d1)]}
    d2 = client.post("/api/ask", json=body).get_json()
    _valid(d2)
    assert d2["question"] == "What did Trump think about it?"
    assert d2["searched"] != d2["question"] and "Lavrov" in d2["searched"]
    assert d2["answerable"] and "disappointment and frustration" in d2["answer"]
    assert d2["short_answer"] is None  # not a factoid question
    # Without the history the same words find something else.
    alone = client.post("/api/ask", json={"question": "What did Trump think about it?"}).get_json()
    assert alone["searched"] == alone["question"]


def test_a_change_of_topic_is_searched_as_typed(client: FlaskClient) -> None:
    d1 = client.post("/api/ask", json={"question": FIRST}).get_json()
    q = "When did Russia launch its all-out invasion of Ukraine?"
    d2 = client.post("/api/ask", json={"question": q, "history": [_turn(d1)]}).get_json()
    assert d2["searched"] == q
    assert d2 == {
        **client.post("/api/ask", json={"question": q}).get_json(),
        "timing_ms": d2["timing_ms"],
    }


TURN = {"question": "Where did they meet?"}
BAD_HISTORY = [
    ("too many turns", [TURN] * 11, "at most 10"),
    ("not a list", "Where did they meet?", "history must be"),
    ("turn not an object", ["Where?"], "history[0] must be"),
    ("question missing", [{"answer": "x"}], "history[0] is missing the field 'question'"),
    ("question a number", [{"question": 5}], "history[0].question"),
    ("empty question", [{"question": ""}], "history[0].question"),
    ("answer a list", [{"question": "q", "answer": ["a"]}], "history[0].answer"),
    ("unknown field", [{"question": "q", "sources": []}], "unknown field 'sources'"),
    ("citation start a string", [{"question": "q", "citations": [{"doc_id": "d", "start": "1",
     "end": 2}]}], "history[0].citations[0].start must be an integer"),
    ("citation without doc_id", [{"question": "q", "citations": [{"start": 1, "end": 2}]}],
     "history[0].citations[0] is missing the field 'doc_id'"),
    ("too long an answer", [{"question": "q", "answer": "x" * 4001}], "history[0].answer"),
    ("citation ends before it starts", [{"question": "q", "citations": [{"doc_id": "d",
     "start": 9, "end": 2}]}], "history[0].citations[0] must have 0 <= start <= end"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "phrase"), [c[1:] for c in BAD_HISTORY], ids=[c[0] for c in BAD_HISTORY]
)
def test_bad_history_is_a_422_that_says_what_to_fix(
    client: FlaskClient, history: Any, phrase: str
) -> None:
    resp = client.post("/api/ask", json={"question": "And then?", "history": history})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "invalid_request" and phrase in err["message"], err["message"]


def test_history_with_a_surrogate_or_float_offsets(client: FlaskClient) -> None:
    data = '{"question": "q?", "history": [{"question": "a\\ud800"}]}'
    resp = client.post("/api/ask", data=data, content_type="application/json")
    assert resp.status_code == 422 and "history[0].question" in resp.get_json()["error"]["message"]
    turn = {"question": FIRST, "citations": [{"doc_id": "x", "start": 1.0, "end": 2.0}]}
    resp = client.post("/api/ask", json={"question": "How so?", "history": [turn]})
    assert resp.status_code == 200


def test_history_citing_an_unknown_article_is_answered_and_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A conversation begun before a re-index may cite an article that is gone: not an error.
    turn = {"question": FIRST, "citations": [{"doc_id": "gone_0000", "start": 0, "end": 5}]}
    with caplog.at_level(logging.INFO, logger="qa.ask.service"):
        resp = client.post(
            "/api/ask", json={"question": "What did Trump think?", "history": [turn]}
        )
    assert resp.status_code == 200
    assert any("gone_0000" in r.getMessage() for r in caplog.records)


def test_the_openapi_document_describes_the_history(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    ask = doc["components"]["schemas"]["AskRequest"]
    assert ask["properties"]["history"]["maxItems"] == 10
    answer = doc["components"]["schemas"]["Answer"]
    assert {"searched", "short_answer"} <= set(answer["required"])
    assert "used" in doc["components"]["schemas"]["Citation"]["required"]


def test_the_prompt_keeps_its_own_history_until_new(
    service: QAService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = iter([FIRST, "What did Trump think about it?", "/new", "How so?", ""])
    monkeypatch.setattr(builtins, "input", lambda _prompt="": next(typed))
    asked: list[tuple[str, list[Turn]]] = []
    real = service.ask

    def spy(q: str, k: Any = None, history: Any = None) -> Any:
        asked.append((q, list(history or [])))
        return real(q, k, history)

    monkeypatch.setattr(service, "ask", spy)
    assert _prompt_loop(service, None, False) == 0
    assert [len(h) for _, h in asked] == [0, 1, 0]
    out = capsys.readouterr().out
    assert "**Malaysia**" in out and "Searched for: What did Trump think about it? (" in out
    assert "(new conversation)" in out


def test_eval_reads_conversation_sets(built_index: Settings, service: QAService) -> None:
    ev = evaluate(built_index, [FIXTURE], service=service)
    d = ev.to_dict()
    assert set(d["metrics"]) == set(METRICS)
    conv = d["conversations"]["overall"]
    assert conv["turns"] == 6 and set(conv["metrics"]) == set(METRICS)
    assert set(conv["kinds"]) == {"standalone", "pronoun", "switch"}
    assert conv["followup"]["hit@5"] == 1.0  # "What did Trump think about it?"
    assert d["counts"]["conversations/conversations"] == {"questions": 6, "answerable": 5}
    answers = d["answers"]["overall"]
    assert answers["factoid"] == 4 and answers["short_answer_f1"] >= 0.6
    assert 0 <= answers["answer_has_evidence"] <= 1
