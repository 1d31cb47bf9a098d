"""One published build, loaded and checked: typed documents, passages, vectors, BM25, the store.

Everything a question needs is in memory except the HNSW search. Loading checks that the files
agree with each other and with the manifest, so a damaged build is refused with a sentence that
says what to do, instead of answering from half an index.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.chunking import Passage
from qa.corpus import Document
from qa.errors import IndexUnavailable, StoreError
from qa.index import builds
from qa.index.lexical import LexicalIndex
from qa.index.store import VectorStore


@dataclass(frozen=True)
class LoadedBuild:
    """A published build, ready for queries. Read-only once loaded, so threads share it."""

    build_id: str
    manifest: dict[str, Any]
    documents: dict[str, Document]
    passages: list[Passage]
    vectors: np.ndarray  # one row per passage
    sentence_vectors: np.ndarray  # one row per sentence, passage by passage
    sentence_offsets: np.ndarray  # row of each passage's first sentence; one more at the end
    lexical: LexicalIndex
    store: VectorStore
    # Size of each of the build's files when it was opened (None for a folder), to tell later
    # whether the build is still intact on disk without reading it again.
    on_disk: dict[str, int | None] = field(default_factory=dict, compare=False)

    @classmethod
    def open(cls, index_dir: Path, build_id: str, chroma_url: str = "") -> LoadedBuild:
        """Load build `build_id` of `index_dir`; IndexUnavailable when it is unusable."""
        files = builds.build_files(index_dir, build_id)
        manifest = builds.read_manifest(files)
        try:
            on_disk = _sizes(files)
            passages = builds.read_passages(files)
            vectors = builds.read_vectors(files.vectors)
            sentence_vectors = builds.read_vectors(files.sentence_vectors)
            documents = {d.id: d for d in builds.read_documents(files)}
            lexical = LexicalIndex.load(files.bm25, len(passages))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _raise_if_disk_full(build_id, exc)
            raise IndexUnavailable(
                f"build {build_id} is damaged ({exc.__class__.__name__}: {exc}); "
                "run `qa index` to rebuild"
            ) from exc
        _check_shapes(build_id, manifest, passages, vectors)
        store_url = chroma_url if manifest.get("store") != "embedded" else ""
        try:
            store = VectorStore.open(None if store_url else files.chroma, build_id, store_url)
            stored = store.count()
        except StoreError as exc:
            _raise_if_disk_full(build_id, exc)
            raise IndexUnavailable(f"{exc}; run `qa index` to rebuild") from exc
        if stored != len(passages):
            store.close()
            raise IndexUnavailable(
                f"build {build_id}'s vector store holds {stored} of {len(passages)} vectors; "
                "run `qa index`"
            )
        offsets = np.cumsum([0] + [len(p.sentences) for p in passages])
        return cls(
            build_id,
            manifest,
            documents,
            passages,
            vectors,
            sentence_vectors,
            offsets,
            lexical,
            store,
            on_disk,
        )

    def close(self) -> None:
        """Release the vector store (Chroma's client, threads and open files). Idempotent."""
        self.store.close()

    def damage_on_disk(self) -> str:
        """'' when every file of the build is still on disk at the size it had when opened;
        else what is wrong with the first damaged one (a stat each, nothing is read)."""
        for path, size in self.on_disk.items():
            name = Path(path).name
            try:
                st = os.stat(path)
            except OSError:
                return f"{name} is missing"
            if size is not None and st.st_size != size:
                return f"{name} changed size from {size} to {st.st_size} bytes"
        return ""

    @property
    def model(self) -> str:
        """Name of the embedding model the build was made with."""
        return str(self.manifest.get("model"))

    @property
    def dimension(self) -> int | None:
        """Length of the build's vectors, as its manifest records it."""
        return self.manifest.get("dimension")


def _check_shapes(
    build_id: str, manifest: dict[str, Any], passages: list[Passage], vectors: np.ndarray
) -> None:
    """Vectors, passages and manifest must agree; a half-written build must not serve."""
    n = len(passages)
    if vectors.shape[0] != n or n != manifest.get("passages"):
        raise IndexUnavailable(
            f"build {build_id} is damaged (vectors do not match passages); run `qa index`"
        )
    if vectors.ndim != 2 or vectors.shape[1] != manifest.get("dimension"):
        raise IndexUnavailable(
            f"build {build_id} has {vectors.shape[-1]}-d vectors but its manifest says "
            f"{manifest.get('dimension')}; run `qa index`"
        )


def _sizes(files: builds.BuildFiles) -> dict[str, int | None]:
    """path -> size of each file the build is served from (None: a folder, or Chroma's own
    files, which Chroma may grow); an embedded store's SQLite file must exist."""
    out: dict[str, int | None] = {str(files.root): None}
    for path in (
        files.manifest,
        files.passages,
        files.vectors,
        files.sentence_vectors,
        files.documents,
    ):
        out[str(path)] = path.stat().st_size if path.is_file() else None
    for folder in (files.bm25, files.chroma):
        if folder.is_dir():
            out[str(folder)] = None
            for path in sorted(folder.iterdir()):
                if path.is_file():
                    out[str(path)] = path.stat().st_size if folder == files.bm25 else None
    return out


def _raise_if_disk_full(build_id: str, exc: BaseException) -> None:
    """A full disk is not a damaged build: say so, without telling anyone to rebuild."""
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    text = str(exc).lower()
    if full or "disk is full" in text or "no space left" in text:
        raise IndexUnavailable(
            f"the disk holding build {build_id} is full, so it cannot be opened; free some "
            "space and ask again (the build itself is intact)"
        ) from exc
