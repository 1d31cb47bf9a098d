"""create_app(): the chat page and the JSON API over the same `ask`.

Handlers validate, call the service, serialize. Every error, from a malformed body to an
unknown route or an unexpected exception, is `{"error": {"code", "message"}}` with the right
status, never an HTML page; every response carries the security headers.
"""

from __future__ import annotations

import logging
import os
import re
import time
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from qa.ask.service import QAService
from qa.corpus import Document
from qa.errors import (
    FeedbackError,
    FeedbackUnavailable,
    IndexUnavailable,
    QuestionError,
    StoreError,
    UnknownDocument,
)
from qa.feedback import FeedbackLimitReached, FeedbackStore, judgement
from qa.index.builds import CURRENT
from qa.settings import Settings
from qa.web import schema
from qa.web.ratelimit import RateLimiter
from qa.web.requests import ApiError, read_json

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
log = logging.getLogger(__name__)
access = logging.getLogger("qa.web.access")  # one line per request: who, what, status, time


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def log_access(client: str | None, method: str, path: str, status: int, ms: float | None) -> None:
    """One access-log line: client, method, path, status and time (`-` for a request the
    server refused before the app saw it). A decoded path may hold a newline: never a forged
    line."""
    took = "-" if ms is None else f"{ms:.0f} ms"
    access.info("%s %s %s %d %s", client or "-", method, _CONTROL.sub("?", path), status, took)


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
    # `//` in a path is a 404, never a redirect: werkzeug would build its Location from the
    # request's Host header, sending the client to a host it named itself.
    app.url_map.merge_slashes = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    svc = service or QAService(settings)
    store = feedback or FeedbackStore(settings.feedback_db)
    limiter = RateLimiter(settings.rate_limit)
    app.extensions["qa"] = {"service": svc, "feedback": store, "limiter": limiter}
    _guard(app, limiter)
    _errors(app, settings)
    _api(app, svc, store, schema.openapi_document(settings.top_k))
    _page(app)
    return app


def _guard(app: Flask, limiter: RateLimiter) -> None:
    """Before a request: the rate limit; after it: the security headers."""

    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()

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
        if "Location" in resp.headers:  # only ever a path on this server
            resp.headers["Location"] = _local(resp.headers["Location"])
        if request.path.startswith("/api/"):
            resp.headers["Cache-Control"] = "no-store"
        if access.isEnabledFor(logging.INFO):  # `qa serve` turns it on; never the question
            ms = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            log_access(request.remote_addr, request.method, request.path, resp.status_code, ms)
        return resp


def _errors(app: Flask, settings: Settings) -> None:
    """Every error, whatever raised it, as the one JSON error shape."""
    unavailable_message = app.extensions["qa"]["unavailable"] = _Unavailable(settings)

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
        return error_response(503, "index_unavailable", unavailable_message(exc))

    @app.errorhandler(FeedbackUnavailable)
    def feedback_unavailable(exc: FeedbackUnavailable) -> Response:
        log.error("%s", exc)
        return error_response(503, "feedback_unavailable", "feedback cannot be stored right now")

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed; this is a bug")


def _api(app: Flask, svc: QAService, store: FeedbackStore, openapi: dict[str, Any]) -> None:
    """The JSON API: validate, call the core, serialize."""

    @app.post("/api/ask")
    def ask() -> Response:
        # The question is short by rule: a large body is a long history.
        body = read_json(schema.ask_validator, "send fewer or shorter history turns")
        try:
            answer = svc.ask(body["question"], body.get("top_k"), body.get("history"))
        except QuestionError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return jsonify(answer.to_dict())

    @app.get("/api/documents/<doc_id>")
    def document(doc_id: str) -> Response:
        doc = svc.document(doc_id)
        if doc is None:
            raise ApiError(404, "unknown_document", f"no document {doc_id!r} in the index")
        return jsonify(_document_object(doc))

    @app.get("/api/health")
    def health() -> Response | tuple[Response, int]:
        try:
            return jsonify(svc.ready())
        except IndexUnavailable as exc:
            body = {"status": "unavailable", "error": {"code": "index_unavailable"}}
            body["error"]["message"] = app.extensions["qa"]["unavailable"](exc)
            return jsonify(body), 503

    @app.get("/api/examples")
    def example_questions() -> Response:
        return jsonify({"questions": svc.examples(schema.MAX_EXAMPLES)})

    @app.post("/api/feedback")
    def record_feedback() -> tuple[Response, int]:
        body = read_json(schema.feedback_validator)
        try:
            record = judgement(
                svc.index(),
                body["question"],
                body["doc_id"],
                body["start"],
                body["end"],
                body["helpful"],
                client=request.remote_addr or "unknown",
            )
            store.add(record)
        except UnknownDocument as exc:
            raise ApiError(404, "unknown_document", str(exc)) from None
        except FeedbackLimitReached as exc:
            headers = {"Retry-After": str(exc.retry_after)}
            raise ApiError(429, "rate_limited", str(exc), headers) from None
        except FeedbackError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return jsonify({"status": "stored"}), 201

    @app.get("/api/openapi.json")
    def openapi_json() -> Response:
        return jsonify(openapi)


def _page(app: Flask) -> None:
    """The chat page, also at /doc/<doc_id> (the page opens that document itself)."""

    @app.get("/")
    @app.get("/doc/<doc_id>")
    def page(doc_id: str | None = None) -> Response:
        resp = send_from_directory(app.template_folder, "index.html", mimetype="text/html")  # type: ignore[arg-type]
        resp.headers["Cache-Control"] = "no-cache"
        return resp


class _Unavailable:
    """What a client reads about an unusable index: the kind of problem, never a path or a
    byte of a file (CURRENT may be anything). The details go to the server log, once each;
    the CLI prints them in full."""

    NO_INDEX = (
        "the index is unavailable: no index has been built yet; the operator must run qa index"
    )
    STORE = (
        "the index is unavailable: its vector store cannot be opened; the operator must check "
        "the server log, then run qa index"
    )
    SERVER = (
        "the index is unavailable: cannot reach the Chroma server or open the build's collection;"
        " the operator must check the server and its log, then run qa index if the data is lost"
    )
    DAMAGED = (
        "the serving build is damaged or unusable (details in the server log); the operator must "
        "run qa index"
    )
    # The core's own words for a kind of problem -> what a client reads instead.
    KINDS: ClassVar[dict[str, str]] = {
        "does not name a build": (
            "the index is unavailable: CURRENT does not name a build; the operator must run "
            "qa index"
        ),
        "no longer intact on disk": (
            "the serving build is no longer intact on disk (details in the server log); the "
            "operator must run qa index"
        ),
    }

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logged = ""

    def __call__(self, exc: IndexUnavailable) -> str:
        detail = str(exc)
        if detail != self.logged:  # not once per request while it lasts
            self.logged = detail
            log.error("index unavailable: %s", detail)
        if not os.path.lexists(self.settings.index_dir / CURRENT):
            return self.NO_INDEX
        for words, message in self.KINDS.items():
            if words in detail:
                return message
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, StoreError):
                return self.SERVER if self.settings.chroma_url else self.STORE
            cause = cause.__cause__
        return self.DAMAGED


def _local(location: str) -> str:
    """A Location header reduced to a path on this server (never another host)."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/")  # `//host/...` would name a host too
    return urlunsplit(("", "", path, parts.query, parts.fragment))


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


def _document_object(doc: Document) -> dict[str, Any]:
    """A document as `GET /api/documents/<doc_id>` returns it (schema.DOCUMENT)."""
    return {
        "id": doc.id,
        "title": doc.display_title,
        "byline": doc.byline,
        "sha256": doc.sha256,
        "text": doc.raw,
        "sections": [{"heading": s.heading, "start": s.start, "end": s.end} for s in doc.sections],
    }
