"""`ask` as a service: the embedder and the serving build, loaded once, shared by CLI, web and eval.

The service follows CURRENT: when `qa index` publishes a new build, the next question opens it
and swaps it in; questions already running finish on the build they started with, so an answer
never mixes two builds. Every citation is checked against the current source file before it is
returned.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.ask.answering import Answer, Citation, compose, renumber
from qa.ask.query import Query
from qa.ask.ranking import LexicalHits, OpenIndex
from qa.errors import IndexUnavailable, QuestionError
from qa.index import builds
from qa.model import Embedder
from qa.settings import Settings

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 20




def check_question(question: Any, top_k: Any = 5) -> tuple[str, int]:
    """Validate a question and top_k; return them cleaned or raise QuestionError."""
    if not isinstance(question, str):
        raise QuestionError("question must be a string")
    if any("\ud800" <= ch <= "\udfff" for ch in question):
        raise QuestionError("question contains invalid characters (unpaired UTF-16 surrogates)")
    q = " ".join(question.split())
    if not q:
        raise QuestionError("question must not be empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"question is {len(question)} characters; the limit is {MAX_QUESTION_CHARS}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise QuestionError("top_k must be an integer")
    if not 1 <= top_k <= MAX_TOP_K:
        raise QuestionError(f"top_k must be between 1 and {MAX_TOP_K}")
    return q, top_k


@dataclass
class _Source:
    stat: tuple[int, int, int]
    raw: str
    sha256: str


class SourceChecker:
    """Reads corpus files (cached by inode, size and mtime) to verify citations."""

    def __init__(self) -> None:
        self._cache: dict[str, _Source] = {}
        self._lock = threading.Lock()

    def source(self, path: str) -> _Source | None:
        """The file's current text and hash, or None when it cannot be read as UTF-8."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached and cached.stat == key:
            return cached
        try:
            data = Path(path).read_bytes()
            src = _Source(key, data.decode("utf-8"), hashlib.sha256(data).hexdigest())
        except (OSError, UnicodeDecodeError):
            return None
        with self._lock:
            self._cache[path] = src
        return src

    def verify(self, c: Citation, path: str) -> bool:
        """True when the file still has the indexed hash and `raw[start:end] == text`."""
        src = self.source(path)
        return (
            src is not None
            and src.sha256 == c.doc_sha256
            and src.raw[c.start : c.end] == c.text
            and all(c.start <= a <= b <= c.end for a, b in c.highlights)
        )


class QAService:
    """Answers questions from the serving build of an index folder."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._index: OpenIndex | None = None
        self._lock = threading.Lock()
        self._checker = SourceChecker()
        self._current = builds.CurrentWatcher(settings.index_dir)
        # A question asked alone is embedded on a worker thread while this one scores BM25,
        # which needs no query vector: the encoder releases the GIL, so on a second core the
        # BM25 cost, which grows with the corpus, hides behind the embedding's, which does not.
        # (The other way round, the encoder would wait for the GIL until BM25 finished.) When
        # other questions are in flight the cores are busy anyway, and the hand-off would
        # only add work, so each runs on its own thread.
        self._encoder_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-encode")
        self._asking = 0
        self._asking_lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def embedder(self) -> Embedder:
        """The query encoder, loaded on first use."""
        if self._embedder is None:
            from qa.encoders import default_embedder

            self._embedder = default_embedder()
        return self._embedder

    def index(self) -> OpenIndex:
        """The serving build, reopened when CURRENT names a new one."""
        build_id = self._current.build_id()
        if build_id is None:
            raise IndexUnavailable(
                f"no index in {self.settings.index_dir}; run `qa index` to build it"
            )
        current = self._index
        if current is not None and current.build_id == build_id:
            return current
        with self._lock:
            if self._index is None or self._index.build_id != build_id:
                opened = OpenIndex(self.settings.index_dir, build_id, self.settings.chroma_url)
                self._check_model(opened)
                self._index = opened
            return self._index

    def _check_model(self, index: OpenIndex) -> None:
        emb = self.embedder
        if index.model != emb.name or index.manifest.get("dimension") != emb.dim:
            raise IndexUnavailable(
                f"build {index.build_id} was made with {index.model} "
                f"({index.manifest.get('dimension')}-d) but the configured encoder is "
                f"{emb.name} ({emb.dim}-d); run `qa index` to rebuild (QA_ENCODER picks the "
                "encoder)"
            )

    def ready(self) -> dict[str, Any]:
        """Load everything now; return the health facts (raises IndexUnavailable if not ready)."""
        idx = self.index()
        return {
            "status": "ok",
            "documents": len(idx.documents),
            "passages": len(idx.passages),
            "build": idx.build_id,
            "model": idx.model,
        }

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer `question` with up to `top_k` verified citations."""
        t0 = time.perf_counter()
        q, k = check_question(question, self.settings.top_k if top_k is None else top_k)
        idx = self.index()  # one build for the whole question
        t1 = time.perf_counter()
        query = idx.parse_query(q)
        with self._asking_lock:
            self._asking += 1
            alone = self._asking == 1
        try:
            qvec, lexical = self._embed_and_score(idx, query, alone)
        finally:
            with self._asking_lock:
                self._asking -= 1
        t2 = time.perf_counter()
        candidates = idx.retrieve(query, qvec, k, lexical)
        answer = compose(q, candidates, idx, self.settings.min_score)
        keep = [
            c for c in answer.citations if self._checker.verify(c, idx.documents[c.doc_id]["path"])
        ]
        if len(keep) != len(answer.citations):
            answer = renumber(answer, keep, idx)
        t3 = time.perf_counter()
        return replace(
            answer,
            question=question,
            timing_ms={
                "embed": (t2 - t1) * 1000,
                "retrieve": (t3 - t2) * 1000,
                "total": (t3 - t0) * 1000,
            },
        )

    def _embed_and_score(
        self, idx: OpenIndex, query: Query, alone: bool
    ) -> tuple[np.ndarray, LexicalHits]:
        """The query vector and the BM25 hits, side by side on two threads when `alone`."""
        embedder = self.embedder
        if not alone:
            return embedder.encode([query.embed])[0], idx.lexical_hits(query)
        pending = self._encoder_pool.submit(embedder.encode, [query.embed])
        lexical = idx.lexical_hits(query)
        # Not started yet (the worker still busy): embed here rather than wait in its queue.
        vectors = embedder.encode([query.embed]) if pending.cancel() else pending.result()
        return vectors[0], lexical

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """A document of the serving build, for showing a citation in context."""
        d = self.index().documents.get(doc_id)
        if d is None:
            return None
        return {k: d[k] for k in ("id", "title", "byline", "sha256", "text", "sections")}
