"""Read the corpus: each article becomes a Document of typed blocks with exact character offsets.

The articles are scraped news pages and are messy on purpose. The parser works line by line and
then splits a line where a sentence is glued to the next one (`in Ukraine.What are ...?`), so an
FAQ question or a heading stuck to the end of the previous answer becomes its own block.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from qa.errors import CorpusFileError, IndexUnavailable
from qa.text import Span, is_glued_boundary

HEADING = "heading"
PARAGRAPH = "paragraph"
LIST_ITEM = "list_item"
TABLE_HEADER = "table_header"
TABLE_ROW = "table_row"
FAQ_QUESTION = "faq_question"
FAQ_ANSWER = "faq_answer"

MAX_HEADING_CHARS = 110
MAX_HEADING_WORDS = 16
MAX_QUESTION_WORDS = 40
# Larger files are skipped: an article is tens of kilobytes; a 2 MB one is a mistake.
MAX_FILE_BYTES = 2_000_000


@dataclass
class FileReport:
    """What happened to one corpus file."""

    name: str
    status: str  # indexed | skipped | failed
    reason: str = ""
    passages: int = 0
    tokens: int = 0
    embedded: int = 0
    seconds: float = 0.0


_BYLINE = re.compile(r"By\s+[A-Z][\w.'’-]*(?:\s+[A-Z][\w.'’-]*){0,4}")
_LIST_MARK = re.compile(r"(?:[-*•–]|\d{1,3}[.)])\s+")
_TABLE_SEPARATOR = re.compile(r"[\s|:]*-{2,}[\s|:-]*")
_QUESTION_PREFIX = re.compile(r"(?:Question|Q)\s*[:.]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One structural piece of an article: `raw[start:end]` is its text."""

    kind: str
    start: int
    end: int
    section: str
    # For a table row, the header row's cells, so the row keeps its meaning on its own.
    header: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    """A heading and the span of text it governs (up to the next heading)."""

    heading: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A parsed article. `id` is the file stem; every offset indexes `raw`."""

    id: str
    path: str
    raw: str
    sha256: str
    title: str | None
    byline: str | None
    blocks: tuple[Block, ...]
    sections: tuple[Section, ...] = field(default=())

    @property
    def display_title(self) -> str:
        """The title, or the first heading, or the id: something a person can read."""
        if self.title:
            return self.title
        headings = [b for b in self.blocks if b.kind == HEADING]
        return self.text(headings[0]) if headings else self.id

    @cached_property
    def heading_starts(self) -> frozenset[int]:
        """Start offsets of the heading lines."""
        return frozenset(b.start for b in self.blocks if b.kind == HEADING)

    @cached_property
    def row_headers(self) -> dict[int, tuple[str, ...]]:
        """Start offset of each table row -> the header cells of its table."""
        return {b.start: b.header for b in self.blocks if b.kind == TABLE_ROW}

    def text(self, span: Block | Section | Span) -> str:
        """The exact text of a block, section or (start, end) span."""
        if isinstance(span, tuple):
            return self.raw[span[0] : span[1]]
        return self.raw[span.start : span.end]


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def decode_article(data: bytes) -> str:
    """Decode a corpus file, refusing what is not UTF-8 text (with the reason)."""
    if not data.strip():
        raise CorpusFileError("empty")
    if b"\x00" in data:
        raise CorpusFileError("not text (binary data)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusFileError(f"not UTF-8 (byte {exc.start})") from exc
    # A BOM is decoded as U+FEFF, not stripped, so offsets still match the file.
    if sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f") > len(text) // 100 + 1:
        raise CorpusFileError("not text (control characters)")
    return text


def load_document(path: Path) -> Document:
    """Read and parse one article file."""
    data = path.read_bytes()
    return parse_document(path.stem, decode_article(data), sha256_bytes(data), str(path))


def read_corpus(seeds_dir: Path) -> tuple[list[Document], list[FileReport]]:
    """Parse every corpus file; unusable ones are reported as skipped or failed, not raised.

    The one reader of the corpus folder: the index, the FAQ set and the evaluation all see the
    same files (regular `.txt` files with a UTF-8 name and one link, symlinks only inside the
    folder, at most MAX_FILE_BYTES, one file per document id).
    """
    if not seeds_dir.is_dir():
        raise IndexUnavailable(f"the corpus folder {seeds_dir} does not exist")
    root = seeds_dir.resolve()
    docs: list[Document] = []
    reports: list[FileReport] = []
    for path in sorted(seeds_dir.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        t0 = time.perf_counter()
        report = FileReport(_shown_name(path.name), "skipped")
        reports.append(report)
        if report.name != path.name:  # undecodable bytes, kept by Python as lone surrogates
            report.reason = "file name is not valid UTF-8 (rename it)"
            continue
        if path.suffix.lower() != ".txt":
            report.reason = "not a .txt file"
            continue
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            report.reason = "broken or looping symlink"
            continue
        if path.is_symlink() and root not in target.parents:
            report.reason = "symlink pointing outside the corpus folder"
            continue
        if not target.is_file():  # a FIFO or a device would block the read forever
            report.reason = "not a regular file"
            continue
        links = target.stat().st_nlink
        if links > 1:  # its other name may be anywhere, outside the folder too: like a symlink
            report.reason = (
                f"hard link ({links} names for one file; it may live outside the corpus "
                "folder): copy the file in instead"
            )
            continue
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                report.reason = f"too large ({size / 1e6:.1f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)"
                continue
            doc = load_document(path)
        except CorpusFileError as exc:
            report.reason = str(exc)
            continue
        except OSError as exc:
            report.status, report.reason = "failed", f"cannot read: {exc.strerror}"
            continue
        except Exception as exc:
            report.status, report.reason = "failed", f"cannot parse: {exc}"
            continue
        if not any(b.kind != "heading" for b in doc.blocks):
            report.reason = "no text besides headings"
            continue
        report.status = "indexed"
        report.seconds = time.perf_counter() - t0
        docs.append(doc)
    return _refuse_id_clashes(docs, reports)


def _shown_name(name: str) -> str:
    """A file name as text: undecodable bytes shown as \\xNN escapes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def _refuse_id_clashes(
    docs: list[Document], reports: list[FileReport]
) -> tuple[list[Document], list[FileReport]]:
    """Files whose names share a stem (`dup.txt`, `dup.TXT`) would be one document id with two
    texts: none of them is indexed, and each row names the others."""
    by_id: dict[str, list[Document]] = {}
    for d in docs:
        by_id.setdefault(d.id, []).append(d)
    clashing = {i: ds for i, ds in by_id.items() if len(ds) > 1}
    if not clashing:
        return docs, reports
    by_name = {r.name: r for r in reports}
    for doc_id, ds in clashing.items():
        names = [Path(d.path).name for d in ds]
        for name in names:
            others = ", ".join(n for n in names if n != name)
            row = by_name[name]
            row.status = "skipped"
            row.reason = f"same document id {doc_id!r} as {others}: rename one of them"
            row.seconds = 0.0
    return [d for d in docs if d.id not in clashing], reports


def parse_document(doc_id: str, raw: str, sha256: str = "", path: str = "") -> Document:
    """Parse an article's raw text into a Document (offsets index `raw` exactly)."""
    lines = list(_content_lines(raw))
    title: str | None = None
    byline: str | None = None
    blocks: list[Block] = []
    skip: set[int] = set()

    if lines:
        first_start, first_end = lines[0]
        if _looks_like_heading(raw[first_start:first_end]):
            title = raw[first_start:first_end]
            skip.add(0)
        for n in range(min(len(lines), 4)):
            s, e = lines[n]
            if n not in skip and _BYLINE.fullmatch(raw[s:e]):
                byline = raw[s:e][2:].strip()
                skip.add(n)
                break

    section = title or "Introduction"
    table_header: tuple[str, ...] | None = None
    after_question = False
    for n, (s, e) in enumerate(lines):
        if n in skip:
            continue
        line = raw[s:e]
        if _is_table_line(line):
            if _TABLE_SEPARATOR.fullmatch(line):
                continue
            if table_header is None:
                table_header = _cells(line)
                blocks.append(Block(TABLE_HEADER, s, e, section, table_header))
            else:
                blocks.append(Block(TABLE_ROW, s, e, section, table_header))
            after_question = False
            continue
        table_header = None
        mark = _LIST_MARK.match(line)
        if mark and len(line) > mark.end():
            blocks.append(Block(LIST_ITEM, s, e, section))
            after_question = False
            continue
        for kind, a, b in _classify_segments(raw, s, e, after_question):
            if kind == HEADING:
                section = raw[a:b]
            elif kind == FAQ_QUESTION:
                section = _QUESTION_PREFIX.sub("", raw[a:b], count=1)
            blocks.append(Block(kind, a, b, section))
            after_question = kind == FAQ_QUESTION

    return Document(
        id=doc_id,
        path=path,
        raw=raw,
        sha256=sha256,
        title=title,
        byline=byline,
        blocks=tuple(blocks),
        sections=_sections(raw, blocks, title),
    )


def _content_lines(raw: str) -> Iterator[Span]:
    """(start, end) of every non-blank line, trimmed of surrounding white space."""
    pos = 0
    for line in raw.splitlines(keepends=True):
        s, e = pos, pos + len(line.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"))
        pos += len(line)
        while s < e and raw[s].isspace():
            s += 1
        while e > s and raw[e - 1].isspace():
            e -= 1
        if e > s:
            yield s, e


def _classify_segments(
    raw: str, s: int, e: int, after_question: bool
) -> list[tuple[str, int, int]]:
    """Split a line at glued sentence boundaries and type each run of it.

    A glued segment that ends in `?` is an FAQ question; a final segment without terminal
    punctuation that reads like a heading is a heading; everything else stays one paragraph
    (or FAQ answer, right after a question), glued sentences and all.
    """
    cuts = [s] + [i + 1 for i in range(s, e) if is_glued_boundary(raw, i)] + [e]
    segments = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    out: list[tuple[str, int, int]] = []
    text_start: int | None = None
    for idx, (a, b) in enumerate(segments):
        seg = raw[a:b]
        last = idx == len(segments) - 1
        kind = None
        if _looks_like_question(seg):
            kind = FAQ_QUESTION
        elif last and _looks_like_heading(seg):
            kind = HEADING
        if kind is None:
            if text_start is None:
                text_start = a
            continue
        if text_start is not None:
            out.append((FAQ_ANSWER if after_question else PARAGRAPH, text_start, a))
            text_start = None
        out.append((kind, a, b))
        after_question = kind == FAQ_QUESTION
    if text_start is not None:
        out.append((FAQ_ANSWER if after_question else PARAGRAPH, text_start, e))
    return out


def _looks_like_heading(text: str) -> bool:
    text = text.strip()
    if not text or len(text) > MAX_HEADING_CHARS or len(text.split()) > MAX_HEADING_WORDS:
        return False
    if text[-1] in ".!?:;,\"”'’)" and not text.endswith("etc."):
        return False
    return any(c.isalpha() for c in text) and not _is_table_line(text)


def _looks_like_question(text: str) -> bool:
    text = text.strip()
    return (
        text.endswith("?")
        and len(text.split()) <= MAX_QUESTION_WORDS
        and any(c.isalpha() for c in text)
    )


def _is_table_line(line: str) -> bool:
    return line.count("|") >= 2 or (line.endswith("|") and len(line) > 1)


def _cells(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|") if c.strip())


def _sections(raw: str, blocks: list[Block], title: str | None) -> tuple[Section, ...]:
    heads = [b for b in blocks if b.kind == HEADING]
    out: list[Section] = []
    first = heads[0].start if heads else len(raw)
    if any(b.start < first for b in blocks if b.kind != HEADING):
        # The opening section starts at the text, after the title and byline lines (they are
        # the document's, not the section's: a reader shows them once, above the sections).
        out.append(Section(title or "", blocks[0].start, first))
    for h, nxt in zip(heads, [*heads[1:], None], strict=False):
        out.append(Section(raw[h.start : h.end], h.start, nxt.start if nxt else len(raw)))
    return tuple(out)


def table_row_text(row: str, header: tuple[str, ...]) -> str:
    """A table row spelled out with its header: `Country: Poland; Contribution: Refugee Support`.

    The one spelling of a row, for its vector and for an answer: each cell after its header
    cell, cells beyond the header as they are, a row without a header as its cells.
    """
    cells = _cells(row)
    pairs = [f"{h}: {c}" for h, c in zip(header, cells, strict=False)]
    return "; ".join(pairs + list(cells[len(pairs) :]))
