"""Conversation sets: the format, loading, and asking every turn after the earlier ones.

JSON Lines, one conversation per line: `{"id": ..., "turns": [{"question", "answer", "docs",
"evidence", "kind"?}, ...]}`; each turn is a question of the question-set format (answer null
when the corpus does not answer it), checked with the same schema and against the corpus.
`kind` optionally labels the turn ("standalone", "switch", "pronoun", "ellipsis", "opener",
"short", ...) for per-kind figures; unlabelled turns count as "first" or "later".

Every turn is asked with the earlier turns as history, carrying the system's own earlier answers
and citations, as the chat page sends them. The shipped sets are
`<questions dir>/conversations/<split>/*.jsonl`; a set is named `<split>/conversations/<stem>`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.ask.followup import MAX_TURNS, Turn
from qa.errors import QuestionSetError
from qa.eval.judging import Judged, judge
from qa.eval.questions import (
    QUESTION_SCHEMA,
    SHIPPED_DIR,
    SPLITS,
    EvidenceFinder,
    Question,
    _corpus_problems,
    read_json_lines,
)
from qa.text import fold

CONVERSATIONS_DIR = SHIPPED_DIR / "conversations"

CONVERSATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "turns"],
    "properties": {
        "id": {"type": "string", "pattern": r"^\S+$"},
        "turns": {
            "type": "array",
            "minItems": 1,
            "items": {
                **{k: v for k, v in QUESTION_SCHEMA.items() if k != "$schema"},
                "required": ["question", "answer", "docs", "evidence"],
                "properties": {
                    **QUESTION_SCHEMA["properties"],
                    "kind": {"type": "string", "pattern": r"^\S+$"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Conversation:
    """One conversation: its turns as questions (ids `<conversation>.<n>`) and their kinds."""

    id: str
    turns: tuple[Question, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class ConversationSet:
    """A loaded, validated conversation file."""

    name: str
    path: Path
    conversations: tuple[Conversation, ...]


def shipped_conversation_files() -> list[Path]:
    """The shipped conversation sets, dev first, in name order."""
    return [p for split in SPLITS for p in sorted((CONVERSATIONS_DIR / split).glob("*.jsonl"))]


def is_conversation_file(path: Path) -> bool:
    """Whether the file's first line is a conversation (has "turns") rather than a question."""
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    return isinstance(obj, dict) and "turns" in obj
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def conversation_set_name(path: Path) -> str:
    """`<split>/conversations/<stem>` for a set in a split folder, else `conversations/<stem>`."""
    split = path.parent.name
    return f"{split}/conversations/{path.stem}" if split in SPLITS else f"conversations/{path.stem}"


def load_conversation_sets(
    paths: Sequence[Path], documents: Mapping[str, str]
) -> list[ConversationSet]:
    """Load and validate conversation files; every problem is collected, then raised."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(CONVERSATION_SCHEMA)
    finder = EvidenceFinder(documents)
    problems: list[str] = []
    sets = []
    for path in paths:
        name = conversation_set_name(path)
        convs: list[Conversation] = []
        ids: set[str] = set()
        for n, obj, line_problems in read_json_lines(path, validator):
            problems += line_problems
            if obj is None:
                continue
            where = f"{path}:{n}"
            if obj["id"] in ids:
                problems.append(f"{where}: duplicate id {obj['id']!r}")
                continue
            ids.add(obj["id"])
            turns = []
            for i, t in enumerate(obj["turns"], start=1):
                q = Question(
                    id=f"{obj['id']}.{i}",
                    question=t["question"],
                    answer=t["answer"],
                    docs=tuple(t["docs"]),
                    evidence=tuple(t["evidence"]),
                    set=name,
                    line=n,
                )
                problems += [f"{where}: turn {i}: {p}" for p in _corpus_problems(q, finder)]
                turns.append(q)
            kinds = tuple(
                t.get("kind") or ("first" if i == 0 else "later")
                for i, t in enumerate(obj["turns"])
            )
            convs.append(Conversation(obj["id"], tuple(turns), kinds))
        if not convs and not problems:
            problems.append(f"{path}: no conversations")
        sets.append(ConversationSet(name, path, tuple(convs)))
    if problems:
        raise QuestionSetError(problems)
    return sets


@dataclass(frozen=True)
class JudgedTurn:
    """A judged turn, with its kind and the history it was asked after."""

    judged: Judged
    kind: str
    history: tuple[Turn, ...]


def run_conversations(
    pipeline: Any,
    sets: Sequence[ConversationSet],
    finder: EvidenceFinder,
    top_k: int,
    progress: Callable[[], None] | None = None,
) -> list[JudgedTurn]:
    """Ask every turn after the earlier ones (with the pipeline's own answers), judge each."""
    units = [tuple(fold(t) for t in u) for u in pipeline.units()]
    out = []
    for cs in sets:
        for conv in cs.conversations:
            history: list[Turn] = []
            for q, kind in zip(conv.turns, conv.kinds, strict=True):
                t0 = time.perf_counter()
                outcome = pipeline.ask(q.question, top_k, tuple(history[-MAX_TURNS:]))
                ms = (time.perf_counter() - t0) * 1000
                keys = [fold(e) for e in q.evidence]
                relevant = sum(1 for u in units if any(k in t for t in u for k in keys))
                judged = judge(q, outcome, finder, ms, relevant)
                out.append(JudgedTurn(judged, kind, tuple(history[-MAX_TURNS:])))
                history.append(
                    Turn(
                        q.question,
                        outcome.answer,
                        tuple((c.doc_id, c.start, c.end) for c in outcome.cited),
                    )
                )
                if progress:
                    progress()
    return out
