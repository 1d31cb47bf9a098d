"""The shipped question material: big and varied enough, and a heldout split that is really
held out (no heldout question is a near copy of a dev one)."""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from pathlib import Path

from qa.text import fold
from tests.paths import QUESTIONS

NEAR_COPY = 0.9


def _questions(split: str) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((QUESTIONS / split).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def near_copies(dev: list[str], heldout: list[str], limit: float = NEAR_COPY) -> list[int]:
    """Indexes of the heldout questions whose folded text is at least `limit` similar to a dev
    question's (difflib's ratio)."""
    folded = [fold(q) for q in dev]
    out = []
    for i, q in enumerate(heldout):
        h = fold(q)
        for d in folded:
            m = SequenceMatcher(None, h, d, autojunk=False)
            if m.real_quick_ratio() >= limit and m.quick_ratio() >= limit and m.ratio() >= limit:
                out.append(i)
                break
    return out


def test_no_heldout_question_nearly_copies_a_dev_one() -> None:
    dev = [q["question"] for q in _questions("dev")]
    heldout = [q["question"] for q in _questions("heldout")]
    copies = near_copies(dev, heldout)
    # Ids only: heldout questions are scored, not read.
    ids = [_questions("heldout")[i]["id"] for i in copies]
    assert not copies, f"heldout questions that nearly copy a dev question: {ids}"


def _turns(split: str) -> list[dict]:
    return [
        turn
        for path in sorted((QUESTIONS / "conversations" / split).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for turn in json.loads(line)["turns"]
    ]


def test_no_heldout_conversation_turn_nearly_copies_a_dev_one() -> None:
    # Turns of a few words ("why?", "and Germany?") recur by nature; the rest must not.
    def worded(turns: list[dict]) -> list[str]:
        return [t["question"] for t in turns if len(t["question"].split()) >= 4]

    dev = worded(_turns("dev")) + [q["question"] for q in _questions("dev")]
    heldout = worded(_turns("heldout"))
    copies = near_copies(dev, heldout)
    assert not copies, f"{len(copies)} heldout conversation turns nearly copy a dev question"


def test_the_near_copy_check_catches_a_rewording() -> None:
    assert near_copies(["Where did Rubio and Lavrov meet?"], ["where did rubio and lavrov meet"])
    assert not near_copies(["Where did Rubio and Lavrov meet?"], ["Who wrote the FAQ article?"])


def test_the_material_is_big_and_varied() -> None:
    dev, heldout = _questions("dev"), _questions("heldout")
    everything = dev + heldout
    assert len(everything) >= 400 and len(heldout) >= 120
    assert sum(q["answer"] is None for q in everything) >= 100
    kinds = [set(q.get("kind", [])) for q in everything]
    assert sum(bool(k & {"keyword", "lowercase"}) for k in kinds) >= len(everything) / 4 - 30
    assert sum("typo" in k for k in kinds) >= 40
    assert sum("paraphrase" in k for k in kinds) >= 80


def test_question_files_are_where_the_evaluation_looks() -> None:
    assert isinstance(QUESTIONS, Path) and (QUESTIONS / "dev").is_dir()
    assert (QUESTIONS / "heldout").is_dir()
