"""User feedback on citations: stored durably in SQLite, exported as evaluation questions.

What users flag becomes tomorrow's tests: `qa feedback export` turns every question with at
least one passage judged helpful into a line of the question-set format
(`{"id", "question", "answer", "docs", "evidence"}`). Questions whose passages were all judged
unhelpful are left out: they say what the answer is not, and the format has no way to say that.

What is accepted is bounded: a judgement must be of a span the serving build can cite (a passage,
or a highlight inside one); a row keeps a reference to the span and at most the opening
MAX_EXCERPT_CHARS of its text (enough to find it again after an edit), not a copy of it; one
client (address) stores at most MAX_ROWS_PER_CLIENT_PER_DAY rows a day; and a client's later
vote on the same question and span replaces its earlier one. Writing never makes a question
wait: at most MAX_WRITERS requests write at once, each waits at most WRITE_TIMEOUT_S for a
locked database, and once one has found it locked, every request is told at once, for
COOL_OFF_S, that feedback is unavailable (503).
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
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.corpus import parse_document
from qa.errors import FeedbackError, FeedbackUnavailable, IndexUnavailable, UnknownDocument
from qa.index import builds
from qa.index.loaded import LoadedBuild
from qa.settings import Settings
from qa.text import fold, one_line, sentence_spans

MAX_EVIDENCE_CHARS = 200
# What a row keeps of the judged text: its opening, enough to find the span again after an edit
# (evidence is at most MAX_EVIDENCE_CHARS from the span's start).
MAX_EXCERPT_CHARS = 2 * MAX_EVIDENCE_CHARS
MAX_ROWS_PER_CLIENT_PER_DAY = 200
MAX_WRITERS = 2  # requests writing at once; the other worker threads stay free for questions
WRITER_WAIT_S = 2.0  # how long a request waits for a writer's slot before 503
WRITE_TIMEOUT_S = 0.5  # how long a writer waits on a locked database before 503
COOL_OFF_S = 2.0  # after a write found the database locked, 503 at once for this long
READ_TIMEOUT_S = 10.0  # `qa feedback export`, off the request path
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
    passage TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    question_key TEXT NOT NULL DEFAULT ''
)
"""
# Columns added since the first version; an older database gains them when opened.
_ADDED_COLUMNS = {
    "client": "TEXT NOT NULL DEFAULT ''",
    "question_key": "TEXT NOT NULL DEFAULT ''",
}
# One vote per client, question and span (rows without a client, from older versions, are
# each one vote, as they always were).
_ONE_VOTE = (
    "CREATE UNIQUE INDEX IF NOT EXISTS feedback_one_vote "
    "ON feedback (client, question_key, doc_id, start, \"end\") WHERE client != ''"
)
_BY_CLIENT = "CREATE INDEX IF NOT EXISTS feedback_by_client ON feedback (client, created)"


class FeedbackLimitReached(FeedbackError):
    """A client has stored its rows for the day; `retry_after` seconds until the next day."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    # The opening of the span's text when it was judged (at most MAX_EXCERPT_CHARS), so the
    # judgement can find its span again in a changed document.
    passage: str
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    # Who judged (the client's address); '' for none: then the row is never merged or capped.
    client: str = ""


class FeedbackStore:
    """A SQLite file in WAL mode; one connection per call, so any thread may use it."""

    def __init__(self, path: Path, max_rows_per_client: int = MAX_ROWS_PER_CLIENT_PER_DAY) -> None:
        self.path = path
        self.max_rows_per_client = max_rows_per_client
        self._ready = False
        self._init_lock = threading.Lock()
        self._writers = threading.BoundedSemaphore(MAX_WRITERS)
        self._failed_until = 0.0  # time.monotonic() until which writes fail at once

    @contextmanager
    def _connect(self, timeout: float) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                with self._init_lock:
                    if not self._ready:
                        self.path.parent.mkdir(parents=True, exist_ok=True)
                        with closing(sqlite3.connect(self.path, timeout=timeout)) as conn:
                            conn.execute("PRAGMA journal_mode=WAL")
                            conn.execute(_SCHEMA)
                            have = {r[1] for r in conn.execute("PRAGMA table_info(feedback)")}
                            for name, kind in _ADDED_COLUMNS.items():
                                if name not in have:
                                    conn.execute(f"ALTER TABLE feedback ADD COLUMN {name} {kind}")
                            conn.execute(_ONE_VOTE)
                            conn.execute(_BY_CLIENT)
                            conn.commit()
                        self._ready = True
            with closing(sqlite3.connect(self.path, timeout=timeout)) as conn:
                # FULL: a judgement acknowledged with 201 survives a power cut.
                conn.execute("PRAGMA synchronous=FULL")
                yield conn
        except (sqlite3.Error, OSError) as exc:
            raise FeedbackUnavailable(f"the feedback database {self.path} failed: {exc}") from exc

    def add(self, fb: Feedback) -> None:
        """Store one judgement (committed before returning); a client's new vote on the same
        question and span replaces its old one.

        FeedbackUnavailable after WRITE_TIMEOUT_S on a locked database, and then at once for
        COOL_OFF_S (so requests never pile up behind a lock); FeedbackLimitReached when the
        client has stored its rows for the day.
        """
        self._fail_fast()
        if not self._writers.acquire(timeout=WRITER_WAIT_S):
            raise FeedbackUnavailable(f"the feedback database {self.path} is busy")
        try:
            self._fail_fast()
            try:
                with self._connect(WRITE_TIMEOUT_S) as conn, conn:
                    conn.execute("BEGIN IMMEDIATE")
                    self._write(conn, fb)
            except FeedbackUnavailable:
                self._failed_until = time.monotonic() + COOL_OFF_S
                raise
        finally:
            self._writers.release()

    def _fail_fast(self) -> None:
        if time.monotonic() < self._failed_until:
            raise FeedbackUnavailable(
                f"the feedback database {self.path} was locked or failing a moment ago"
            )

    def _write(self, conn: sqlite3.Connection, fb: Feedback) -> None:
        key = fold(fb.question) if fb.client else ""
        values = (fb.created, fb.question, int(fb.helpful), fb.build, fb.doc_sha256, fb.passage)
        if fb.client:
            row = conn.execute(
                "SELECT id FROM feedback WHERE client = ? AND question_key = ? AND doc_id = ? "
                'AND start = ? AND "end" = ?',
                (fb.client, key, fb.doc_id, fb.start, fb.end),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE feedback SET created = ?, question = ?, helpful = ?, build = ?, "
                    "doc_sha256 = ?, passage = ? WHERE id = ?",
                    (*values, row[0]),
                )
                return
            day = fb.created[:10]
            (stored,) = conn.execute(
                "SELECT COUNT(*) FROM feedback WHERE client = ? AND created >= ?",
                (fb.client, day),
            ).fetchone()
            if stored >= self.max_rows_per_client:
                raise FeedbackLimitReached(
                    f"this client has stored {stored} judgements today, the most one client "
                    "may; try again tomorrow (UTC)",
                    _seconds_to_next_utc_day(),
                )
        conn.execute(
            "INSERT INTO feedback (created, question, helpful, build, doc_sha256, passage, doc_id, "
            'start, "end", client, question_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            (*values, fb.doc_id, fb.start, fb.end, fb.client, key),
        )

    def all(self) -> list[Feedback]:
        """Every judgement, oldest first."""
        if not self.path.exists():
            return []
        with self._connect(READ_TIMEOUT_S) as conn:
            rows = conn.execute(
                'SELECT question, doc_id, start, "end", helpful, build, doc_sha256, passage, '
                "created, client FROM feedback ORDER BY id"
            ).fetchall()
        return [
            Feedback(q, d, int(s), int(e), bool(h), b, sha, p, c, who)
            for q, d, s, e, h, b, sha, p, c, who in rows
        ]


def _seconds_to_next_utc_day() -> int:
    now = time.time()
    return max(1, int(86400 - now % 86400))


def evidence_text(
    raw: str,
    start: int,
    end: int,
    limit: int = MAX_EVIDENCE_CHARS,
    headings: frozenset[int] = frozenset(),
) -> str:
    """An exact substring of `raw[start:end]`, at most `limit` chars, ending at a sentence end.

    Whole sentences from the start of the span, on one line; when the first sentence alone is
    too long, it is cut at the last word boundary that fits. Heading lines that open the span
    (a section's first passage opens with its heading; `headings` are their starts) are passed
    over: the evidence is what the passage says, not what its section is called.
    """
    spans = sentence_spans(raw, start, end)
    while len(spans) > 1 and spans[0][0] in headings:
        spans = spans[1:]
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
            # `passage` is the span's opening (all of it in rows of older versions).
            start, end = s.start, s.end
            if raw[start : start + len(s.passage)] != s.passage:
                found = raw.find(s.passage) if s.passage else -1
                if found < 0:
                    summary.dropped_stale += 1
                    continue
                start, end = found, min(len(raw), found + (s.end - s.start))
            text = evidence_text(raw, start, end, headings=heading_starts(s.doc_id, raw))
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


@lru_cache(maxsize=64)
def heading_starts(doc_id: str, raw: str) -> frozenset[int]:
    """Where the heading lines of an article's text start (as the parser reads them)."""
    return parse_document(doc_id, raw).heading_starts


def current_documents(index_dir: Path) -> dict[str, str]:
    """doc id -> text of the serving build (IndexUnavailable when there is none)."""
    build_id = builds.current_build_id(index_dir)
    if build_id is None:
        raise IndexUnavailable(f"no index in {index_dir.resolve()}; run `qa index` to build it")
    files = builds.build_files(index_dir, build_id)
    try:
        return {d.id: d.raw for d in builds.read_documents(files)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexUnavailable(f"cannot read {files.documents}: {exc}; run `qa index`") from exc


def judgement(
    build: LoadedBuild,
    question: str,
    doc_id: str,
    start: int,
    end: int,
    helpful: bool,
    client: str = "",
) -> Feedback:
    """A reader's judgement of a span of a document of the serving build, as a record to store.

    UnknownDocument when the build has no such document; FeedbackError when the span is not
    one the build can cite: a passage (where it stands, or where a merged duplicate stands), or
    a highlight inside one (a run of its whole sentences).
    """
    doc = build.documents.get(doc_id)
    if doc is None:
        raise UnknownDocument(f"no document {doc_id!r} in the index")
    if not 0 <= start < end <= len(doc.raw):
        raise FeedbackError(
            f"start and end must satisfy 0 <= start < end <= {len(doc.raw)} "
            f"(the document's length); got start={start}, end={end}"
        )
    if not citable(build, doc_id, start, end):
        raise FeedbackError(
            f"start={start}, end={end} is not a span the index cites in {doc_id!r}: send a "
            "citation's start and end, or one of its highlights"
        )
    return Feedback(
        question=question,
        doc_id=doc_id,
        start=start,
        end=end,
        helpful=helpful,
        build=build.build_id,
        doc_sha256=doc.sha256,
        passage=doc.raw[start : min(end, start + MAX_EXCERPT_CHARS)],
        client=client,
    )


def citable(build: LoadedBuild, doc_id: str, start: int, end: int) -> bool:
    """True when `doc_id[start:end]` is a passage of the build (or a place a merged duplicate
    stands), or a run of whole sentences of one (what a highlight is)."""
    for p in build.passages:
        if p.doc_id == doc_id and p.start <= start and end <= p.end:
            if (p.start, p.end) == (start, end):
                return True
            starts = {a for a, _ in p.sentences}
            ends = {b for _, b in p.sentences}
            if start in starts and end in ends:
                return True
        for loc in p.also_at:
            if (loc.doc_id, loc.start, loc.end) == (doc_id, start, end):
                return True
    return False


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
