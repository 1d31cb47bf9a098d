"""`ask` as a service: the embedder and the serving build, loaded once, shared by CLI, web and eval.

The service follows CURRENT: when `qa index` publishes a new build, the next question opens it
and swaps it in; questions already running finish on the build they started with, so an answer
never mixes two builds. The builds in use are counted: the last question to finish on a build
that has been swapped out closes its vector store (Chroma's threads and open files).

Every citation is checked against the current source file before it is returned. When the file
was edited after indexing, a citation whose text still stands in it is moved to where it stands
now (with the file's current sha256); one whose text is gone is dropped, and the reason logged.
"""

from __future__ import annotations

import hashlib
import logging
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
from qa.ask.ranking import LexicalHits, Ranker, Weights
from qa.chunking import CHUNKER_VERSION
from qa.corpus import Document
from qa.errors import IndexUnavailable
from qa.faq import example_questions
from qa.index import builds
from qa.index.loaded import LoadedBuild
from qa.model import DIM, ENCODERS, MODEL_NAME, Embedder
from qa.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Serving:
    """A loaded build with the ranking over it; replaced as one when the build changes."""

    build: LoadedBuild
    ranker: Ranker
    embedder: Embedder  # the encoder that made the build embeds its questions
    examples: dict[int, list[str]] = field(default_factory=dict)
    # Questions running on this build, and whether a newer build has replaced it; both guarded
    # by QAService._refs_lock. The store is closed when a retired build has no user left.
    users: int = 0
    retired: bool = False


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

    def verify(self, c: Citation, path: str) -> Citation | None:
        """The citation as it stands in the file now, or None when its text is gone.

        Unchanged file: the citation itself, when `raw[start:end] == text`. Edited file (the
        sha256 differs from the indexed one): the citation at the same offsets, or moved to the
        occurrence of its text nearest to where it was, with its highlights (and `also_at`
        places in the same file) moved alike and the file's current sha256; None, with the
        reason logged, when the text no longer stands in the file.
        """
        if not all(c.start <= a <= b <= c.end for a, b in c.highlights):
            return None
        src = self.source(path)
        if src is None:
            log.warning("citation of %s dropped: %s cannot be read as UTF-8", c.doc_id, path)
            return None
        if src.raw[c.start : c.end] == c.text:
            return c if src.sha256 == c.doc_sha256 else replace(c, doc_sha256=src.sha256)
        start = _nearest(src.raw, c.text, c.start)
        if start is None:
            log.info(
                "citation of %s [%d:%d] dropped: its text is no longer in %s (edited since the "
                "build was made; the next `qa index` reads the new text)",
                c.doc_id,
                c.start,
                c.end,
                path,
            )
            return None
        shift = start - c.start
        also_at = []
        for loc in c.also_at:
            if loc.doc_id != c.doc_id:
                also_at.append(loc)
                continue
            moved = _nearest(src.raw, c.text, loc.start)
            if moved is not None:
                also_at.append(replace(loc, start=moved, end=moved + len(c.text)))
        return replace(
            c,
            start=start,
            end=start + len(c.text),
            highlights=tuple((a + shift, b + shift) for a, b in c.highlights),
            doc_sha256=src.sha256,
            also_at=tuple(also_at),
        )


def _nearest(raw: str, text: str, near: int) -> int | None:
    """Start of the occurrence of `text` in `raw` nearest to offset `near`, or None."""
    if not text:
        return None
    best: int | None = None
    i = raw.find(text)
    while i >= 0:
        if best is None or abs(i - near) < abs(best - near):
            best = i
        if i > near:
            break  # later occurrences are only farther away
        i = raw.find(text, i + 1)
    return best


def _warn_if_chunked_otherwise(build: LoadedBuild) -> None:
    """A build cut into passages by another chunker version still serves, but the weights were
    learned on this version's passages: say so, and what fixes it."""
    version = (build.manifest.get("chunking") or {}).get("version")
    if version != CHUNKER_VERSION:
        log.warning(
            "build %s was chunked by chunker version %s, this code is version %s; answers may "
            "be weaker until `qa index` rebuilds it",
            build.build_id,
            version,
            CHUNKER_VERSION,
        )


class QAService:
    """Answers questions from the serving build of an index folder."""

    def __init__(
        self, settings: Settings, embedder: Embedder | None = None, weights: Weights | None = None
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._weights = weights  # None: the committed ones (`qa train` passes its own)
        self._given = embedder is not None  # the caller's encoder is the only one to use
        self._live: _Serving | None = None
        self._lock = threading.Lock()  # held while a new build is opened
        self._refs_lock = threading.Lock()  # guards _live and every _Serving's users/retired
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
        """The query encoder of the serving build (before one is open: the configured one,
        which `qa index` and `qa serve` build with), loaded on first use."""
        live = self._live
        if live is not None:
            return live.embedder
        return self._configured_embedder()

    def _configured_embedder(self) -> Embedder:
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
        """The serving build and its ranker, swapped together when CURRENT names a new one.

        Not held: for a look at the build (documents, health). A question holds its build with
        `_acquire`/`_release`, so the build's store stays open until the question is done.
        """
        live = self._acquire()
        self._release(live)
        return live

    def _acquire(self) -> _Serving:
        """The serving build, counted as in use until `_release`."""
        build_id = self._current.build_id()
        if build_id is None:
            raise IndexUnavailable(
                f"no index in {self.settings.index_dir.resolve()}; run `qa index` to build it"
            )
        with self._refs_lock:
            live = self._live
            if live is not None and live.build.build_id == build_id:
                live.users += 1
                return live
        with self._lock:
            if self._live is None or self._live.build.build_id != build_id:
                opened = LoadedBuild.open(
                    self.settings.index_dir, build_id, self.settings.chroma_url
                )
                _warn_if_chunked_otherwise(opened)
                try:
                    fresh = _Serving(
                        opened, Ranker(opened, self._weights), self._embedder_for(opened)
                    )
                except BaseException:
                    opened.close()
                    raise
                with self._refs_lock:
                    old, self._live = self._live, fresh
                getattr(fresh.embedder, "clear_query_cache", lambda: None)()  # a new build
                if old is not None:
                    self._retire(old)
            with self._refs_lock:
                live = self._live
                live.users += 1
                return live

    def _release(self, live: _Serving) -> None:
        """A question is done with `live`; the last one on a swapped-out build closes it."""
        with self._refs_lock:
            live.users -= 1
            last = live.retired and live.users == 0
        if last:
            live.build.close()

    def _retire(self, old: _Serving) -> None:
        with self._refs_lock:
            old.retired = True
            idle = old.users == 0
        if idle:
            old.build.close()

    def close(self) -> None:
        """Close the serving build's store and the encoder thread (the service is done)."""
        with self._lock, self._refs_lock:
            old, self._live = self._live, None
        if old is not None:
            self._retire(old)
        self._encoder_pool.shutdown(wait=False)

    def _embedder_for(self, build: LoadedBuild) -> Embedder:
        """The encoder for the questions on `build`: the configured one, or, when neither the
        caller nor `QA_ENCODER` named one, whichever ONNX variant of the model made the build
        (a host's measured choice may change; its existing build keeps working until the next
        `qa index`). IndexUnavailable when the build's vectors cannot be matched."""
        emb = self._configured_embedder()
        if build.model == emb.name and build.dimension == emb.dim:
            return emb
        from qa.encoders import chosen_explicitly, shared_embedder

        variant = build.model.removeprefix(f"{MODEL_NAME}/")
        follow = not self._given and not chosen_explicitly()
        if follow and variant in ENCODERS and build.dimension == DIM:
            return shared_embedder(variant)
        raise IndexUnavailable(
            f"build {build.build_id} was made with {build.model} "
            f"({build.dimension}-d) but the configured encoder is "
            f"{emb.name} ({emb.dim}-d); run `qa index` to rebuild (QA_ENCODER picks the "
            "encoder)"
        )

    def ready(self) -> dict[str, Any]:
        """Load everything now; return the health facts (raises IndexUnavailable if not ready).

        Also IndexUnavailable when the files of the serving build are no longer on disk as they
        were when it was opened (one stat each): this process still answers from memory, but a
        restart or a fresh `qa ask` could not.
        """
        build = self.index()
        damage = build.damage_on_disk()
        if damage:
            raise IndexUnavailable(
                f"the serving build {build.build_id} is no longer intact on disk ({damage}); "
                "answers still come from memory, but a restart would fail; run `qa index`"
            )
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
        q, k = check_question(question, self.settings.top_k if top_k is None else top_k)
        turns = check_history(history)
        resolved = resolve(q, turns)
        live = self._acquire()  # one build for the whole question
        try:
            unknown = {d for t in turns for d, _, _ in t.citations} - live.build.documents.keys()
            if unknown:
                # Not an error: a conversation begun before a re-index may cite an article
                # that is gone. Its citations just carry no weight.
                log.info("history cites articles this build does not hold: %s", sorted(unknown))
            return self._ask_on(live, question, resolved.text, k, t0, resolved.docs)
        finally:
            self._release(live)

    def _ask_on(
        self,
        live: _Serving,
        question: str,
        q: str,
        k: int,
        t0: float,
        prior_docs: tuple[str, ...] = (),
    ) -> Answer:
        t1 = time.perf_counter()
        query = live.ranker.parse_query(q)
        searching = live.ranker.worth_searching(query)  # "x": nothing to look for, or embed
        if searching:
            with self._asking_lock:
                self._asking += 1
                alone = self._asking == 1
            try:
                qvec, lexical = self._embed_and_score(live, query, alone)
            finally:
                with self._asking_lock:
                    self._asking -= 1
        t2 = time.perf_counter()
        candidates = live.ranker.retrieve(query, qvec, k, lexical, prior_docs) if searching else []
        ranked = live.ranker.decide(query, candidates, self._min_score(live.ranker))
        answer = compose(question, ranked, live.build, searched=q)
        answer = anchored_short_answer(self._verified(answer, live.build))
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

    @property
    def min_score(self) -> float:
        """The answerability threshold in force: QA_MIN_SCORE, else the one trained with the
        serving weights."""
        return self._min_score(self.ranker())

    def _min_score(self, ranker: Ranker) -> float:
        given = self.settings.min_score
        return ranker.weights.threshold if given is None else given

    def _verified(self, answer: Answer, build: LoadedBuild) -> Answer:
        """The answer with every citation checked against its file now: kept, moved to where
        its text stands in an edited file, or dropped (and the rest renumbered)."""
        docs = build.documents
        checked = [(c, self._checker.verify(c, docs[c.doc_id].path)) for c in answer.citations]
        kept = [c for c, now in checked if now is not None]
        if len(kept) == len(checked) and all(c is v for c, v in checked):
            return answer
        if len(kept) != len(checked):
            # Renumbered on the build's offsets, which index the build's text: the answer's
            # sentences are read from there (the moved citation holds the same text). The
            # renumbering may reorder them (used ones first): each is matched by its span.
            answer = renumber(answer, kept, build)
        now = {(c.doc_id, c.start, c.end): v for c, v in checked if v is not None}
        moved = [
            replace(now[(c.doc_id, c.start, c.end)], n=c.n, used=c.used, close=c.close)
            for c in answer.citations
        ]
        return replace(answer, citations=tuple(moved))

    def _embed_and_score(
        self, live: _Serving, query: Query, alone: bool
    ) -> tuple[np.ndarray, LexicalHits]:
        """The query vector and the BM25 hits, side by side on two threads when `alone`."""
        embedder, ranker = live.embedder, live.ranker
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
