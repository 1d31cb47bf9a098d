"""The vector store: the only module that imports chromadb.

One collection per build. Embedded (a directory inside the build) by default, or a Chroma server
when a URL is configured. Chroma's default embedding function is never used: vectors always come
from our embedder, and queries always pass `query_embeddings`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from qa.errors import StoreError

# Chroma's telemetry must stay off on these machines (no network, and no reason to send any).
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

# Approximate search must not silently miss true neighbours: a well-connected graph (32
# neighbours, ef_construction 200) searched with ef_search 200 keeps recall@10 against exact
# search at 0.998 on 100,000 passages (400: 1.000 but 1.5x the time; 100: 0.994; see `qa bench`).
HNSW_CONFIG = {"space": "cosine", "ef_construction": 200, "max_neighbors": 32, "ef_search": 200}
ADD_BATCH = 4000
# Up to this many vectors, queries are answered exactly from the collection's own vectors, read
# once at open: a product with a few thousand rows costs less than one HNSW call and is never
# approximate. Larger collections are searched by Chroma's HNSW.
EXACT_SEARCH_MAX = 4096


@dataclass(frozen=True)
class Hit:
    """One nearest neighbour: the passage row and its cosine similarity."""

    row: int
    similarity: float


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _client(path: Path | None, url: str) -> Any:
    import chromadb

    if url:
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(f"QA_CHROMA_URL {url!r} is not an http(s)://HOST:PORT URL")
        try:
            return chromadb.HttpClient(
                host=parts.hostname,
                port=parts.port or (443 if parts.scheme == "https" else 80),
                ssl=parts.scheme == "https",
                settings=_chroma_settings(),
            )
        except Exception as exc:  # the server is down or is not Chroma
            raise StoreError(f"cannot reach the Chroma server at {url} ({exc})") from exc
    assert path is not None
    try:
        return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())
    except Exception:
        # Chroma caches a store that failed to open, half made, by path: forget it, so the next
        # attempt reports the same reason instead of an AttributeError.
        with contextlib.suppress(Exception):
            from chromadb.api.shared_system_client import SharedSystemClient

            SharedSystemClient._identifier_to_system.pop(str(path), None)
        raise


def _close_client(client: Any) -> None:
    """Release a Chroma client. Clients of one embedded folder share one System, counted by
    Chroma: the last close stops it (its SQLite pool, HNSW files and tokio threads)."""
    if client is None:
        return
    with contextlib.suppress(Exception):
        client.close()


def collection_name(build_id: str) -> str:
    """Chroma collection name for a build (3-512 chars of [a-zA-Z0-9._-])."""
    return f"qa-{build_id}"


class VectorStore:
    """A Chroma collection of passage vectors, keyed by their row number in the build."""

    def __init__(self, collection: Any, exact: bool = True, client: Any = None) -> None:
        self._collection = collection
        self._client = client
        self._closed = False
        self._lock = threading.Lock()
        # A build's collection never changes once written: count it once, not on every query.
        self._count = int(collection.count())
        self._matrix: np.ndarray | None = None
        if exact and 0 < self._count <= EXACT_SEARCH_MAX:
            self._matrix = self._read_all()

    def _read_all(self) -> np.ndarray:
        got = self._collection.get(include=["embeddings"])
        matrix = np.zeros((self._count, len(got["embeddings"][0])), dtype=np.float32)
        matrix[[int(i) for i in got["ids"]]] = np.asarray(got["embeddings"], dtype=np.float32)
        # Chroma's cosine space compares normalised vectors; so does the exact search.
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms > 0, norms, 1.0)

    @classmethod
    def create(cls, path: Path | None, build_id: str, url: str = "") -> VectorStore:
        """Create the (empty) collection of a new build."""
        client = _client(path, url)
        name = collection_name(build_id)
        try:
            client.delete_collection(name)
        except Exception:
            pass
        try:
            col = client.create_collection(
                name=name, configuration={"hnsw": dict(HNSW_CONFIG)}, embedding_function=None
            )
        except Exception:
            _close_client(client)
            raise
        return cls(col, exact=False, client=client)

    @classmethod
    def create_with_chroma_defaults(cls, path: Path, build_id: str) -> VectorStore:
        """Create an empty embedded collection left at Chroma's default HNSW settings (cosine).

        For `qa bench` alone: the same vectors searched there show what HNSW_CONFIG buys.
        """
        client = _client(path, "")
        col = client.create_collection(
            collection_name(build_id),
            configuration={"hnsw": {"space": "cosine"}},
            embedding_function=None,
        )
        return cls(col, exact=False, client=client)

    @classmethod
    def open(
        cls, path: Path | None, build_id: str, url: str = "", exact: bool = True
    ) -> VectorStore:
        """Open a build's collection for queries (`exact=False`: always ask Chroma's HNSW)."""
        if not url and path is not None and not path.is_dir():  # never create an empty store
            raise StoreError(f"{path} is missing (a build made on a Chroma server needs its URL)")
        client = None
        try:
            client = _client(path, url)
            col = client.get_collection(collection_name(build_id), embedding_function=None)
            return cls(col, exact, client=client)
        except StoreError:
            raise
        except Exception as exc:
            _close_client(client)
            where = url or str(path)
            raise StoreError(f"cannot open the vector store at {where}: {exc}") from exc

    @staticmethod
    def drop(path: Path | None, build_id: str, url: str = "") -> None:
        """Delete a build's collection (used to clean up old builds on a server)."""
        client = None
        try:
            client = _client(path, url)
            client.delete_collection(collection_name(build_id))
        except Exception:
            pass
        finally:
            _close_client(client)

    def add(self, vectors: np.ndarray, first_row: int = 0) -> None:
        """Add vectors; row i of `vectors` gets id `first_row + i`."""
        for i in range(0, len(vectors), ADD_BATCH):
            chunk = vectors[i : i + ADD_BATCH]
            ids = [str(first_row + i + j) for j in range(len(chunk))]
            try:
                self._collection.add(ids=ids, embeddings=chunk.astype(np.float32))
            except Exception as exc:  # a Chroma server that went away mid-build
                raise StoreError(f"cannot write to the vector store ({exc})") from exc
        self._count = int(self._collection.count())

    def count(self) -> int:
        """Number of vectors stored."""
        return self._count

    def close(self) -> None:
        """Release the Chroma client: its threads, its SQLite connection and the files it holds
        open. Idempotent. Exact search keeps working from the vectors read at open; a query
        that needs Chroma afterwards is a StoreError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            client, self._client = self._client, None
        _close_client(client)

    @property
    def closed(self) -> bool:
        """True once `close` has run."""
        return self._closed

    @property
    def exact(self) -> bool:
        """True when queries are answered by exact search rather than HNSW."""
        return self._matrix is not None

    def configuration(self) -> dict[str, Any]:
        """The collection's HNSW configuration as Chroma reports it back."""
        config = self._collection.configuration or {}
        return dict(config.get("hnsw") or {})

    def query(self, vector: np.ndarray, k: int) -> list[Hit]:
        """The k nearest rows to `vector` by cosine similarity, best first."""
        k = max(1, min(k, self._count))
        if self._matrix is not None:
            sims = self._matrix @ vector.astype(np.float32)
            top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
            top = top[np.argsort(-sims[top], kind="stable")]
            return [Hit(int(i), float(sims[i])) for i in top]
        try:
            with self._lock:
                if self._closed:
                    raise StoreError(
                        "the vector store of this build was closed (a newer build serves)"
                    )
                res = self._collection.query(
                    query_embeddings=[vector.astype(np.float32)], n_results=k, include=["distances"]
                )
        except StoreError:
            raise
        except Exception as exc:  # a Chroma server that went away: 503, not 500
            raise StoreError(f"cannot query the vector store ({exc})") from exc
        ids: Sequence[str] = res["ids"][0]
        dists: Sequence[float] = res["distances"][0]
        return [Hit(int(i), 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]
