"""User feedback on citations: stored durably in SQLite, exported as evaluation questions.

What users flag becomes tomorrow's tests: `qa feedback export` turns every question with at
least one passage judged helpful into a line of the question-set format
(`{"id", "question", "answer", "docs", "evidence"}`). Questions whose passages were all judged
unhelpful are left out: they say what the answer is not, and the format has no way to say that.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import FeedbackError, FeedbackUnavailable, IndexUnavailable, UnknownDocument
from qa.index import builds
from qa.index.loaded import LoadedBuild
from qa.settings import Settings
from qa.text import fold, one_line, sentence_spans

MAX_EVIDENCE_CHARS = 200
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,
    question TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    build TEXT NOT NULL,
    doc_sha256 TEXT NOT NULL,
    passage TEXT NOT NULL
)
"""




@dataclass(frozen=True)
class Feedback:
    """One judgement: was `doc_id[start:end]` helpful for `question`?"""

    question: str
    doc_id: str
    start: int
    end: int
    helpful: bool
    build: str
    doc_sha256: str
    # The span's text when it was judged, so the judgement survives a changed document.
    passage: str
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


class FeedbackStore:
    """A SQLite file in WAL mode; one connection per call, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._init_lock = threading.Lock()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                with self._init_lock:
                    if not self._ready:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        with closing(sqlite3.connect(self.path, timeout=10)) as conn:
                            conn.execute("PRAGMA journal_mode=WAL")
                            conn.execute(_SCHEMA)
                            conn.commit()
                        self._ready = True
            with closing(sqlite3.connect(self.path, timeout=10)) as conn:
                # FULL: a judgement acknowledged with 201 survives a power cut.
                conn.execute("PRAGMA synchronous=FULL")
                yield conn
        except (sqlite3.Error, OSError) as exc:
            raise FeedbackUnavailable(f"the feedback database {self.path} failed: {exc}") from exc

    def add(self, fb: Feedback) -> None:
        """Store one judgement (committed before returning)."""
        with self._connect() as conn, conn:
            conn.execute(
                'INSERT INTO feedback (created, question, doc_id, start, "end", helpful, build, '
                "doc_sha256, passage) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fb.created,
                    fb.question,
                    fb.doc_id,
                    fb.start,
                    fb.end,
                    int(fb.helpful),
                    fb.build,
                    fb.doc_sha256,
                    fb.passage,
                ),
            )

    def all(self) -> list[Feedback]:
        """Every judgement, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(
                'SELECT question, doc_id, start, "end", helpful, build, doc_sha256, passage, '
                "created FROM feedback ORDER BY id"
            ).fetchall()
        return [
            Feedback(q, d, int(s), int(e), bool(h), b, sha, p, c)
            for q, d, s, e, h, b, sha, p, c in rows
        ]


def evidence_text(raw: str, start: int, end: int, limit: int = MAX_EVIDENCE_CHARS) -> str:
    """An exact substring of `raw[start:end]`, at most `limit` chars, ending at a sentence end.

    Whole sentences from the start of the span, on one line; when the first sentence alone is
    too long, it is cut at the last word boundary that fits.
    """
    spans = sentence_spans(raw, start, end)
    if not spans:
        return ""
    a, b = spans[0]
    if b - a > limit:
        cut = raw.rfind(" ", a, a + limit + 1)
        b = cut if cut > a else a + limit
        return raw[a:b].rstrip()
    for s, e in spans[1:]:
        if e - a > limit or "\n" in raw[b:s]:
            break
        b = e
    return raw[a:b]


@dataclass
class ExportSummary:
    """What `export_questions` did with the stored judgements."""

    judgements: int = 0
    questions: int = 0
    exported: int = 0
    skipped_unhelpful: int = 0
    dropped_stale: int = 0

    def describe(self) -> str:
        """One line for the terminal."""
        return (
            f"{self.exported} questions exported from {self.judgements} judgements on "
            f"{self.questions} questions; {self.skipped_unhelpful} skipped (no passage judged "
            f"helpful); {self.dropped_stale} judged spans dropped (no longer in the corpus)"
        )


@dataclass
class _Span:
    doc_id: str
    start: int
    end: int
    passage: str
    votes: int = 0


def export_questions(
    judgements: Iterable[Feedback], documents: dict[str, str]
) -> tuple[list[dict[str, Any]], ExportSummary]:
    """Judgements -> evaluation questions, checked against the current documents' text.

    Judgements on the same question (compared case-, space- and quote-insensitively) are
    pooled. A span is evidence when more people found it helpful than not; a question is
    exported when it has at least one such span. Spans whose text is no longer in the document
    (the corpus changed since) are dropped, so every `evidence` string is an exact substring of
    the current corpus.
    """
    summary = ExportSummary()
    by_question: dict[str, tuple[str, dict[tuple[str, int, int], _Span]]] = {}
    for fb in judgements:
        summary.judgements += 1
        key = fold(fb.question)
        _, spans = by_question.setdefault(key, (one_line(fb.question), {}))
        span = spans.setdefault(
            (fb.doc_id, fb.start, fb.end), _Span(fb.doc_id, fb.start, fb.end, fb.passage)
        )
        span.votes += 1 if fb.helpful else -1

    out = []
    for key, (question, spans) in by_question.items():
        summary.questions += 1
        helpful = [s for s in spans.values() if s.votes > 0]
        if not helpful:
            summary.skipped_unhelpful += 1
            continue
        evidence: list[str] = []
        docs: list[str] = []
        # Most endorsed first; ties keep the order they were first judged in.
        for s in sorted(helpful, key=lambda s: -s.votes):
            raw = documents.get(s.doc_id)
            if raw is None:
                summary.dropped_stale += 1
                continue
            start, end = s.start, s.end
            if raw[start:end] != s.passage:
                found = raw.find(s.passage) if s.passage else -1
                if found < 0:
                    summary.dropped_stale += 1
                    continue
                start, end = found, found + len(s.passage)
            text = evidence_text(raw, start, end)
            if not text:
                continue
            if text not in evidence:
                evidence.append(text)
            if s.doc_id not in docs:
                docs.append(s.doc_id)
        if not evidence:
            continue
        out.append(
            {
                "id": "fb-" + hashlib.sha256(key.encode()).hexdigest()[:10],
                "question": question,
                "answer": evidence[0],
                "docs": docs,
                "evidence": evidence,
            }
        )
        summary.exported += 1
    return out, summary


def current_documents(index_dir: Path) -> dict[str, str]:
    """doc id -> text of the serving build (IndexUnavailable when there is none)."""
    build_id = builds.current_build_id(index_dir)
    if build_id is None:
        raise IndexUnavailable(f"no index in {index_dir}; run `qa index` to build it")
    files = builds.build_files(index_dir, build_id)
    try:
        return {d.id: d.raw for d in builds.read_documents(files)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailable(f"cannot read {files.documents}: {exc}; run `qa index`") from exc


def judgement(
    build: LoadedBuild, question: str, doc_id: str, start: int, end: int, helpful: bool
) -> Feedback:
    """A reader's judgement of a span of a document of the serving build, as a record to store.

    UnknownDocument when the build has no such document; FeedbackError when the span is not
    inside it.
    """
    doc = build.documents.get(doc_id)
    if doc is None:
        raise UnknownDocument(f"no document {doc_id!r} in the index")
    if not 0 <= start < end <= len(doc.raw):
        raise FeedbackError(
            f"start and end must satisfy 0 <= start < end <= {len(doc.raw)} "
            f"(the document's length); got start={start}, end={end}"
        )
    return Feedback(
        question=question,
        doc_id=doc_id,
        start=start,
        end=end,
        helpful=helpful,
        build=build.build_id,
        doc_sha256=doc.sha256,
        passage=doc.raw[start:end],
    )


def export_file(settings: Settings, out: Path | None = None) -> ExportSummary:
    """Export the feedback database as question-set JSON Lines to `out` (or standard output)."""
    documents = current_documents(settings.index_dir)
    questions, summary = export_questions(FeedbackStore(settings.feedback_db).all(), documents)
    lines = "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions)
    if out is None:
        sys.stdout.write(lines)
    else:
        out.write_text(lines, encoding="utf-8")
    return summary
