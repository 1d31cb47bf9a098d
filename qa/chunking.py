"""Blocks -> passages: token-aware, sentence-bounded, never across a section heading.

A passage is a contiguous span of one document (`raw[start:end] == text`). A section's first
passage opens with the section's heading line, so a question about a heading ("which section
covers ...?") can cite the heading itself; no passage holds a heading past its start. An FAQ
question and its answer always form a passage of their own; paragraphs, list items and table
rows of one section are packed together up to the limits; a block over the limits is split at
sentence (or row, or word) boundaries into pieces of balanced size, so no tiny tail is left
orphaned. Near-duplicate passages (an FAQ repeated in the same article) are merged into one
that lists every location."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from qa.corpus import (
    FAQ_ANSWER,
    FAQ_QUESTION,
    HEADING,
    LIST_ITEM,
    TABLE_HEADER,
    TABLE_ROW,
    Block,
    Document,
    table_row_text,
)
from qa.text import Span, continues_previous, count_tokens, fold, sentence_spans

CHUNKER_VERSION = 4


@dataclass(frozen=True)
class ChunkSettings:
    """The chunker's knobs; recorded in the build manifest."""

    max_chars: int = 1200
    max_tokens: int = 220
    # A trailing piece below this many tokens is merged into its neighbour when it fits.
    min_tokens: int = 40
    version: int = CHUNKER_VERSION


@dataclass(frozen=True)
class Location:
    """Where a passage's text stands in a document."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """A retrievable, citable span of one document."""

    doc_id: str
    section: str
    start: int
    end: int
    text: str
    tokens: int
    # Absolute (start, end) of each sentence, table row or list item inside the passage.
    sentences: tuple[Span, ...]
    kind: str = "text"
    # For table passages: the header, spelled out so each row keeps its meaning.
    context: str = ""
    also_at: tuple[Location, ...] = field(default=())

    @property
    def id(self) -> str:
        """Stable id: the document and the span."""
        return f"{self.doc_id}:{self.start}-{self.end}"

    @property
    def search_text(self) -> str:
        """What is embedded and searched: the section heading (unless the text holds it, as a
        section's first passage does), table context and the text."""
        section = "" if self.section in self.text else self.section
        parts = [section, self.context, self.text]
        return "\n".join(p for p in parts if p)


@dataclass
class _Unit:
    """Consecutive blocks that should stay together (an FAQ pair, a table, a list)."""

    kind: str
    blocks: list[Block]

    @property
    def start(self) -> int:
        return self.blocks[0].start

    @property
    def end(self) -> int:
        return self.blocks[-1].end


def chunk_document(doc: Document, settings: ChunkSettings | None = None) -> list[Passage]:
    """Cut one document into passages, in document order."""
    settings = settings or ChunkSettings()
    passages: list[Passage] = []
    meta = _meta_passage(doc)
    if meta is not None:
        passages.append(meta)
    for headings, section_units in _sections_of_units(doc):
        passages.extend(_pack_section(doc, headings, section_units, settings))
    return passages


META_SECTION = "About this article"


def _meta_passage(doc: Document) -> Passage | None:
    """The title and byline lines as a passage of their own, for "who wrote ..." questions.

    Its search text lists the article's headings, so "who wrote the piece with the SWOT
    analysis" finds it; retrieval only considers it for questions about authorship.
    """
    lines = []
    pos = 0
    for line in doc.raw.splitlines(keepends=True):
        stripped = line.strip()
        if stripped and stripped in (doc.title, f"By {doc.byline}" if doc.byline else None):
            a = pos + line.index(stripped)
            lines.append((a, a + len(stripped)))
        pos += len(line)
        if len(lines) == 2 or pos > 2000:
            break
    if not lines or doc.byline is None:
        return None
    if any(lines[0][0] < bl.start < lines[-1][1] for bl in doc.blocks):
        lines = lines[-1:]  # something stands between title and byline: the byline alone
    a, b = lines[0][0], lines[-1][1]
    headings = [doc.text(bl) for bl in doc.blocks if bl.kind == HEADING]
    context = f"Article written by {doc.byline}. Sections: " + "; ".join(headings)
    text = doc.raw[a:b]
    return Passage(
        doc_id=doc.id,
        section=META_SECTION,
        start=a,
        end=b,
        text=text,
        tokens=count_tokens(text),
        sentences=tuple(lines),
        kind="meta",
        context=context,
    )


def _sections_of_units(doc: Document) -> list[tuple[list[Block], list[_Unit]]]:
    """Each section's headings (a heading with no text of its own before the next one joins
    it; none for a section an FAQ question starts) and its units."""
    sections: list[tuple[list[Block], list[_Unit]]] = []
    current: list[_Unit] = []
    headings: list[Block] = []
    current_section: str | None = None
    for block in doc.blocks:
        if block.kind == HEADING:
            if current:
                sections.append((headings, current))
                headings = []
            current, current_section = [], None
            headings.append(block)
            continue
        if current_section is not None and block.section != current_section and current:
            # An FAQ question starts a section of its own, as a heading would.
            sections.append((headings, current))
            current, headings = [], []
        current_section = block.section
        kind = _unit_kind(block)
        prev = current[-1] if current else None
        if prev is not None and _continues(prev, kind, block):
            prev.blocks.append(block)
        else:
            current.append(_Unit(kind, [block]))
    if current:
        sections.append((headings, current))
    return sections


def _unit_kind(block: Block) -> str:
    if block.kind in (FAQ_QUESTION, FAQ_ANSWER):
        return "faq"
    if block.kind in (TABLE_HEADER, TABLE_ROW):
        return "table"
    if block.kind == LIST_ITEM:
        return "list"
    return "text"


def _continues(prev: _Unit, kind: str, block: Block) -> bool:
    if kind != prev.kind or kind == "text":
        return False
    if kind == "table":
        # A new header row starts a new table.
        return block.kind == TABLE_ROW and block.header == prev.blocks[-1].header
    return True


def _pack_section(
    doc: Document, headings: list[Block], units: list[_Unit], s: ChunkSettings
) -> list[Passage]:
    """Greedily pack the section's pieces into passages within the limits; the headings open
    the first one when they fit there.

    FAQ pieces are never packed with anything else: a question and its answer are one passage
    (so a heading over an FAQ stays out, as do headings a full first passage has no room for).
    """
    pieces: list[tuple[bool, list[Block | Span]]] = []
    for unit in units:
        pieces.extend((unit.kind == "faq", p) for p in _split_unit(doc, unit, s))
    groups: list[tuple[bool, list[Block | Span]]] = []
    for faq, piece in pieces:
        if groups and not faq and not groups[-1][0] and _fits(doc, groups[-1][1] + piece, s):
            groups[-1][1].extend(piece)
        else:
            groups.append((faq, list(piece)))
    # Do not orphan a short tail: fold it into the previous passage when that fits.
    if len(groups) > 1 and not groups[-1][0] and not groups[-2][0]:
        tail, prev = groups[-1][1], groups[-2][1]
        if _tokens(doc, tail) < s.min_tokens and _fits(doc, prev + tail, s):
            groups[-2:] = [(False, prev + tail)]
    if headings and groups and not groups[0][0]:
        opened: list[Block | Span] = [*headings, *groups[0][1]]
        if _fits(doc, opened, s):
            groups[0] = (False, opened)
    return [_make_passage(doc, g) for _, g in groups]


def _span(item: Block | Span) -> Span:
    return (item.start, item.end) if isinstance(item, Block) else item


def _bounds(items: list[Block | Span]) -> Span:
    return _span(items[0])[0], _span(items[-1])[1]


def _tokens(doc: Document, items: list[Block | Span]) -> int:
    a, b = _bounds(items)
    return count_tokens(doc.raw[a:b])


def _fits(doc: Document, items: list[Block | Span], s: ChunkSettings) -> bool:
    a, b = _bounds(items)
    return b - a <= s.max_chars and count_tokens(doc.raw[a:b]) <= s.max_tokens


def _split_unit(doc: Document, unit: _Unit, s: ChunkSettings) -> list[list[Block | Span]]:
    """A unit that fits is one piece; an FAQ pair is always one piece; else split it."""
    whole: list[Block | Span] = list(unit.blocks)
    if _fits(doc, whole, s):
        return [whole]
    if unit.kind in ("table", "list") and len(unit.blocks) > 1:
        rows: list[Block | Span] = []
        for b in unit.blocks:
            rows.extend(_split_span(doc, (b.start, b.end), s) if not _fits(doc, [b], s) else [b])
        return _balanced(doc, rows, s)
    spans: list[Block | Span] = []
    for b in unit.blocks:
        spans.extend(_split_span(doc, (b.start, b.end), s))
    return _balanced(doc, spans, s)


def _split_span(doc: Document, span: Span, s: ChunkSettings) -> list[Block | Span]:
    """Sentences of a span; a sentence over the limits is cut at word boundaries."""
    out: list[Block | Span] = []
    for sent in sentence_spans(doc.raw, *span):
        if _fits(doc, [sent], s):
            out.append(sent)
        else:
            out.extend(_hard_split(doc, sent, s))
    return out


def _hard_split(doc: Document, span: Span, s: ChunkSettings) -> list[Span]:
    """Cut an over-long sentence at white space (or anywhere, for text with none)."""
    out: list[Span] = []
    a, end = span
    while a < end:
        b = min(end, a + s.max_chars)
        while count_tokens(doc.raw[a:b]) > s.max_tokens and b - a > 1:
            b = a + max(1, (b - a) * 3 // 4)
        if b < end:
            cut = doc.raw.rfind(" ", a + 1, b)
            if cut > a:
                b = cut
        piece = _trim(doc.raw, a, b)
        if piece:
            out.append(piece)
        a = b
        while a < end and doc.raw[a].isspace():
            a += 1
    return out


def _trim(raw: str, a: int, b: int) -> Span | None:
    while a < b and raw[a].isspace():
        a += 1
    while b > a and raw[b - 1].isspace():
        b -= 1
    return (a, b) if b > a else None


def _balanced(
    doc: Document, items: list[Block | Span], s: ChunkSettings
) -> list[list[Block | Span]]:
    """Group consecutive items into the fewest pieces of roughly equal size within limits."""
    total = _tokens(doc, items)
    chars = _bounds(items)[1] - _bounds(items)[0]
    n = max(1, math.ceil(total / s.max_tokens), math.ceil(chars / s.max_chars))
    while True:
        target = total / n
        groups: list[list[Block | Span]] = [[]]
        for it in items:
            if groups[-1] and (
                _tokens(doc, groups[-1]) >= target or not _fits(doc, [*groups[-1], it], s)
            ):
                groups.append([])
            groups[-1].append(it)
        if all(_fits(doc, g, s) for g in groups) or n >= len(items):
            return groups
        n += 1


def _make_passage(doc: Document, items: list[Block | Span]) -> Passage:
    a, b = _bounds(items)
    sentences: list[Span] = []
    kinds: set[str] = set()
    section = doc.blocks[0].section if doc.blocks else ""
    for it in items:
        if isinstance(it, Block):
            if it.kind == HEADING:  # its own line: one sentence, and no say in the kind
                sentences.append((it.start, it.end))
                continue
            kinds.add(it.kind)
            section = it.section
            if it.kind in (TABLE_ROW, TABLE_HEADER, LIST_ITEM):
                sentences.append((it.start, it.end))
            else:
                sentences.extend(sentence_spans(doc.raw, it.start, it.end))
        else:
            sentences.append(it)
            section = _section_at(doc, it[0])
    if kinds & {FAQ_QUESTION, FAQ_ANSWER}:
        kind = "faq"
    elif kinds & {TABLE_ROW, TABLE_HEADER}:
        kind = "table"
    elif kinds == {LIST_ITEM}:
        kind = "list"
    else:
        kind = "text"
    text = doc.raw[a:b]
    context = ""
    if kind == "table":
        # Rows spelled out with their header, so "Poland" is found next to "Contribution".
        context = "\n".join(
            table_row_text(doc.text(bl), bl.header)
            for bl in items
            if isinstance(bl, Block) and bl.kind == TABLE_ROW
        )
    return Passage(
        doc_id=doc.id,
        section=section,
        start=a,
        end=b,
        text=text,
        tokens=count_tokens(text),
        sentences=tuple(sentences),
        kind=kind,
        context=context,
    )


def _section_at(doc: Document, offset: int) -> str:
    section = doc.blocks[0].section if doc.blocks else ""
    for b in doc.blocks:
        if b.start > offset:
            break
        section = b.section
    return section


def merge_duplicates(passages: list[Passage]) -> list[Passage]:
    """Merge passages whose folded text is the same; the first keeps the others as `also_at`."""
    keep: dict[str, int] = {}
    out: list[Passage] = []
    for p in passages:
        key = fold(p.text)
        if key in keep:
            i = keep[key]
            first = out[i]
            out[i] = replace(first, also_at=(*first.also_at, Location(p.doc_id, p.start, p.end)))
        else:
            keep[key] = len(out)
            out.append(p)
    return out


def sentence_texts(doc: Document, p: Passage) -> list[str]:
    """What each of a passage's sentences is embedded as: its text, a table row spelled out with
    its header ("Country: Poland; Contribution: Refugee Support") so the row keeps its meaning."""
    headers = doc.row_headers
    out = []
    prev = ""
    for a, b in p.sentences:
        header = headers.get(a)
        text = table_row_text(doc.raw[a:b], header) if header is not None else doc.raw[a:b]
        # "His approach is firm": a sentence that opens with a pronoun is embedded with the
        # one before it, so it still knows who "his" is.
        out.append(f"{prev} {text}" if prev and continues_previous(text) else text)
        prev = text
    return out


def lexical_text(p: Passage, doc: Document) -> str:
    """What BM25 indexes: the search text plus the byline, so "the Vance article" matches."""
    return f"{p.search_text}\nBy {doc.byline}" if doc.byline else p.search_text
