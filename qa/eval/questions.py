"""The question-set format: its JSON schema, loading and validation, and finding evidence.

A question set is JSON Lines, one question per line (the format is a contract; see the README's
Evaluation section). A question's evidence strings are exact substrings of the corpus, compared
after `qa.text.fold`; `EvidenceFinder` finds them, with raw offsets for the highlight check.
The shipped sets live in `Settings().questions_dir` (`tests/questions` by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.ask.query import MAX_QUESTION_CHARS
from qa.corpus import read_corpus
from qa.errors import QuestionSetError
from qa.settings import Settings
from qa.text import Span, fold

SHIPPED_DIR = Settings().questions_dir

QUESTION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "question", "answer", "docs", "evidence"],
    "properties": {
        "id": {"type": "string", "pattern": r"^\S+$"},
        # The service's own limit: a longer question would be refused instead of evaluated.
        "question": {"type": "string", "pattern": r"\S", "maxLength": MAX_QUESTION_CHARS},
        "answer": {"type": ["string", "null"], "pattern": r"\S"},
        "docs": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^\S+$"},
            "uniqueItems": True,
        },
        "evidence": {
            "type": "array",
            "items": {"type": "string", "pattern": r"\S"},
            "uniqueItems": True,
        },
    },
    "if": {"properties": {"answer": {"type": "null"}}},
    "then": {"properties": {"docs": {"maxItems": 0}, "evidence": {"maxItems": 0}}},
    "else": {"properties": {"docs": {"minItems": 1}, "evidence": {"minItems": 1}}},
}


@dataclass(frozen=True)
class Question:
    """One line of a question set. `answer` None means the corpus cannot answer it."""

    id: str
    question: str
    answer: str | None
    docs: tuple[str, ...]
    evidence: tuple[str, ...]
    set: str = ""
    line: int = 0

    @property
    def answerable(self) -> bool:
        """Whether the corpus answers the question."""
        return self.answer is not None


@dataclass(frozen=True)
class QuestionSet:
    """A loaded, validated question file; `name` is the file stem."""

    name: str
    path: Path
    questions: tuple[Question, ...]


# --- loading and validation -----------------------------------------------------------------


# The shipped sets are split: `dev` is tuned on freely, `heldout` never (only scored).
SPLITS = ("dev", "heldout")


def shipped_question_files() -> list[Path]:
    """The shipped question sets (`<split>/<name>.jsonl`), dev first, in name order."""
    return [p for split in SPLITS for p in sorted((SHIPPED_DIR / split).glob("*.jsonl"))]


def set_name(path: Path) -> str:
    """A set's name: `split/stem` for a shipped set, else the file's stem."""
    return f"{path.parent.name}/{path.stem}" if path.parent.name in SPLITS else path.stem


def split_of(set_name: str) -> str | None:
    """The split a set belongs to (`dev`, `heldout`), or None for a set of one's own."""
    split = set_name.partition("/")[0]
    return split if "/" in set_name and split in SPLITS else None


def corpus_texts(seeds_dir: Path) -> dict[str, str]:
    """Raw text of every corpus document, by id: the files `qa index` reads, through the same
    reader, so evidence is checked against exactly what can be retrieved."""
    docs, _ = read_corpus(seeds_dir)
    return {d.id: d.raw for d in docs}


def load_question_sets(paths: Sequence[Path], documents: Mapping[str, str]) -> list[QuestionSet]:
    """Load and validate question files against the corpus (`documents`: id -> raw text).

    Every problem in every file is collected before anything is raised, so one run shows them
    all; nothing is returned unless all files are valid.
    """
    finder = EvidenceFinder(documents)
    problems: list[str] = []
    sets: list[QuestionSet] = []
    seen_names: dict[str, Path] = {}
    for path in paths:
        name = set_name(path)
        if name == "overall":
            problems.append(f"{path}: 'overall' is reserved for all sets together; rename the file")
            continue
        if name in seen_names:
            problems.append(
                f"{path}: a set named {name!r} is already loaded from {seen_names[name]}"
            )
            continue
        seen_names[name] = path
        questions, file_problems = _read_question_file(path, name, finder)
        problems += file_problems
        sets.append(QuestionSet(name, path, tuple(questions)))
    if problems:
        raise QuestionSetError(problems)
    return sets


def _read_question_file(
    path: Path, name: str, finder: EvidenceFinder
) -> tuple[list[Question], list[str]]:
    # Imported here: only loading needs jsonschema, not everything that imports this module.
    from jsonschema import Draft202012Validator

    questions: list[Question] = []
    problems: list[str] = []
    ids: dict[str, int] = {}
    for n, obj, line_problems in read_json_lines(path, Draft202012Validator(QUESTION_SCHEMA)):
        problems += line_problems
        if obj is None:
            continue
        where = f"{path}:{n}"
        q = Question(
            id=obj["id"],
            question=obj["question"],
            answer=obj["answer"],
            docs=tuple(obj["docs"]),
            evidence=tuple(obj["evidence"]),
            set=name,
            line=n,
        )
        if q.id in ids:
            problems.append(f"{where}: duplicate id {q.id!r} (first on line {ids[q.id]})")
            continue
        ids[q.id] = n
        problems += [f"{where}: {p}" for p in _corpus_problems(q, finder)]
        questions.append(q)
    if not questions and not problems:
        problems.append(f"{path}: no questions")
    return questions, problems


def read_json_lines(path: Path, validator: Any) -> Iterator[tuple[int, Any, list[str]]]:
    """Each non-blank line of a JSON Lines file, in order: its number, its object when it is
    JSON that passes `validator` (else None), and its problems (`file:line: reason`). An
    unreadable file is one problem on line 0."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        yield 0, None, [f"{path}: no such file"]
        return
    except (OSError, UnicodeDecodeError) as exc:
        yield 0, None, [f"{path}: cannot be read as UTF-8 text ({exc})"]
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, None, [f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"]
            continue
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            yield n, None, [f"{where}: {_schema_message(e)}" for e in errors]
            continue
        yield n, obj, []


def _schema_message(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    schema_path = list(error.absolute_schema_path)
    # jsonschema's own words for the if/then/else and pattern rules do not say what is wrong.
    if "then" in schema_path:
        message += " (answer is null, so docs and evidence must be empty)"
    elif "else" in schema_path:
        message += " (an answerable question needs at least one doc and one evidence string)"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is empty or contains white space where none is allowed"
    return f"{path}: {message}" if path else message


def _corpus_problems(q: Question, finder: EvidenceFinder) -> list[str]:
    problems = [f"docs: unknown document {d!r}" for d in q.docs if d not in finder.documents]
    known = [d for d in q.docs if d in finder.documents]
    found_in: dict[str, list[str]] = {}
    for e in q.evidence:
        where = finder.docs_containing(e)
        found_in[e] = where
        if not where:
            problems.append(f"evidence {_short(e)!r} occurs in no document")
        elif known and not set(where) & set(known):
            problems.append(
                f"evidence {_short(e)!r} occurs in {', '.join(where)}, none of which is in docs"
            )
    for d in known:
        if not any(d in where for where in found_in.values()):
            problems.append(f"docs: {d} contains none of the evidence strings")
    return problems


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- finding evidence -----------------------------------------------------------------------


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """`fold(text)` and, for each of its characters, the index in `text` it comes from."""
    out: list[str] = []
    origin: list[int] = []
    space_at: int | None = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if space_at is None:
                space_at = i
            continue
        folded = fold(ch)
        if not folded:
            continue
        if space_at is not None and out:
            out.append(" ")
            origin.append(space_at)
        space_at = None
        out.extend(folded)
        origin.extend([i] * len(folded))
    return "".join(out), origin


class EvidenceFinder:
    """Finds evidence strings in the corpus, folded for matching, with exact raw offsets."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        self.documents = dict(documents)
        # Folded on first use: judging a run only ever needs the documents it cites.
        self._folded: dict[str, tuple[str, list[int]]] = {}

    def _fold(self, doc_id: str) -> tuple[str, list[int]]:
        if doc_id not in self._folded:
            self._folded[doc_id] = fold_with_offsets(self.documents[doc_id])
        return self._folded[doc_id]

    def docs_containing(self, evidence: str) -> list[str]:
        """Ids of the documents in which `evidence` occurs (folded)."""
        key = fold(evidence)
        return [d for d in self.documents if key and key in self._fold(d)[0]]

    def occurrences(self, doc_id: str, evidence: str) -> list[Span]:
        """Raw (start, end) of every occurrence of `evidence` in the document."""
        key = fold(evidence)
        if not key or doc_id not in self.documents:
            return []
        folded, origin = self._fold(doc_id)
        spans = []
        i = folded.find(key)
        while i != -1:
            spans.append((origin[i], origin[i + len(key) - 1] + 1))
            i = folded.find(key, i + 1)
        return spans


def holds_evidence(texts: Iterable[str], evidence: Iterable[str]) -> bool:
    """True when one of `texts` contains one of the evidence strings (both folded)."""
    keys = [fold(e) for e in evidence]
    return any(k and k in fold(t) for t in texts for k in keys)
