"""Every shipped question's answer, reduced to what a refactor must not change.

Run `python tests/behaviour/snapshot.py --write --index D` (D: an fp32 build) to record it in
`answers.json` beside this file; `tests/test_behaviour.py` asks every question again and
compares ranks (document and span of each citation), highlights and the answerability decision.
A change that is meant to move answers (a new ranking) rewrites the file in the same commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa.ask.service import QAService

HERE = Path(__file__).resolve().parent
SNAPSHOT = HERE / "answers.json"
QUESTIONS = HERE.parent / "questions"
TOP_K = 5


def questions() -> list[tuple[str, str]]:
    """(set/id, question) for every line of the shipped question sets, in a stable order."""
    out = []
    for path in sorted(QUESTIONS.glob("*/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                q = json.loads(line)
                out.append((f"{path.parent.name}/{path.stem}/{q['id']}", q["question"]))
    return out


def reduce(answer: dict) -> dict:
    """The parts of an answer object that say what was found and what was highlighted."""
    return {
        "answerable": answer["answerable"],
        "citations": [
            [c["doc_id"], c["start"], c["end"], [list(h) for h in c["highlights"]]]
            for c in answer["citations"]
        ],
    }


def current(service: QAService) -> dict[str, dict]:
    """Every shipped question asked of `service` once."""
    return {key: reduce(service.ask(q, TOP_K).to_dict()) for key, q in questions()}


def main(argv: list[str]) -> int:
    import os

    # fp32, as the tests run (tests/conftest.py): its answers are the same on every host.
    # `--index` must then name a build made with it (QA_ENCODER=onnx-fused qa index --index D).
    os.environ.setdefault("QA_ENCODER", "onnx-fused")
    from qa.ask.service import QAService
    from qa.settings import Settings

    index_dir = Path(argv[argv.index("--index") + 1]) if "--index" in argv else None
    service = QAService(Settings.from_env(index_dir=index_dir))
    got = current(service)
    if "--write" in argv:
        SNAPSHOT.write_text(json.dumps(got, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {len(got)} answers to {SNAPSHOT}")
        return 0
    want = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    diff = [k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k)]
    for k in diff:
        print(f"{k}: was {want.get(k)}\n{' ' * len(k)}  now {got.get(k)}")
    print(f"{len(got) - len(diff)} of {len(got)} answers unchanged")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
