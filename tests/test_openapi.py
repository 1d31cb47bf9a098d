"""The OpenAPI document is the truth: schemathesis fuzzes every operation against the app.

Positive (schema-valid) and negative (schema-violating) requests for every operation; every
response must be no 5xx, have a documented status and content type, and match its schema.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from qa.ask.service import QAService
from qa.settings import Settings
from qa.web.app import create_app

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_schemathesis_finds_no_500_and_no_schema_violation(
    built_index: Settings, service: QAService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(
        replace(built_index, rate_limit=0, feedback_db=tmp_path / "fb.sqlite3"), service
    )
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue
            label = f"{operation.method.upper()} {operation.path} {mode.value}"
            counts[label] = _fuzz(operation, mode)
    with capsys.disabled():
        print(f"\nschemathesis: {sum(counts.values())} cases over {len(counts)} operation/modes")
        for label, n in counts.items():
            print(f"  {n:4d}  {label}")
    assert sum(counts.values()) >= 8 * 20


def rejected_or_too_large(ctx, response, case):  # type: ignore[no-untyped-def]
    """negative_data_rejection, with 413 counted as a rejection: a schema-violating body (11
    turns of history, say) may also break the 16 KiB body limit, which is checked first."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


def _fuzz(operation: schemathesis.APIOperation, mode: GenerationMode) -> int:
    """Run up to MAX_EXAMPLES generated cases of one operation; how many ran."""
    checks = CHECKS + ([rejected_or_too_large] if mode is GenerationMode.NEGATIVE else [])
    ran = 0

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal ran
        ran += 1
        case.call_and_validate(checks=checks)

    try:
        run()
    except Unsatisfiable:
        # No negative value exists for some inputs (a path segment is always a string).
        assert mode is GenerationMode.NEGATIVE
    return ran


def _has_inputs(operation: schemathesis.APIOperation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("requestBody") or definition.get("parameters"))
