"""Reading a request: a JSON body within the size limit, parsed strictly, checked against its
schema, with every failure turned into an ApiError whose message says what to fix."""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

from flask import request
from jsonschema import Draft202012Validator

from qa.web import schema

_SURROGATE = re.compile("[\ud800-\udfff]")


class ApiError(Exception):
    """An error response: status, a machine-readable code and a message saying what to fix."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


_TOO_LARGE = f"the body is larger than {schema.MAX_BODY_BYTES} bytes"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def read_json(validator: Draft202012Validator, cut: str = "send a shorter body") -> dict[str, Any]:
    """The request body as a JSON object that passes `validator`, or an ApiError (a body too
    large says what to `cut`)."""
    too_large = ApiError(413, "too_large", f"{_TOO_LARGE}; {cut}")
    if (request.content_length or 0) > schema.MAX_BODY_BYTES:
        raise too_large
    if request.mimetype != "application/json":
        got = request.mimetype or "no Content-Type"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as JSON with Content-Type: application/json (got {got})",
        )
    data = _read_body()
    if data is None:
        raise too_large
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
    return {name: _plain(value, name) for name, value in body.items()}


def _plain(value: Any, where: str) -> Any:
    """`value` with integral floats as ints (5.0 is an integer to JSON Schema; Python wants 5),
    nested lists and objects alike; an ApiError for a string with an unpaired surrogate."""
    if isinstance(value, str) and _SURROGATE.search(value):
        raise ApiError(422, "invalid_request", f"{where} contains an unpaired surrogate")
    if isinstance(value, float):
        return int(value)
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    return value


def _read_body() -> bytes | None:
    """The raw body; None when it is longer than MAX_BODY_BYTES, even when no Content-Length
    was sent."""
    # Werkzeug caps the stream at MAX_CONTENT_LENGTH (one byte more than allowed) by ending it
    # silently: reading one byte past the limit is what tells a too-large body apart.
    data = request.stream.read(schema.MAX_BODY_BYTES + 1)
    return None if len(data) > schema.MAX_BODY_BYTES else data


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
    if len(err.path) > 1:  # inside a list or object: "history[2].citations[0].start"
        name += "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in list(err.path)[1:])
        rule = err.schema.get("description", rule) if isinstance(err.schema, dict) else rule
        if err.validator == "required":
            missing = [f for f in err.validator_value if f not in err.instance]
            return f"{name} is missing the field {missing[0]!r}; {name} must be {rule}"
        if err.validator == "additionalProperties":
            allowed = err.schema.get("properties", {})
            extra = sorted(set(err.instance) - set(allowed))
            return f"{name} has an unknown field {extra[0]!r}; allowed: {', '.join(allowed)}"
    if err.validator == "maxItems" and isinstance(err.instance, list):
        return f"{name} must be {rule} (got {len(err.instance)})"
    value = err.instance
    if err.validator == "maxLength" and isinstance(value, str):
        got = f"got {len(value)} characters"
    elif isinstance(value, str) and not value.strip():
        got = "got an empty or blank string"
    else:
        got = f"got {json.dumps(value)[:40]}"
    return f"{name} must be {rule} ({got})"
