"""`qa bench`'s in-process measurements: building, encoding, asking, fresh processes, scale.

Each function times one thing against the floor it is judged by, both in the same run and, where
the machine's load could favour one side, in alternating blocks. Everything that touches Chroma
goes through `qa.index.store`.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.bench.corpora import SentenceMeanEmbedder, corpus_pieces, synthetic_corpus, write_corpus
from qa.bench.stats import RECALL_K, recall_at_k, summary_ms
from qa.settings import Settings

# Extra recall queries besides the questions: real sentence embeddings, drawn once.
RECALL_SENTENCE_QUERIES = 200


class RecordingEmbedder:
    """Passes through to an embedder and keeps the texts it was asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Any:
        """Record, then embed."""
        self.texts.extend(texts)
        return self.inner.encode(texts, progress)


def measure_index(
    seeds_dir: Path, embedder: Any, work: Path, rounds: int
) -> tuple[dict[str, Any], Path]:
    """Build seeds/ into fresh folders and, alternately, only encode what the build encoded."""
    from qa.index.build import build_index

    recorder = RecordingEmbedder(embedder)
    t = time.perf_counter()
    build_index(seeds_dir, work / "index-0", recorder)
    cold = time.perf_counter() - t
    builds, encodes = [], []
    for i in range(1, rounds + 1):
        t = time.perf_counter()
        embedder.encode(recorder.texts)
        encodes.append(time.perf_counter() - t)
        t = time.perf_counter()
        build_index(seeds_dir, work / f"index-{i}", embedder)
        builds.append(time.perf_counter() - t)
    return {
        "index_s": round(statistics.median(builds), 3),
        "encode_s": round(statistics.median(encodes), 3),
        "index_cold_s": round(cold, 3),
        "encoded_texts": len(recorder.texts),
    }, work / f"index-{rounds}"


def measure_ask(
    settings: Settings, embedder: Any, questions: Sequence[str], rounds: int
) -> dict[str, Any]:
    """p50/p95 of QAService.ask, in blocks alternating with the reference embedding's price.

    The reference is sentence-transformers fp32 as a typical implementation runs it, with
    torch's default threads (one per core). It is also timed pinned to one thread, as our
    encoder runs a question: on a busy machine the default threads can cost several times
    more, which flatters the comparison, so both are reported.
    """
    import torch

    from qa.ask.service import QAService
    from qa.encoders.reference import SentenceTransformerEmbedder

    service = QAService(settings, embedder)
    service.ready()
    reference = SentenceTransformerEmbedder()
    default_threads = torch.get_num_threads()
    for q in questions[:5]:  # first calls allocate
        service.ask(q)
        reference.encode([q])
    asks: list[float] = []
    refs: dict[int, list[float]] = {default_threads: [], 1: []}
    for _ in range(rounds):
        for threads, times in refs.items():
            torch.set_num_threads(threads)
            for q in questions:
                t = time.perf_counter()
                reference.encode([q])
                times.append(time.perf_counter() - t)
        for q in questions:
            t = time.perf_counter()
            service.ask(q)
            asks.append(time.perf_counter() - t)
    torch.set_num_threads(default_threads)
    by_threads = {f"{n}_threads": summary_ms(times) for n, times in refs.items()}
    return {
        "embed_reference_ms": by_threads[f"{default_threads}_threads"]["p50"],
        "embed_reference": by_threads,
        "ask_ms": summary_ms(asks),
        "hnsw_config": service.index().store.configuration(),
    }


def measure_query_cache(
    settings: Settings, embedder: Any, questions: Sequence[str], rounds: int
) -> dict[str, Any]:
    """p50 of `QAService.ask` for a question new to the query cache and for it asked again.

    The service's embedder is `embedder` behind a QueryCache, as the process-wide one is;
    the cache is emptied before each new question, which is then asked twice in a row.
    """
    from qa.ask.service import QAService
    from qa.encoders import QueryCache

    cache = QueryCache(embedder)
    service = QAService(settings, cache)
    service.ready()
    new: list[float] = []
    again: list[float] = []
    for _ in range(rounds):
        for q in questions:
            cache.clear_query_cache()
            for times in (new, again):
                t = time.perf_counter()
                service.ask(q)
                times.append(time.perf_counter() - t)
    return {
        "ask_new_question_ms": summary_ms(new),
        "ask_repeated_question_ms": summary_ms(again),
    }


def measure_history(
    settings: Settings, embedder: Any, questions: Sequence[str], rounds: int
) -> dict[str, Any]:
    """p50 of `QAService.ask` for each question asked alone and asked as the fourth turn of a
    conversation (the three turns before it carrying the answers and citations the service
    gave, as the chat page sends them), alternating, so both meet the same load."""
    from qa.ask.service import QAService

    service = QAService(settings, embedder)
    service.ready()
    history = []
    for q in questions[:3]:
        a = service.ask(q)
        cited = [{"doc_id": c.doc_id, "start": c.start, "end": c.end} for c in a.citations]
        history.append({"question": q, "answer": a.answer, "citations": cited})
    alone: list[float] = []
    followed: list[float] = []
    for _ in range(rounds):
        for q in questions:
            for times, turns in ((alone, None), (followed, history)):
                t = time.perf_counter()
                service.ask(q, history=turns)
                times.append(time.perf_counter() - t)
    return {"ask_alone_ms": summary_ms(alone), "ask_with_history_ms": summary_ms(followed)}


def _timed_process(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def measure_cold(index_dir: Path, question: str, rounds: int) -> dict[str, Any]:
    """Wall time of a fresh `qa ask` and of a fresh `import sentence_transformers`, alternated."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", QA_QUERY_CACHE="0")
    ask = [sys.executable, "-m", "qa", "ask", "--index", str(index_dir), question]
    st = [sys.executable, "-c", "import sentence_transformers"]
    asks, imports = [], []
    for _ in range(rounds):
        asks.append(_timed_process(ask, env))
        imports.append(_timed_process(st, env))
    return {
        "cold_ask_s": round(statistics.median(asks), 3),
        "import_st_s": round(statistics.median(imports), 3),
    }


# --- scale ----------------------------------------------------------------------------------


def measure_scale(
    seeds_dir: Path,
    embedder: Any,
    questions: Sequence[str],
    sizes: Iterable[int],
    work: Path,
    rounds: int = 1,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Index, recall and ask at each synthetic corpus size.

    Every size is built and kept open first; the asks then run in blocks alternating between
    the sizes, so a busy spell on the machine does not land on one size only.
    """
    sentences, headings = corpus_pieces(seeds_dir)
    mean = SentenceMeanEmbedder(embedder)
    qvecs = embedder.encode(list(questions))
    rng = random.Random(1)
    probe = rng.sample(sentences, min(RECALL_SENTENCE_QUERIES, len(sentences)))
    queries = np.concatenate([qvecs, mean.encode(probe)])
    rows: list[dict[str, Any]] = []
    services: list[Any] = []
    extra: dict[str, Any] = {}
    sizes = list(sizes)
    # One size (10,000 at most) is also searched in a collection with Chroma's defaults, to
    # show that the configured HNSW settings are in effect and why they are needed.
    contrast = max((n for n in sizes if n <= 10_000), default=None)
    for n in sizes:
        progress(f"scale: {n:,} passages")
        corpus = work / f"syn-{n}"
        write_corpus(synthetic_corpus(sentences, headings, n), corpus)
        row, service = _build_and_search(corpus, work / f"syn-{n}-index", mean, embedder, queries)
        rows.append({"passages_target": n, **row})
        if n == contrast:
            vectors = service.index().vectors
            extra = _default_hnsw_recall(vectors, queries, work / f"default-{n}")
            extra["default_hnsw_size"] = n
        for q in questions[:5]:
            service.ask(q)
        services.append(service)
    progress("scale: asking")
    asks: list[list[float]] = [[] for _ in sizes]
    for _ in range(rounds):
        for service, times in zip(services, asks, strict=True):
            for q in questions:
                t = time.perf_counter()
                service.ask(q)
                times.append(time.perf_counter() - t)
    for row, times in zip(rows, asks, strict=True):
        row["ask_ms"] = summary_ms(times)
    return {"scale": rows, **extra}


def _build_and_search(
    corpus: Path, index_dir: Path, mean: SentenceMeanEmbedder, embedder: Any, queries: np.ndarray
) -> tuple[dict[str, Any], Any]:
    """Build one synthetic corpus, open it, and measure its recall; the open service too.

    The build embeds passages with `mean`; questions are embedded by the real `embedder`.
    """
    from qa.ask.service import QAService
    from qa.index.build import build_index
    from qa.index.builds import build_files
    from qa.index.store import VectorStore

    t = time.perf_counter()
    report = build_index(corpus, index_dir, mean)
    index_s = time.perf_counter() - t
    service = QAService(Settings.from_env(env={}, seeds_dir=corpus, index_dir=index_dir), embedder)
    t = time.perf_counter()
    service.ready()
    load_s = time.perf_counter() - t
    idx = service.index()
    files = build_files(index_dir, idx.build_id)
    # The same collection searched by HNSW always, whatever the store chose for queries.
    hnsw = VectorStore.open(files.chroma, idx.build_id, exact=False)
    used, approx = [], []
    for qv in queries:
        exact = idx.vectors @ qv
        used.append(recall_at_k([h.row for h in idx.store.query(qv, RECALL_K)], exact))
        approx.append(recall_at_k([h.row for h in hnsw.query(qv, RECALL_K)], exact))
    row = {
        "passages": report.passages,
        "index_s": round(index_s, 2),
        "load_s": round(load_s, 2),
        "disk_mb": round(_disk_bytes(files.root) / 1e6, 1),
        "search": "exact" if idx.store.exact else "hnsw",
        "recall_at_10": round(float(np.mean(used)), 4),
        "hnsw_recall_at_10": round(float(np.mean(approx)), 4),
    }
    return row, service


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _default_hnsw_recall(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict[str, Any]:
    """Recall@10 of the same vectors in a collection left at Chroma's default HNSW settings."""
    from qa.index.store import VectorStore

    store = VectorStore.create_with_chroma_defaults(folder, "default")
    store.add(vectors)
    scores = [
        recall_at_k([h.row for h in store.query(qv, RECALL_K)], vectors @ qv) for qv in queries
    ]
    return {"default_hnsw_recall_at_10": round(float(np.mean(scores)), 4)}
