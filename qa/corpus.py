"""Read the corpus: each article becomes a Document of typed blocks with exact character offsets.

The articles are scraped news pages and are messy on purpose. The parser works line by line and
then splits a line where a sentence is glued to the next one (`in Ukraine.What are ...?`), so an
FAQ question or a heading stuck to the end of the previous answer becomes its own block.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import CorpusFileError
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


def iter_corpus_files(seeds_dir: Path) -> Iterator[Path]:
    """The corpus files in a stable order: every regular `*.txt` file directly in `seeds_dir`."""
    yield from sorted(p for p in seeds_dir.glob("*.txt"))


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
        out.append(Section(title or "", 0, first))
    for h, nxt in zip(heads, [*heads[1:], None], strict=False):
        out.append(Section(raw[h.start : h.end], h.start, nxt.start if nxt else len(raw)))
    return tuple(out)


def table_row_text(block: Block, row: str) -> str:
    """A table row spelled out with its header: `Country: Poland; Contribution: Refugee Support`."""
    cells = _cells(row)
    if not block.header or block.kind != TABLE_ROW:
        return " | ".join(cells)
    pairs = [f"{h}: {c}" for h, c in zip(block.header, cells, strict=False)]
    pairs += list(cells[len(block.header) :])
    return "; ".join(pairs)
