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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.ask.answering import Answer, Citation, anchored_short_answer, compose, renumber
from qa.ask.followup import Turn, check_history, resolve
from qa.ask.query import Query, check_question
from qa.ask.ranking import LexicalHits, Ranker
from qa.corpus import Document
from qa.errors import IndexUnavailable
from qa.faq import example_questions
from qa.index import builds
from qa.index.loaded import LoadedBuild
from qa.model import Embedder
from qa.settings import Settings


@dataclass
class _Serving:
    """A loaded build with the ranking over it; replaced as one when the build changes."""

    build: LoadedBuild
    ranker: Ranker
    examples: dict[int, list[str]] = field(default_factory=dict)


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
        self._live: _Serving | None = None
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

    def index(self) -> LoadedBuild:
        """The serving build, reopened when CURRENT names a new one."""
        return self._serving().build

    def ranker(self) -> Ranker:
        """The ranking over the serving build (for evaluation and tests that look inside)."""
        return self._serving().ranker

    def _serving(self) -> _Serving:
        """The serving build and its ranker, swapped together when CURRENT names a new one."""
        build_id = self._current.build_id()
        if build_id is None:
            raise IndexUnavailable(
                f"no index in {self.settings.index_dir}; run `qa index` to build it"
            )
        current = self._live
        if current is not None and current.build.build_id == build_id:
            return current
        with self._lock:
            if self._live is None or self._live.build.build_id != build_id:
                opened = LoadedBuild.open(
                    self.settings.index_dir, build_id, self.settings.chroma_url
                )
                self._check_model(opened)
                self._live = _Serving(opened, Ranker(opened))
            return self._live

    def _check_model(self, build: LoadedBuild) -> None:
        emb = self.embedder
        if build.model != emb.name or build.dimension != emb.dim:
            raise IndexUnavailable(
                f"build {build.build_id} was made with {build.model} "
                f"({build.dimension}-d) but the configured encoder is "
                f"{emb.name} ({emb.dim}-d); run `qa index` to rebuild (QA_ENCODER picks the "
                "encoder)"
            )

    def ready(self) -> dict[str, Any]:
        """Load everything now; return the health facts (raises IndexUnavailable if not ready)."""
        build = self.index()
        return {
            "status": "ok",
            "documents": len(build.documents),
            "passages": len(build.passages),
            "build": build.build_id,
            "model": build.model,
        }

    def ask(
        self, question: str, top_k: int | None = None, history: list[Turn] | None = None
    ) -> Answer:
        """Answer `question` with up to `top_k` verified citations.

        `history`: the earlier turns of the conversation, oldest first (Turns, or dicts as the
        API sends them); a follow-up is searched as the standalone query they resolve it to
        (qa.ask.followup), shown as the answer's `searched`.
        """
        t0 = time.perf_counter()
        typed, k = check_question(question, self.settings.top_k if top_k is None else top_k)
        q = resolve(typed, check_history(history)).text
        live = self._serving()  # one build for the whole question
        t1 = time.perf_counter()
        query = live.ranker.parse_query(q)
        with self._asking_lock:
            self._asking += 1
            alone = self._asking == 1
        try:
            qvec, lexical = self._embed_and_score(live.ranker, query, alone)
        finally:
            with self._asking_lock:
                self._asking -= 1
        t2 = time.perf_counter()
        candidates = live.ranker.retrieve(query, qvec, k, lexical)
        ranked = live.ranker.decide(query, candidates, self.settings.min_score)
        answer = compose(question, ranked, live.build, searched=q)
        docs = live.build.documents
        keep = [c for c in answer.citations if self._checker.verify(c, docs[c.doc_id].path)]
        if len(keep) != len(answer.citations):
            answer = renumber(answer, keep, live.build)
        answer = anchored_short_answer(answer)
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
        self, ranker: Ranker, query: Query, alone: bool
    ) -> tuple[np.ndarray, LexicalHits]:
        """The query vector and the BM25 hits, side by side on two threads when `alone`."""
        embedder = self.embedder
        if not alone:
            return embedder.encode([query.embed])[0], ranker.lexical_hits(query)
        pending = self._encoder_pool.submit(embedder.encode, [query.embed])
        lexical = ranker.lexical_hits(query)
        # Not started yet (the worker still busy): embed here rather than wait in its queue.
        vectors = embedder.encode([query.embed]) if pending.cancel() else pending.result()
        return vectors[0], lexical

    def document(self, doc_id: str) -> Document | None:
        """A document of the serving build, for showing a citation in context."""
        return self.index().documents.get(doc_id)

    def examples(self, limit: int) -> list[str]:
        """Questions the corpus answers, for a welcome screen: its own FAQ questions."""
        live = self._serving()
        found = live.examples.get(limit)
        if found is None:
            # Once per build and limit; two threads may both work it out, harmlessly.
            found = live.examples[limit] = example_questions(live.build.documents.values(), limit)
        return found
