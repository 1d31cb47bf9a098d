"""Where builds live, how one is published atomically, and how the serving one is opened.

Layout under the index folder:
    builds/<build_id>/manifest.json   written last: a build without it is incomplete
    builds/<build_id>/passages.jsonl  one passage per line, row i = vector i
    builds/<build_id>/vectors.npy     passage vectors (float32, normalised)
    builds/<build_id>/sentences.npy   vectors of every passage sentence, in passage order
    builds/<build_id>/documents.json  the parsed documents (text, title, sections)
    builds/<build_id>/bm25/           the lexical index
    builds/<build_id>/chroma/         the embedded Chroma collection
    CURRENT                           the id of the serving build, replaced atomically
    .lock                             held by a running `qa index`
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Location, Passage
from qa.corpus import Block, Document, Section
from qa.errors import IndexUnavailable
from qa.filelock import locked

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_BUILD_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{6}")


def builds_dir(index_dir: Path) -> Path:
    """Folder holding every build."""
    return index_dir / "builds"


def new_build_id() -> str:
    """A sortable, unique build id: UTC time plus random hex."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(3).hex()


def current_build_id(index_dir: Path) -> str | None:
    """The id in CURRENT, or None when nothing has been published."""
    try:
        data = (index_dir / CURRENT).read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise IndexUnavailable(
            f"{index_dir / CURRENT} is a folder, not a file naming a build; run `qa index`"
        ) from None
    except OSError as exc:
        raise IndexUnavailable(f"cannot read {index_dir / CURRENT}: {exc.strerror}") from exc
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise IndexUnavailable(
            f"{index_dir / CURRENT} does not name a build (it is not UTF-8 text); run `qa index`"
        ) from None
    if not _BUILD_ID.fullmatch(value):
        raise IndexUnavailable(
            f"{index_dir / CURRENT} does not name a build ({value[:40]!r}); run `qa index`"
        )
    return value


class CurrentWatcher:
    """`current_build_id` for a caller that asks on every request: CURRENT is read again only
    when its inode, size or mtime changed, so an unchanged index costs one stat, not a read.

    `publish` replaces CURRENT by a rename (a new inode), and a file written in place gets a
    new mtime, so every change is seen; a missing CURRENT is never cached.
    """

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._seen: tuple[tuple[int, int, int], str | None] | None = None

    def build_id(self) -> str | None:
        """The id in CURRENT, or None when nothing has been published."""
        try:
            st = os.stat(self.index_dir / CURRENT)
        except FileNotFoundError:
            return current_build_id(self.index_dir)  # None, or a reason it cannot be read
        except OSError:
            st = None
        key = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._seen
        if key is not None and seen is not None and seen[0] == key:
            return seen[1]
        build_id = current_build_id(self.index_dir)
        if key is not None:
            self._seen = (key, build_id)  # one tuple: readers on other threads see both or none
        return build_id


def current_build_id_or_none(index_dir: Path) -> str | None:
    """Like `current_build_id`, but a corrupt CURRENT counts as none (a rebuild repairs it)."""
    try:
        return current_build_id(index_dir)
    except IndexUnavailable:
        return None


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a failed write (a full disk) leaves no temporary file behind
        raise
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(index_dir: Path, build_id: str) -> None:
    """Make `build_id` the serving build: one atomic rename of CURRENT."""
    if not (builds_dir(index_dir) / build_id / MANIFEST).is_file():
        raise IndexUnavailable(f"build {build_id} is incomplete and cannot be published")
    current = index_dir / CURRENT
    if current.is_dir() and not current.is_symlink():
        # A folder where the pointer should be: an empty one is replaced (the repair); one
        # holding files is someone's, and is left alone with a clear message.
        try:
            current.rmdir()
        except OSError:
            raise IndexUnavailable(
                f"{current} is a folder holding files, not a file naming a build; move it "
                "away and run `qa index` again"
            ) from None
    _write_atomic(current, build_id + "\n")


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (readers never see half a file)."""
    _write_atomic(path, json.dumps(value, ensure_ascii=False, indent=1))


@contextlib.contextmanager
def build_lock(index_dir: Path, wait: bool = True) -> Iterator[None]:
    """Hold the index lock: two builds never interleave. Released even on a crash (flock)."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(locked(index_dir / ".lock", wait=wait))
        except BlockingIOError:
            raise IndexUnavailable(
                "another `qa index` is running on this index; try again when it ends"
            ) from None
        yield


def passage_to_json(p: Passage) -> dict[str, Any]:
    """A passage as a JSON-able dict (the text is kept: it is checked at load)."""
    d = asdict(p)
    d["sentences"] = [list(s) for s in p.sentences]
    d["also_at"] = [asdict(loc) for loc in p.also_at]
    return d


def passage_from_json(d: dict[str, Any]) -> Passage:
    """Inverse of `passage_to_json`."""
    return Passage(
        doc_id=d["doc_id"],
        section=d["section"],
        start=int(d["start"]),
        end=int(d["end"]),
        text=d["text"],
        tokens=int(d["tokens"]),
        sentences=tuple((int(a), int(b)) for a, b in d["sentences"]),
        kind=d.get("kind", "text"),
        context=d.get("context", ""),
        also_at=tuple(Location(**loc) for loc in d.get("also_at", [])),
    )


def document_to_json(d: Document) -> dict[str, Any]:
    """A parsed document as a JSON-able dict: its text and every block, so a build serves the
    same typed Document the parser made, without parsing again."""
    return {
        "id": d.id,
        "path": d.path,
        "sha256": d.sha256,
        "title": d.title,
        "byline": d.byline,
        "text": d.raw,
        "blocks": [[b.kind, b.start, b.end, b.section, list(b.header)] for b in d.blocks],
        "sections": [[s.heading, s.start, s.end] for s in d.sections],
    }


def document_from_json(d: dict[str, Any]) -> Document:
    """Inverse of `document_to_json`; ValueError for a document an older version wrote."""
    if "blocks" not in d:
        raise ValueError(f"document {d.get('id')!r} was written by an older version of qa")
    return Document(
        id=d["id"],
        path=d["path"],
        raw=d["text"],
        sha256=d["sha256"],
        title=d["title"],
        byline=d["byline"],
        blocks=tuple(Block(k, int(a), int(e), s, tuple(h)) for k, a, e, s, h in d["blocks"]),
        sections=tuple(Section(h, int(a), int(e)) for h, a, e in d["sections"]),
    )


def read_documents(files: BuildFiles) -> list[Document]:
    """The documents of a build, in corpus order."""
    return [document_from_json(d) for d in json.loads(files.documents.read_text("utf-8"))]


@dataclass(frozen=True)
class BuildFiles:
    """Paths of one build's files."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def passages(self) -> Path:
        return self.root / "passages.jsonl"

    @property
    def vectors(self) -> Path:
        return self.root / "vectors.npy"

    @property
    def sentence_vectors(self) -> Path:
        return self.root / "sentences.npy"

    @property
    def documents(self) -> Path:
        return self.root / "documents.json"

    @property
    def bm25(self) -> Path:
        return self.root / "bm25"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"


def build_files(index_dir: Path, build_id: str) -> BuildFiles:
    """The files of build `build_id`."""
    return BuildFiles(builds_dir(index_dir) / build_id)


def read_manifest(files: BuildFiles) -> dict[str, Any]:
    """A build's manifest; IndexUnavailable when it is missing or unreadable."""
    try:
        return json.loads(files.manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexUnavailable(
            f"build {files.root.name} is incomplete (no manifest); run `qa index` to rebuild"
        ) from None
    except (OSError, ValueError) as exc:
        raise IndexUnavailable(
            f"build {files.root.name} has an unreadable manifest ({exc}); run `qa index`"
        ) from exc


def read_passages(files: BuildFiles) -> list[Passage]:
    """The passages of a build, in row order."""
    with open(files.passages, encoding="utf-8") as f:
        return [passage_from_json(json.loads(line)) for line in f if line.strip()]


def read_vectors(path: Path) -> np.ndarray:
    """A saved float32 matrix."""
    return np.load(path, allow_pickle=False)


def remove_old_builds(index_dir: Path, keep: int = 3) -> list[str]:
    """Delete incomplete builds and all but the `keep` newest complete ones (never CURRENT)."""
    import shutil

    current = current_build_id(index_dir)
    root = builds_dir(index_dir)
    if not root.is_dir():
        return []
    complete = sorted(
        (d for d in root.iterdir() if d.is_dir() and (d / MANIFEST).is_file()),
        key=lambda d: d.name,
    )
    doomed = [d for d in root.iterdir() if d.is_dir() and not (d / MANIFEST).is_file()]
    doomed += complete[:-keep] if keep else complete
    removed = []
    for d in doomed:
        if d.name != current:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    return removed
