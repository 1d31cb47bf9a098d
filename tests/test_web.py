"""The web app through Flask's test client: every endpoint, every bad input, the headers."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from qa.ask.service import QAService
from qa.index.build import build_index
from qa.index.builds import CURRENT
from qa.settings import Settings
from qa.web import schema
from qa.web.app import SECURITY_HEADERS, create_app
from qa.web.ratelimit import RateLimiter
from tests.conftest import FakeEmbedder
from tests.hostile import HOSTILE_ID, IMG, QUESTION, SCRIPT, hostile_corpus

ASK = "Where did Rubio and Lavrov meet?"


def valid(instance: Any, shape: dict[str, Any]) -> bool:
    errors = list(Draft202012Validator(shape).iter_errors(instance))
    assert not errors, errors[0].message
    return True


@pytest.fixture
def settings(built_index: Settings, tmp_path: Path) -> Settings:
    return replace(built_index, rate_limit=0, feedback_db=tmp_path / "feedback.sqlite3")


@pytest.fixture
def client(settings: Settings, service: QAService) -> FlaskClient:
    return create_app(settings, service).test_client()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, QAService]:
    """A fast (fake-embedder) index of the seeds plus an article made of markup."""
    root = tmp_path_factory.mktemp("hostile")
    seeds = hostile_corpus(root / "seeds")
    emb = FakeEmbedder()
    build_index(seeds, root / "index", emb)
    s = Settings.from_env(env={}, seeds_dir=seeds, index_dir=root / "index", rate_limit=0)
    return s, QAService(s, emb)


def error_of(resp: Any, status: int) -> dict[str, str]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    valid(body, schema.ERROR)
    assert body["error"]["message"].strip()
    assert "Traceback" not in resp.get_data(as_text=True)
    return body["error"]


# --- /api/ask ---------------------------------------------------------------------------------


def test_ask_returns_the_answer_object(client: FlaskClient) -> None:
    resp = client.post("/api/ask", json={"question": ASK, "top_k": 3})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    d = resp.get_json()
    valid(d, schema.ANSWER)
    assert d["answerable"] and "[1]" in d["answer"] and "Malaysia" in d["answer"]
    assert 1 <= len(d["citations"]) <= 3
    assert d["build"] == client.get("/api/health").get_json()["build"]


def test_ask_default_and_integral_float_top_k(client: FlaskClient) -> None:
    d = client.post("/api/ask", json={"question": ASK}).get_json()
    assert len(d["citations"]) == 5
    d = client.post("/api/ask", json={"question": ASK, "top_k": 2.0}).get_json()
    assert len(d["citations"]) == 2


def test_the_answer_matches_the_library_call(client: FlaskClient, service: QAService) -> None:
    d = client.post("/api/ask", json={"question": ASK}).get_json()
    expected = service.ask(ASK).to_dict()
    for key in ("question", "answerable", "answer", "build"):
        assert d[key] == expected[key]
    assert [c["start"] for c in d["citations"]] == [c["start"] for c in expected["citations"]]


BAD_ASKS = [
    # (what, request kwargs, status, code, a phrase of the message)
    ("text body", {"data": "hello", "content_type": "text/plain"}, 415, "unsupported", "JSON"),
    ("no content type", {"data": b'{"question": "x"}'}, 415, "unsupported", "application/json"),
    ("form", {"data": {"question": "x"}}, 415, "unsupported_media_type", "application/json"),
    ("malformed", {"data": '{"question": ', "content_type": "application/json"}, 400, "bad", ""),
    ("NaN", {"data": '{"question": "x", "top_k": NaN}', "content_type": "application/json"},
     400, "bad_json", "NaN"),
    ("not UTF-8", {"data": b'{"question": "\xff"}', "content_type": "application/json"},
     400, "bad_json", "UTF-8"),
    ("deep nesting", {"data": "[" * 8000 + "]" * 8000, "content_type": "application/json"},
     400, "bad_json", "nested"),
    ("empty body", {"data": b"", "content_type": "application/json"}, 400, "bad_json", ""),
    ("array", {"json": ["question"]}, 422, "invalid_request", "JSON object"),
    ("missing question", {"json": {"top_k": 3}}, 422, "invalid_request", "missing field"),
    ("empty question", {"json": {"question": ""}}, 422, "invalid_request", "question"),
    ("blank question", {"json": {"question": " \n\t "}}, 422, "invalid_request", "blank"),
    ("null question", {"json": {"question": None}}, 422, "invalid_request", "question"),
    ("number question", {"json": {"question": 42}}, 422, "invalid_request", "question"),
    ("1001 chars", {"json": {"question": "x" * 1001}}, 422, "invalid_request", "1001"),
    ("top_k 0", {"json": {"question": "x", "top_k": 0}}, 422, "invalid_request", "top_k"),
    ("top_k 21", {"json": {"question": "x", "top_k": 21}}, 422, "invalid_request", "1 to 20"),
    ("top_k bool", {"json": {"question": "x", "top_k": True}}, 422, "invalid_request", "top_k"),
    ("top_k str", {"json": {"question": "x", "top_k": "5"}}, 422, "invalid_request", "integer"),
    ("top_k 2.5", {"json": {"question": "x", "top_k": 2.5}}, 422, "invalid_request", "top_k"),
    ("top_k null", {"json": {"question": "x", "top_k": None}}, 422, "invalid_request", "top_k"),
    ("unknown field", {"json": {"question": "x", "k": 3}}, 422, "invalid_request", "'k'"),
    ("surrogate", {"data": '{"question": "a\\ud800"}', "content_type": "application/json"},
     422, "invalid_request", "surrogate"),
    ("17 KiB", {"json": {"question": "x" * 17 * 1024}}, 413, "too_large", "16384"),
    ("17 KiB of history", {"json": {"question": "x", "history": [{"question": "y" * 200,
     "answer": "z" * 2000}] * 8}}, 413, "too_large", "fewer or shorter history turns"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "phrase"),
    [case[1:] for case in BAD_ASKS],
    ids=[case[0] for case in BAD_ASKS],
)
def test_bad_asks_get_a_status_and_a_message(
    client: FlaskClient, kwargs: dict, status: int, code: str, phrase: str
) -> None:
    err = error_of(client.post("/api/ask", **kwargs), status)
    assert err["code"].startswith(code)
    assert phrase in err["message"]


def test_oversized_body_without_length_is_refused(client: FlaskClient) -> None:
    # A chunked body has no Content-Length; the limit is enforced while reading.
    body = json.dumps({"question": "x" * 20000}).encode()
    resp = client.post(
        "/api/ask",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as waitress sets it
    )
    assert "history" in error_of(resp, 413)["message"]


def test_a_too_large_feedback_body_is_not_told_to_cut_a_history(client: FlaskClient) -> None:
    body = {"question": "q" * 17000, "doc_id": "d", "start": 0, "end": 1, "helpful": True}
    err = error_of(client.post("/api/feedback", json=body), 413)
    assert "16384" in err["message"] and "history" not in err["message"]


def test_wrong_method_and_unknown_routes(client: FlaskClient) -> None:
    resp = client.get("/api/ask")
    err = error_of(resp, 405)
    assert err["code"] == "method_not_allowed" and "POST" in err["message"]
    assert "POST" in resp.headers["Allow"]
    error_of(client.delete("/api/health"), 405)
    error_of(client.put("/api/feedback", json={}), 405)
    for path in ("/nope", "/api/nope", "/api", "/static/nope.js", "/doc/a/b"):
        assert error_of(client.get(path), 404)["code"] == "not_found"


def test_unexpected_failure_is_a_json_500(settings: Settings, service: QAService) -> None:
    class Broken:
        def ask(self, question: str, top_k: int | None = None) -> None:
            raise RuntimeError("secret internals")

    app = create_app(settings, Broken())  # type: ignore[arg-type]
    resp = app.test_client().post("/api/ask", json={"question": "x"})
    err = error_of(resp, 500)
    assert err["code"] == "internal_error" and "secret" not in resp.get_data(as_text=True)


# --- documents, health, examples, pages -----------------------------------------------------


def test_document_endpoint_shows_a_citation_in_context(client: FlaskClient) -> None:
    c = client.post("/api/ask", json={"question": ASK}).get_json()["citations"][0]
    resp = client.get(f"/api/documents/{c['doc_id']}")
    assert resp.status_code == 200
    doc = resp.get_json()
    valid(doc, schema.DOCUMENT)
    assert doc["id"] == c["doc_id"] and doc["sha256"] == c["doc_sha256"]
    assert doc["text"][c["start"] : c["end"]] == c["text"]
    assert all(0 <= s["start"] <= s["end"] <= len(doc["text"]) for s in doc["sections"])
    err = error_of(client.get("/api/documents/no-such-doc"), 404)
    assert err["code"] == "unknown_document" and "no-such-doc" in err["message"]


def test_health_when_ready(client: FlaskClient, service: QAService) -> None:
    resp = client.get("/api/health")
    assert resp.status_code == 200
    d = resp.get_json()
    valid(d, schema.HEALTH)
    assert d == service.ready() and d["documents"] == 5 and d["passages"] > 0


def test_missing_or_corrupt_index_is_503_with_the_reason(tmp_path: Path) -> None:
    s = Settings.from_env(env={}, index_dir=tmp_path / "index", rate_limit=0)
    client = create_app(s, QAService(s, FakeEmbedder())).test_client()
    resp = client.get("/api/health")
    assert resp.status_code == 503
    body = resp.get_json()
    valid(body, schema.UNAVAILABLE)
    assert "qa index" in body["error"]["message"]
    for resp in (
        client.post("/api/ask", json={"question": "x"}),
        client.get("/api/examples"),
        client.get("/api/documents/x"),
        client.post(
            "/api/feedback",
            json={"question": "q", "doc_id": "d", "start": 0, "end": 1, "helpful": True},
        ),
    ):
        assert error_of(resp, 503)["code"] == "index_unavailable"
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / CURRENT).write_text("garbage\n")
    resp = client.get("/api/health")
    message = resp.get_json()["error"]["message"]
    assert resp.status_code == 503 and "CURRENT does not name a build" in message
    assert "garbage" not in message and str(tmp_path) not in message


def test_examples_come_from_the_faq_sections(client: FlaskClient, service: QAService) -> None:
    d = client.get("/api/examples").get_json()
    valid(d, schema.EXAMPLES)
    qs = d["questions"]
    assert 1 <= len(qs) <= 5 and len(set(qs)) == len(qs)
    texts = [doc.raw for doc in service.index().documents.values()]
    for q in qs:
        assert q.endswith("?") and not q.lower().startswith("question")
        assert any(q in t for t in texts)
    assert client.get("/api/examples").get_json() == d


def test_examples_follow_a_new_build(tmp_path: Path) -> None:
    seeds = hostile_corpus(tmp_path / "seeds")
    emb = FakeEmbedder()
    build_index(seeds, tmp_path / "index", emb)
    s = Settings.from_env(env={}, seeds_dir=seeds, index_dir=tmp_path / "index", rate_limit=0)
    client = create_app(s, QAService(s, emb)).test_client()
    before = client.get("/api/examples").get_json()["questions"]
    (seeds / "0000_new.txt").write_text(
        "Fresh Notes\n\nSome text about the harbour.\n\nQuestion: Is this a brand new question?\n"
        "Yes, it is new.\n",
        encoding="utf-8",
    )
    build_index(seeds, tmp_path / "index", emb)
    after = client.get("/api/examples").get_json()["questions"]
    assert after[0] == "Is this a brand new question?" and after[0] not in before


@pytest.mark.parametrize("path", ["/", "/doc/000_ab687fec20728463", "/doc/anything"])
def test_pages_serve_the_chat_page(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert b'<script type="module" src="/static/main.js">' in resp.data
    for module in ("main", "api", "conversation", "offsets", "render", "source"):
        script = client.get(f"/static/{module}.js")
        assert script.status_code == 200 and script.mimetype == "text/javascript", module
    assert client.get("/static/app.css").mimetype == "text/css"


def test_every_response_carries_the_security_headers(client: FlaskClient) -> None:
    responses = [
        client.get("/"),
        client.get("/doc/x"),
        client.get("/static/main.js"),
        client.get("/api/health"),
        client.get("/api/openapi.json"),
        client.get("/nope"),
        client.get("/api/ask"),
        client.post("/api/ask", data="x", content_type="text/plain"),
        client.post("/api/ask", json={"question": ASK}),
        client.options("/api/ask", headers={"Origin": "http://evil.example"}),
    ]
    for resp in responses:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (resp.request.path, name)
        assert not [k for k, _ in resp.headers.items() if k.lower().startswith("access-control")]
    assert SECURITY_HEADERS["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def test_openapi_describes_every_route(client: FlaskClient) -> None:
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    rules = {
        r.rule.replace("<", "{").replace(">", "}").replace("path:", "")
        for r in client.application.url_map.iter_rules()
    }
    assert rules == set(doc["paths"])
    for shape in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(shape)


# --- hostile text ---------------------------------------------------------------------------


def test_markup_in_a_document_is_returned_as_json_text(hostile: tuple[Settings, QAService]) -> None:
    s, svc = hostile
    client = create_app(s, svc).test_client()
    resp = client.get(f"/api/documents/{HOSTILE_ID}")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert SCRIPT in resp.get_json()["text"] and IMG in resp.get_json()["text"]
    d = client.post("/api/ask", json={"question": QUESTION}).get_json()
    cited = [c for c in d["citations"] if c["doc_id"] == HOSTILE_ID]
    assert cited and SCRIPT in cited[0]["text"]
    assert SCRIPT in client.post("/api/ask", json={"question": QUESTION}).get_data(as_text=True)


# --- feedback -------------------------------------------------------------------------------


def _judgement(client: FlaskClient, question: str, n: int = 0) -> dict[str, Any]:
    c = client.post("/api/ask", json={"question": question}).get_json()["citations"][n]
    return {"question": question, "doc_id": c["doc_id"], "start": c["start"], "end": c["end"]}


def test_feedback_is_stored_durably(client: FlaskClient, settings: Settings) -> None:
    j = _judgement(client, ASK)
    resp = client.post("/api/feedback", json={**j, "helpful": True})
    assert resp.status_code == 201 and resp.get_json() == {"status": "stored"}
    valid(resp.get_json(), schema.FEEDBACK_STORED)
    with sqlite3.connect(settings.feedback_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute(
            'SELECT question, doc_id, start, "end", helpful FROM feedback'
        ).fetchall()
    assert rows == [(ASK, j["doc_id"], j["start"], j["end"], 1)]


BAD_FEEDBACK = [
    ({"helpful": "yes"}, 422, "helpful"),
    ({"helpful": None}, 422, "helpful"),
    ({"start": -1}, 422, "start"),
    ({"start": 5, "end": 5}, 422, "start < end"),
    ({"end": 10**9}, 422, "document's length"),
    ({"doc_id": "nope"}, 404, "nope"),
    ({"doc_id": ""}, 422, "doc_id"),
    ({"question": "  "}, 422, "question"),
    ({"extra": 1}, 422, "'extra'"),
    ({"start": True}, 422, "start"),
]


@pytest.mark.parametrize(("change", "status", "phrase"), BAD_FEEDBACK)
def test_bad_feedback_is_refused(
    client: FlaskClient, change: dict, status: int, phrase: str
) -> None:
    body = {"question": ASK, "doc_id": "000_ab687fec20728463", "start": 0, "end": 20}
    body = {**body, "helpful": True, **change}
    assert phrase in error_of(client.post("/api/feedback", json=body), status)["message"]
    missing = {k: v for k, v in body.items() if k != "helpful"}
    assert "helpful" in error_of(client.post("/api/feedback", json=missing), 422)["message"]


def test_feedback_from_many_threads(client: FlaskClient, settings: Settings) -> None:
    # Judgements of a span the index really cites, each on its own question (one vote per
    # client, question and span is kept), sent from six threads at once.
    cited = client.post("/api/ask", json={"question": "Where did Rubio and Lavrov meet?"})
    c0 = cited.get_json()["citations"][0]
    span = {"doc_id": c0["doc_id"], "start": c0["start"], "end": c0["end"]}
    app = client.application
    statuses: list[int] = []

    def send(i: int) -> None:
        c = app.test_client()
        for n in range(10):
            body = {**span, "question": f"question {i}-{n}?", "helpful": i % 2 == 0}
            statuses.append(c.post("/api/feedback", json=body).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 60
    with sqlite3.connect(settings.feedback_db) as conn:
        assert conn.execute("SELECT count(*) FROM feedback").fetchone()[0] == 60


# --- rate limiting --------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(settings: Settings, service: QAService) -> None:
    client = create_app(replace(settings, rate_limit=3), service).test_client()
    for _ in range(3):
        assert client.get("/api/examples").status_code == 200
    resp = client.get("/api/examples")
    err = error_of(resp, 429)
    assert err["code"] == "rate_limited" and "3 a minute" in err["message"]
    assert int(resp.headers["Retry-After"]) >= 1
    assert error_of(client.post("/api/ask", json={"question": ASK}), 429)
    # Other clients, health checks and the page itself are not limited.
    other = client.get("/api/examples", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200
    assert client.get("/api/health").status_code == 200
    assert client.get("/").status_code == 200


def test_token_bucket_refills_and_is_thread_safe() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    allowed = []

    def hammer() -> None:
        for _ in range(50):
            allowed.append(limiter.acquire("a") == 0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 60  # the burst, exactly, under contention
    assert limiter.acquire("a") == 1  # one token a second
    now[0] += 1.0
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 1
    now[0] += 120
    assert all(limiter.acquire("a") == 0 for _ in range(60))
    assert RateLimiter(0).acquire("a") == 0


def test_rate_limiter_memory_is_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0], max_clients=100)
    for i in range(1000):
        limiter.acquire(f"10.0.{i // 256}.{i % 256}")
        now[0] += 0.01
    assert len(limiter) <= 101
