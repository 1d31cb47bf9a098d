"""A refactor keeps behaviour: every shipped question gets the ranks, highlights and
answerability decision recorded in tests/behaviour/answers.json (see snapshot.py there)."""

from __future__ import annotations

import json

from qa.ask.service import QAService
from tests.behaviour.snapshot import SNAPSHOT, current


def test_every_shipped_answer_is_unchanged(service: QAService) -> None:
    want = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    got = current(service)
    assert set(got) == set(want), "the shipped question sets changed: rewrite the snapshot"
    changed = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not changed, f"{len(changed)} of {len(want)} answers changed: {changed}"
