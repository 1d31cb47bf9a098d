"""create_app(): the chat page and the JSON API over the same `ask`.

Handlers validate, call the service, serialize. Every error, from a malformed body to an
unknown route or an unexpected exception, is `{"error": {"code", "message"}}` with the right
status, never an HTML page; every response carries the security headers.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from flask import Flask, Response, jsonify, request, send_from_directory
from jsonschema import Draft202012Validator
from werkzeug.exceptions import HTTPException

from qa.ask.service import QAService
from qa.corpus import FAQ_QUESTION, parse_document
from qa.errors import FeedbackUnavailable, IndexUnavailable, QuestionError
from qa.feedback import Feedback, FeedbackStore
from qa.settings import Settings
from qa.text import fold
from qa.web import schema
from qa.web.ratelimit import RateLimiter

# The page ships inside the package (web/ in the source tree, see pyproject.toml).
PAGE_DIR = Path(str(resources.files("qa.web.page")))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_QUESTION_PREFIX = re.compile(r"(?:Question|Q)\s*[:.]\s*", re.IGNORECASE)
_SURROGATE = re.compile("[\ud800-\udfff]")
log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error response: status, a machine-readable code and a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class _Examples:
    """Example questions, cached per build (the build's documents never change)."""

    by_build: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    """The one error shape."""
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def create_app(
    settings: Settings,
    service: QAService | None = None,
    feedback: FeedbackStore | None = None,
) -> Flask:
    """The web app over `service` (a new QAService over `settings` when not given)."""
    app = Flask(
        __name__,
        static_folder=str(PAGE_DIR / "static"),
        static_url_path="/static",
        template_folder=str(PAGE_DIR / "templates"),
    )
    app.config["MAX_CONTENT_LENGTH"] = schema.MAX_BODY_BYTES + 1  # see _read_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    svc = service or QAService(settings)
    store = feedback or FeedbackStore(settings.feedback_db)
    limiter = RateLimiter(settings.rate_limit)
    examples = _Examples()
    openapi = schema.openapi_document(settings.top_k)
    app.extensions["qa"] = {"service": svc, "feedback": store, "limiter": limiter}

    @app.before_request
    def limit_rate() -> Response | None:
        if not request.path.startswith("/api/") or request.path == "/api/health":
            return None
        wait = limiter.acquire(request.remote_addr or "unknown")
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests: the limit is {limiter.per_minute} a minute per client; "
                f"try again in {wait} s",
                {"Retry-After": str(wait)},
            )
        return None

    @app.after_request
    def secure(resp: Response) -> Response:
        for k, v in SECURITY_HEADERS.items():
            resp.headers[k] = v
        if request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code, message = _http_error_text(status, exc)
        headers = {}
        if status == 405:
            allowed = exc.valid_methods or []  # type: ignore[attr-defined]
            headers["Allow"] = ", ".join(allowed)
        return error_response(status, code, message, headers)

    @app.errorhandler(IndexUnavailable)
    def unavailable(exc: IndexUnavailable) -> Response:
        return error_response(503, "index_unavailable", str(exc))

    @app.errorhandler(FeedbackUnavailable)
    def feedback_unavailable(exc: FeedbackUnavailable) -> Response:
        log.error("%s", exc)
        return error_response(503, "feedback_unavailable", "feedback cannot be stored right now")

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed; this is a bug")

    @app.post("/api/ask")
    def ask() -> Response:
        body = _read_json(schema.ask_validator)
        try:
            answer = svc.ask(body["question"], body.get("top_k"))
        except QuestionError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return jsonify(answer.to_dict())

    @app.get("/api/documents/<doc_id>")
    def document(doc_id: str) -> Response:
        doc = svc.document(doc_id)
        if doc is None:
            raise ApiError(404, "unknown_document", f"no document {doc_id!r} in the index")
        return jsonify(doc)

    @app.get("/api/health")
    def health() -> Response | tuple[Response, int]:
        try:
            return jsonify(svc.ready())
        except IndexUnavailable as exc:
            body = {"status": "unavailable", "error": {"code": "index_unavailable"}}
            body["error"]["message"] = str(exc)
            return jsonify(body), 503

    @app.get("/api/examples")
    def example_questions() -> Response:
        idx = svc.index()
        with examples.lock:
            cached = examples.by_build.get(idx.build_id)
        if cached is None:
            cached = faq_questions(idx.documents.values())
            with examples.lock:
                examples.by_build = {idx.build_id: cached}
        return jsonify({"questions": cached})

    @app.post("/api/feedback")
    def record_feedback() -> tuple[Response, int]:
        body = _read_json(schema.feedback_validator)
        idx = svc.index()
        doc = idx.documents.get(body["doc_id"])
        if doc is None:
            raise ApiError(404, "unknown_document", f"no document {body['doc_id']!r} in the index")
        start, end, text = body["start"], body["end"], doc["text"]
        if not start < end <= len(text):
            raise ApiError(
                422,
                "invalid_request",
                f"start and end must satisfy 0 <= start < end <= {len(text)} "
                f"(the document's length); got start={start}, end={end}",
            )
        store.add(
            Feedback(
                question=body["question"],
                doc_id=body["doc_id"],
                start=start,
                end=end,
                helpful=body["helpful"],
                build=idx.build_id,
                doc_sha256=doc["sha256"],
                passage=text[start:end],
            )
        )
        return jsonify({"status": "stored"}), 201

    @app.get("/api/openapi.json")
    def openapi_json() -> Response:
        return jsonify(openapi)

    @app.get("/")
    @app.get("/doc/<doc_id>")
    def page(doc_id: str | None = None) -> Response:
        resp = send_from_directory(app.template_folder, "index.html", mimetype="text/html")  # type: ignore[arg-type]
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    return app


def _http_error_text(status: int, exc: HTTPException) -> tuple[str, str]:
    if status == 404:
        return "not_found", f"no such page or endpoint: {request.path}; see /api/openapi.json"
    if status == 405:
        methods = exc.valid_methods or []  # type: ignore[attr-defined]
        allowed = " or ".join(m for m in methods if m not in ("HEAD", "OPTIONS"))
        return "method_not_allowed", f"{request.method} is not allowed here; use {allowed}"
    if status == 413:
        return (
            "too_large",
            f"the body is larger than {schema.MAX_BODY_BYTES} bytes; send a shorter request",
        )
    name = (exc.name or "error").lower().replace(" ", "_").replace("-", "_")
    return name, exc.description or name


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _read_json(validator: Draft202012Validator) -> dict[str, Any]:
    """The request body as a JSON object that passes `validator`, or an ApiError."""
    if (request.content_length or 0) > schema.MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {schema.MAX_BODY_BYTES} bytes")
    if request.mimetype != "application/json":
        got = request.mimetype or "no Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as JSON with Content-Type: application/json (got {got})",
        )
    data = _read_body()
    try:
        body = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8 text") from None
    except RecursionError:
        raise ApiError(400, "bad_json", "the JSON is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    errors = sorted(validator.iter_errors(body), key=_error_rank)
    if errors:
        raise ApiError(422, "invalid_request", _describe(errors[0], validator.schema))
    for name, value in body.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ApiError(422, "invalid_request", f"{name} contains an unpaired surrogate")
        if isinstance(value, float):  # 5.0 is an integer to JSON Schema; Python wants 5
            body[name] = int(value)
    return body


def _read_body() -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES even when no Content-Length was sent."""
    # Werkzeug caps the stream at MAX_CONTENT_LENGTH (one byte more than allowed) by ending it
    # silently: reading one byte past the limit is what tells a too-large body apart.
    data = request.stream.read(schema.MAX_BODY_BYTES + 1)
    if len(data) > schema.MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {schema.MAX_BODY_BYTES} bytes")
    return data


def _error_rank(err: Any) -> tuple[int, str]:
    # Report a wrong body first, then missing or unknown fields, then a field's value.
    order = {"type": 0, "required": 1, "additionalProperties": 2}
    return (order.get(err.validator, 3) if not err.path else 3, "/".join(map(str, err.path)))


def _describe(err: Any, root: dict[str, Any]) -> str:
    """A jsonschema error as a sentence that says what to fix."""
    props = root["properties"]
    fields = ", ".join(props)
    if not err.path:
        if err.validator == "type":
            return f"the body must be a JSON object with the fields {fields}"
        if err.validator == "required":
            missing = [f for f in root["required"] if f not in err.instance]
            return f"missing field {missing[0]!r}; required: {', '.join(root['required'])}"
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(props))
            return f"unknown field {extra[0]!r}; allowed fields: {fields}"
        return err.message
    name = str(err.path[0])
    rule = props.get(name, {}).get("description", "valid")
    value = err.instance
    if err.validator == "maxLength" and isinstance(value, str):
        got = f"got {len(value)} characters"
    elif isinstance(value, str) and not value.strip():
        got = "got an empty or blank string"
    else:
        got = f"got {json.dumps(value)[:40]}"
    return f"{name} must be {rule} ({got})"


def faq_questions(documents: Any, limit: int = schema.MAX_EXAMPLES) -> list[str]:
    """Up to `limit` distinct FAQ questions from the documents, taken in turn from each one."""
    per_doc: list[list[str]] = []
    for d in sorted(documents, key=lambda d: d["id"]):
        doc = parse_document(d["id"], d["text"])
        qs = []
        for b in doc.blocks:
            if b.kind == FAQ_QUESTION:
                q = " ".join(_QUESTION_PREFIX.sub("", doc.text(b), count=1).split())
                if q:
                    qs.append(q)
        per_doc.append(qs)
    seen: set[str] = set()
    out: list[str] = []
    for i in range(max((len(qs) for qs in per_doc), default=0)):
        for qs in per_doc:
            if i < len(qs) and fold(qs[i]) not in seen and len(out) < limit:
                seen.add(fold(qs[i]))
                out.append(qs[i])
    return out
