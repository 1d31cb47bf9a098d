"""Measured figures of the reliability tests, kept in test-artifacts/reliability.json."""

from __future__ import annotations

import json
import threading

from tests.paths import ROOT as PROJECT_ROOT

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
_lock = threading.Lock()


def record(name: str, value: object) -> None:
    """Store `value` under `name` (RELIABILITY.md quotes these figures)."""
    path = ARTIFACTS / "reliability.json"
    with _lock:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[name] = value
        path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"\n{name}: {json.dumps(value)}")
