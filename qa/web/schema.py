"""Every JSON shape of the HTTP API, in one place: request validation and the OpenAPI document.

The request schemas are checked with jsonschema before anything reaches the service; the
response schemas describe exactly what the handlers return (no extra fields), so the OpenAPI
document can be tested against the running app.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from qa.ask.followup import MAX_ANSWER_CHARS, MAX_TURN_CITATIONS, MAX_TURNS
from qa.ask.query import MAX_QUESTION_CHARS, MAX_TOP_K

MAX_BODY_BYTES = 16 * 1024
MAX_DOC_ID_CHARS = 200
MAX_EXAMPLES = 5

_INT = {"type": "integer"}
_OFFSET = {"type": "integer", "minimum": 0}
_SPAN = {"type": "array", "items": _OFFSET, "minItems": 2, "maxItems": 2}

QUESTION = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_QUESTION_CHARS,
    "pattern": r"\S",
    "description": f"a string of 1 to {MAX_QUESTION_CHARS} characters, not only white space",
}

CITED_SPAN = {
    "type": "object",
    "properties": {
        "doc_id": {"type": "string", "minLength": 1, "maxLength": 200, "description": "a string"},
        "start": {**_OFFSET, "description": "an integer >= 0"},
        "end": {**_OFFSET, "description": "an integer >= 0"},
    },
    "required": ["doc_id", "start", "end"],
    "additionalProperties": False,
    "description": "an object {doc_id: string, start: integer >= 0, end: integer >= 0}",
}

TURN = {
    "type": "object",
    "properties": {
        "question": QUESTION,
        "answer": {
            "type": "string",
            "maxLength": MAX_ANSWER_CHARS,
            "description": f"a string of at most {MAX_ANSWER_CHARS} characters",
        },
        "citations": {
            "type": "array",
            "items": CITED_SPAN,
            "maxItems": MAX_TURN_CITATIONS,
            "description": f"a list of at most {MAX_TURN_CITATIONS} {{doc_id, start, end}} objects",
        },
    },
    "required": ["question"],
    "additionalProperties": False,
    "description": "an object {question: string, answer?: string, citations?: "
    "[{doc_id, start, end}]}",
}

HISTORY = {
    "type": "array",
    "items": TURN,
    "maxItems": MAX_TURNS,
    "description": f"a list of at most {MAX_TURNS} earlier turns, oldest first, each "
    "{question, answer?, citations?}",
}

ASK_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": QUESTION,
        "history": HISTORY,
        "top_k": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TOP_K,
            "default": 5,
            "description": f"an integer from 1 to {MAX_TOP_K}: how many citations to return",
        },
    },
    "required": ["question"],
    "additionalProperties": False,
    "examples": [
        {"question": "Where did Rubio meet Lavrov?", "top_k": 5},
        {
            "question": "What did Trump think about it?",
            "history": [
                {
                    "question": "Where did Rubio meet Lavrov?",
                    "answer": "... met with ... Lavrov in Malaysia. [1]",
                    "citations": [{"doc_id": "000_ab687fec20728463", "start": 1890, "end": 2508}],
                }
            ],
        },
    ],
}

FEEDBACK_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": QUESTION,
        "doc_id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_DOC_ID_CHARS,
            "description": "the id of a document of the serving build (a citation's doc_id)",
        },
        "start": {**_OFFSET, "description": "an integer >= 0: the cited span's start offset"},
        "end": {**_OFFSET, "description": "an integer > start: the cited span's end offset"},
        "helpful": {"type": "boolean", "description": "true or false: was the passage helpful"},
    },
    "required": ["question", "doc_id", "start", "end", "helpful"],
    "additionalProperties": False,
}

LOCATION = {
    "type": "object",
    "properties": {"doc_id": {"type": "string"}, "start": _OFFSET, "end": _OFFSET},
    "required": ["doc_id", "start", "end"],
    "additionalProperties": False,
}

CITATION = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "minimum": 1},
        "doc_id": {"type": "string"},
        "title": {"type": "string"},
        "byline": {"type": ["string", "null"]},
        "section": {"type": "string"},
        "start": _OFFSET,
        "end": _OFFSET,
        "text": {"type": "string", "description": "exactly the document's text[start:end]"},
        "highlights": {"type": "array", "items": _SPAN},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "doc_sha256": {"type": "string"},
        "also_at": {"type": "array", "items": LOCATION},
        "used": {"type": "boolean", "description": "whether the answer text cites it"},
    },
    "required": [
        "n",
        "doc_id",
        "title",
        "byline",
        "section",
        "start",
        "end",
        "text",
        "highlights",
        "score",
        "doc_sha256",
        "also_at",
        "used",
    ],
    "additionalProperties": False,
}

SHORT_ANSWER = {
    "type": ["object", "null"],
    "properties": {
        "text": {"type": "string", "description": "exactly the document's text[start:end]"},
        "doc_id": {"type": "string"},
        "start": _OFFSET,
        "end": _OFFSET,
    },
    "required": ["text", "doc_id", "start", "end"],
    "additionalProperties": False,
    "description": "the exact span answering a factoid question (who, when, where, how many, "
    "which X), inside a highlight of the first citation; null when there is none",
}

ANSWER = {
    "type": "object",
    "properties": {
        "question": {"type": "string"},
        "searched": {
            "type": "string",
            "description": "the standalone query searched: the question itself, or a follow-up "
            "resolved with the conversation",
        },
        "answerable": {"type": "boolean"},
        "answer": {
            "type": "string",
            "description": "up to three corpus sentences, each followed by the [n] of every "
            "citation it stands in",
        },
        "short_answer": SHORT_ANSWER,
        "citations": {"type": "array", "items": CITATION},
        "timing_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        "build": {"type": "string"},
    },
    "required": [
        "question",
        "searched",
        "answerable",
        "answer",
        "short_answer",
        "citations",
        "timing_ms",
        "build",
    ],
    "additionalProperties": False,
}

DOCUMENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "byline": {"type": ["string", "null"]},
        "sha256": {"type": "string"},
        "text": {"type": "string"},
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"heading": {"type": "string"}, "start": _OFFSET, "end": _OFFSET},
                "required": ["heading", "start", "end"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["id", "title", "byline", "sha256", "text", "sections"],
    "additionalProperties": False,
}

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. bad_json"},
                "message": {"type": "string", "description": "what went wrong and how to fix it"},
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

HEALTH = {
    "type": "object",
    "properties": {
        "status": {"const": "ok"},
        "documents": {**_INT, "minimum": 0},
        "passages": {**_INT, "minimum": 0},
        "build": {"type": "string"},
        "model": {"type": "string"},
    },
    "required": ["status", "documents", "passages", "build", "model"],
    "additionalProperties": False,
}

UNAVAILABLE = {
    "type": "object",
    "properties": {"status": {"const": "unavailable"}, "error": ERROR["properties"]["error"]},
    "required": ["status", "error"],
    "additionalProperties": False,
}

EXAMPLES = {
    "type": "object",
    "properties": {
        "questions": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_EXAMPLES}
    },
    "required": ["questions"],
    "additionalProperties": False,
}

FEEDBACK_STORED = {
    "type": "object",
    "properties": {"status": {"const": "stored"}},
    "required": ["status"],
    "additionalProperties": False,
}

ask_validator = Draft202012Validator(ASK_REQUEST)
feedback_validator = Draft202012Validator(FEEDBACK_REQUEST)


def _json(schema_ref: str, description: str, headers: dict[str, Any] | None = None) -> dict:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "The body is not valid JSON.",
        404: "No such document.",
        413: f"The body is larger than {MAX_BODY_BYTES} bytes.",
        415: "The body is not sent as application/json.",
        422: "The JSON does not match the request schema; the message says which field.",
        429: "Too many requests from this client; retry after Retry-After seconds.",
        503: "The index is missing or unusable (the message says why), or storage failed.",
    }
    out = {}
    for status in statuses:
        headers = None
        if status == 429:
            headers = {
                "Retry-After": {
                    "description": "seconds to wait",
                    "schema": {"type": "integer", "minimum": 1},
                    "required": True,
                }
            }
        out[str(status)] = _json("Error", reasons[status], headers)
    return out


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _json_body(schema_ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_DOC_ID = {
    "name": "doc_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "description": "a document id (the article's file name without .txt)",
}


# Every operation of the API (data, not code: the schemas above give the shapes).
PATHS: dict[str, Any] = {
    "/api/ask": {
        "post": {
            "summary": "Answer a question with numbered citations",
            "operationId": "ask",
            "requestBody": _json_body("AskRequest"),
            "responses": {
                "200": _json("Answer", "The answer object."),
                **_errors(400, 413, 415, 422, 429, 503),
            },
        }
    },
    "/api/documents/{doc_id}": {
        "get": {
            "summary": "A document of the serving build, to show a citation in context",
            "operationId": "document",
            "parameters": [_DOC_ID],
            "responses": {
                "200": _json("Document", "The document."),
                **_errors(404, 429, 503),
            },
        }
    },
    "/api/health": {
        "get": {
            "summary": "Readiness: 200 once the model and the index are loaded",
            "operationId": "health",
            "responses": {
                "200": _json("Health", "Ready."),
                "503": _json("Unavailable", "Not ready; the error says why."),
            },
        }
    },
    "/api/examples": {
        "get": {
            "summary": "Example questions taken from the articles' own FAQ sections",
            "operationId": "examples",
            "responses": {
                "200": _json("Examples", "Up to five questions."),
                **_errors(429, 503),
            },
        }
    },
    "/api/feedback": {
        "post": {
            "summary": "Record whether a cited passage helped answer a question",
            "operationId": "feedback",
            "requestBody": _json_body("FeedbackRequest"),
            "responses": {
                "201": _json("FeedbackStored", "Stored durably."),
                **_errors(400, 404, 413, 415, 422, 429, 503),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(429),
            },
        }
    },
    "/": {
        "get": {
            "summary": "The chat page",
            "operationId": "page",
            "responses": {"200": _html("The chat page.")},
        }
    },
    "/static/{filename}": {
        "get": {
            "summary": "The page's script, style sheet and icon (no CDN)",
            "operationId": "static",
            "parameters": [
                {
                    "name": "filename",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
            "responses": {
                "200": {
                    "description": "The file.",
                    "content": {
                        media: {"schema": {"type": "string"}}
                        for media in ("text/css", "text/javascript", "image/svg+xml")
                    },
                },
                **_errors(404),
            },
        }
    },
    "/doc/{doc_id}": {
        "get": {
            "summary": "The chat page with a document open in the source panel",
            "operationId": "documentPage",
            "parameters": [_DOC_ID],
            "responses": {"200": _html("The chat page."), **_errors(404)},
        }
    },
}


def openapi_document(default_top_k: int = 5) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every endpoint, built from the schemas above."""
    ask_request = {
        **ASK_REQUEST,
        "properties": {
            **ASK_REQUEST["properties"],
            "top_k": {**ASK_REQUEST["properties"]["top_k"], "default": default_top_k},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "News Q&A",
            "version": "1",
            "description": "Answers from a news corpus with exact, verified citations. "
            "Every error is {error: {code, message}}.",
        },
        "paths": PATHS,
        "components": {
            "schemas": {
                "AskRequest": ask_request,
                "FeedbackRequest": FEEDBACK_REQUEST,
                "Answer": ANSWER,
                "Citation": CITATION,
                "Document": DOCUMENT,
                "Health": HEALTH,
                "Unavailable": UNAVAILABLE,
                "Examples": EXAMPLES,
                "FeedbackStored": FEEDBACK_STORED,
                "Error": ERROR,
            }
        },
    }
