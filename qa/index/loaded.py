"""One published build, loaded and checked: typed documents, passages, vectors, BM25, the store.

Everything a question needs is in memory except the HNSW search. Loading checks that the files
agree with each other and with the manifest, so a damaged build is refused with a sentence that
says what to do, instead of answering from half an index.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def open(cls, index_dir: Path, build_id: str, chroma_url: str = "") -> LoadedBuild:
        """Load build `build_id` of `index_dir`; IndexUnavailable when it is unusable."""
        files = builds.build_files(index_dir, build_id)
        manifest = builds.read_manifest(files)
        try:
            passages = builds.read_passages(files)
            vectors = builds.read_vectors(files.vectors)
            sentence_vectors = builds.read_vectors(files.sentence_vectors)
            documents = {d.id: d for d in builds.read_documents(files)}
            lexical = LexicalIndex.load(files.bm25, len(passages))
        except (OSError, ValueError, KeyError, TypeError) as exc:
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
            raise IndexUnavailable(f"{exc}; run `qa index` to rebuild") from exc
        if stored != len(passages):
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
        )

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
