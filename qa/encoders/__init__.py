"""The encoders of the model, and the process-wide one `QA_ENCODER` picks (see qa.model).

The process-wide embedder keeps the vectors of the last questions it embedded (`QueryCache`):
the welcome screen's examples, a question asked again and a follow-up that re-asks the
previous one cost a dictionary look-up instead of a pass through the model.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from qa.model import ENCODERS, Embedder

# Query vectors kept by the process-wide embedder (1.5 KB each); `QA_QUERY_CACHE=0` turns the
# cache off (`qa bench` does, to time the encoder rather than the cache).
QUERY_CACHE_SIZE = 1024


def make_embedder(encoder: str) -> Embedder:
    """A new embedder of the named backend (see ENCODERS)."""
    if encoder == "torch":
        from qa.encoders.reference import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if encoder in ENCODERS:
        from qa.encoders.onnx import OnnxEmbedder

        return OnnxEmbedder(encoder)
    raise ValueError(f"unknown encoder {encoder!r}; use one of {', '.join(ENCODERS)}")


class QueryCache:
    """An embedder that remembers the vectors of the last `size` single texts it embedded.

    Only a call with exactly one text (a question) is looked up or remembered, keyed by the
    exact text embedded; batches (index builds) pass straight through. The least recently
    used entry goes first. Safe to call from many threads: the model runs outside the lock,
    so two threads missing on the same text both embed it, harmlessly.
    """

    def __init__(self, inner: Embedder, size: int = QUERY_CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError(f"cache size must be >= 0, not {size}")
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.size = size
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed `texts`; one text is answered from the cache when it was embedded lately."""
        if len(texts) != 1 or self.size == 0:
            return self.inner.encode(texts, progress)
        key = texts[0]
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if vector is None:
            out = self.inner.encode(texts, progress)
            vector = np.array(out[0], dtype=np.float32)  # a copy: callers may change `out`
            vector.setflags(write=False)
            with self._lock:
                self._vectors[key] = vector
                self._vectors.move_to_end(key)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
            return out
        if progress:
            progress(1)
        return vector[None, :].copy()

    def clear_query_cache(self) -> None:
        """Forget every remembered vector (when a new build is swapped in)."""
        with self._lock:
            self._vectors.clear()


def query_cache_size(env: dict[str, str] | None = None) -> int:
    """`QA_QUERY_CACHE` (entries, 0 turns the cache off), default QUERY_CACHE_SIZE."""
    value = (os.environ if env is None else env).get("QA_QUERY_CACHE", "").strip()
    if not value:
        return QUERY_CACHE_SIZE
    try:
        size = int(value)
    except ValueError:
        size = -1
    if size < 0:
        raise ValueError(f"QA_QUERY_CACHE={value!r} is not a whole number >= 0")
    return size


_embedders: dict[str, QueryCache] = {}
_embedders_lock = threading.Lock()


def shared_embedder(encoder: str) -> QueryCache:
    """The process-wide embedder of the named backend, created on first use (one per backend:
    a process may serve a build made by another variant than its default)."""
    with _embedders_lock:
        found = _embedders.get(encoder)
        if found is None:
            found = _embedders[encoder] = QueryCache(make_embedder(encoder), query_cache_size())
        return found


def default_embedder() -> QueryCache:
    """The process-wide embedder of the configured backend, created on first use.

    Its single-text encodes go through a QueryCache (`.inner` is the encoder itself).
    """
    return shared_embedder(configured_encoder())


def chosen_explicitly(env: dict[str, str] | None = None) -> bool:
    """Whether `QA_ENCODER` names the encoder (else the host's measured choice does)."""
    return bool((os.environ if env is None else env).get("QA_ENCODER", "").strip())


def configured_encoder(env: dict[str, str] | None = None) -> str:
    """The encoder named by `QA_ENCODER`, else the one measured fastest on this host.

    ValueError for an unknown name. Without `QA_ENCODER` this reads the export's meta.json
    (exporting first if there is none yet, as the first `qa index` does).
    """
    value = (os.environ if env is None else env).get("QA_ENCODER", "").strip()
    if not value:
        # Imported here: `python -m qa.encoders.choice` (make's set-up) runs that module as
        # __main__, and a copy imported with this package first makes runpy warn.
        from qa.encoders.choice import host_encoder

        return host_encoder()
    if value not in ENCODERS:
        raise ValueError(f"QA_ENCODER={value!r} is not one of {', '.join(ENCODERS)}")
    return value
