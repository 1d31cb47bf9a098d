"""`qa bench`: how fast the system is, measured in one run and judged by ratios within that run.

Absolute numbers on a shared two-core machine say little; ratios measured side by side do. The
run builds an index of seeds/ into a temporary folder (and times only encoding the very texts
the build encoded), times `QAService.ask` on the shipped questions against the price of one
sentence-transformers embedding, starts fresh processes, builds synthetic corpora of up to
100,000 passages, and finally serves the index over HTTP on loopback. `check_bar` turns the
numbers into the pass/fail lines of issue 5.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.settings import Settings

README = Path("README.md")
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"
SCALE_FULL = (1_000, 10_000, 100_000)
SCALE_QUICK = (1_000, 10_000)
SCALE_SMOKE = (200, 500)
SECTIONS_PER_FILE = 40
RECALL_K = 10
# Extra recall queries besides the questions: real sentence embeddings, drawn once.
RECALL_SENTENCE_QUERIES = 200


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, --quick (under 3 minutes) or the CI smoke test."""

    name: str
    rounds: int  # passes over the question set for ask and the HTTP ask
    index_rounds: int  # warm builds (and encodes) of seeds/
    cold_rounds: int  # fresh `qa ask` / `import sentence_transformers` processes
    scale: tuple[int, ...]
    http_requests: int  # requests in each throughput run (concurrency 1 and 8)
    soak_requests: int  # requests between the two memory readings
    questions: int = 0  # 0: every shipped question


PLANS = {
    "full": Plan("full", 3, 3, 3, SCALE_FULL, 800, 10_000),
    "quick": Plan("quick", 2, 2, 2, SCALE_QUICK, 300, 1_000),
    "smoke": Plan("smoke", 1, 1, 1, SCALE_SMOKE, 40, 100, questions=20),
}


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds (rounded to 0.01) and the sample count."""
    ms = [s * 1000 for s in seconds]
    return {
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "n": len(ms),
    }


def recall_at_k(found: Sequence[int], exact_scores: np.ndarray, k: int = RECALL_K) -> float:
    """Share of the exact top k that `found` (a search's top k rows) holds.

    A row whose exact score ties the k-th best counts as a true neighbour: with tied scores
    either order is exact, and duplicates are common in a synthetic corpus.
    """
    k = min(k, len(exact_scores))
    if k == 0:
        return 1.0
    kth = -np.partition(-exact_scores, k - 1)[k - 1]
    hits = sum(1 for r in list(found)[:k] if exact_scores[int(r)] >= kth - 1e-5)
    return hits / k


# --- synthetic corpora ----------------------------------------------------------------------


def corpus_pieces(seeds_dir: Path) -> tuple[list[str], list[str]]:
    """(sentences, headings) of the seeds, distinct and sorted: the synthetic corpus's material.

    Only plain statements are kept: no questions, table rows or list items, which the parser
    would turn into other kinds of block.
    """
    from qa.corpus import HEADING, PARAGRAPH
    from qa.index.build import read_corpus
    from qa.text import sentence_spans

    docs, _ = read_corpus(seeds_dir)
    sentences: set[str] = set()
    headings: set[str] = set()
    for d in docs:
        for b in d.blocks:
            if b.kind == HEADING:
                headings.add(d.raw[b.start : b.end])
            elif b.kind == PARAGRAPH:
                for a, e in sentence_spans(d.raw, b.start, b.end):
                    s = d.raw[a:e]
                    if 40 <= len(s) <= 300 and s[-1] in '.!"”' and "|" not in s:
                        sentences.add(s)
    return sorted(sentences), sorted(headings)


def synthetic_corpus(
    sentences: Sequence[str], headings: Sequence[str], passages: int, seed: int = 0
) -> list[tuple[str, str]]:
    """Articles (file name, text) with about `passages` sections of 2-4 seed sentences each.

    Deterministic: the same inputs give the same bytes. Every section has its own heading, so
    the chunker makes one passage of it.
    """
    rng = random.Random(seed)
    files = []
    for f in range((passages + SECTIONS_PER_FILE - 1) // SECTIONS_PER_FILE):
        n = min(SECTIONS_PER_FILE, passages - f * SECTIONS_PER_FILE)
        lines = [f"Synthetic Dispatch {f:05d}: {rng.choice(headings)}", "By Bench Writer"]
        for _ in range(n):
            body: list[str] = []
            for s in rng.sample(sentences, rng.randint(2, 4)):
                if body and len(" ".join([*body, s])) > 900:
                    break
                body.append(s)
            lines += [rng.choice(headings), " ".join(body)]
        files.append((f"syn_{f:05d}.txt", "\n".join(lines) + "\n"))
    return files


class SentenceMeanEmbedder:
    """Embeds a text as the normalised mean of its sentences' real embeddings.

    Each distinct sentence goes through the real encoder once (the cache is shared by every
    corpus size), so a synthetic corpus of 100,000 passages costs the embeddings of its few
    hundred distinct sentences. It carries the real encoder's name: the vectors live in that
    encoder's space and questions are embedded by it for real.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Mean of the sentence vectors of each text, L2-normalised."""
        from qa.text import sentence_spans

        parts = [[t[a:b] for a, b in sentence_spans(t)] or [t] for t in texts]
        new = sorted({s for ss in parts for s in ss if s not in self.cache})
        if new:
            self.cache.update(zip(new, self.inner.encode(new), strict=True))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, ss in enumerate(parts):
            v = np.mean([self.cache[s] for s in ss], axis=0)
            out[i] = v / (np.linalg.norm(v) or 1.0)
        if progress:
            progress(len(texts))
        return out


# --- the bar --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BarCheck:
    """One line of the bar: a measured ratio against its limit."""

    name: str
    value: float | None
    limit: float
    holds: bool | None  # None: not measured in this run
    detail: str


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def check_bar(r: dict[str, Any]) -> list[BarCheck]:
    """Issue 5's bar, each line a ratio of two numbers from the same run (value <= limit)."""
    checks = []

    def add(name: str, value: float | None, limit: float, detail: str, ge: bool = False) -> None:
        holds = None if value is None else (value >= limit if ge else value <= limit)
        checks.append(
            BarCheck(name, None if value is None else round(value, 3), limit, holds, detail)
        )

    ask = r.get("ask_ms", {}).get("p50")
    add(
        "1 ask vs one reference embedding",
        _ratio(ask, r.get("embed_reference_ms")),
        0.5,
        "ask_ms.p50 / embed_reference_ms",
    )
    http_ask = (r.get("http_ask_ms") or {}).get("p50")
    health = (r.get("http_health_ms") or {}).get("p50")
    # The in-process ask timed alongside the HTTP requests, when there is one: same load.
    local = (r.get("ask_ms_alongside_http") or {}).get("p50", ask)
    add(
        "2a HTTP ask overhead",
        None if None in (http_ask, local, health) else http_ask / (local + 2 * health),
        1.0,
        "http_ask_ms.p50 / (in-process ask p50 + 2 x http_health_ms.p50)",
    )
    add(
        "2b HTTP throughput at concurrency 8",
        _ratio(r.get("http_rps"), r.get("http_rps_c1")),
        1.3,
        "http_rps (8 clients) / requests/s with 1 client",
        ge=True,
    )
    add("3 index vs encode", _ratio(r.get("index_s"), r.get("encode_s")), 1.2, "index_s / encode_s")
    add(
        "4 cold ask vs importing sentence-transformers",
        _ratio(r.get("cold_ask_s"), r.get("import_st_s")),
        0.5,
        "cold_ask_s / import_st_s",
    )
    scale = r.get("scale") or []
    if len(scale) >= 2:
        small, large = scale[0], scale[-1]
        add(
            f"5a ask at {large['passages_target']:,} vs {small['passages_target']:,} passages",
            _ratio(large["ask_ms"]["p50"], small["ask_ms"]["p50"]),
            2.0,
            "ask p50, largest corpus / smallest",
        )
    if scale:
        add(
            "5b recall@10 of the dense search (worst size)",
            min(s["recall_at_10"] for s in scale),
            0.98,
            "dense top 10 vs exact brute force, same vectors",
            ge=True,
        )
    growth = r.get("rss_growth_mb")
    add(
        "6 server memory growth over the soak",
        growth,
        max(5.0, 0.05 * (r.get("rss_mb") or 0)),
        f"RSS after minus before {r.get('soak_requests', 0):,} requests, MB",
    )
    return checks


# --- rendering ------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def render_markdown(r: dict[str, Any]) -> str:
    """The results as the README's performance section (Markdown)."""
    m = r.get("machine", {})
    out = [
        f"Measured by `qa bench{' --quick' if r.get('plan') == 'quick' else ''}` on "
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python {m.get('python', '?')}, "
        f"onnxruntime {m.get('onnxruntime', '?')}, {r.get('date', '?')}; encoder "
        f"`{r.get('encoder', '?')}`. Other work ran on the machine at the same time, so "
        "absolute numbers wander; the bar is judged on ratios within the one run.",
        "",
        "| measure | value |",
        "|---|---|",
    ]

    def row(name: str, value: Any) -> None:
        out.append(f"| {name} | {value} |")

    def pp(d: dict[str, Any] | None) -> str:
        if not d:
            return "–"
        return f"p50 {_fmt(d.get('p50'))}, p95 {_fmt(d.get('p95'))} (n={d.get('n', '?')})"

    per_threads = ", ".join(
        f"{k.split('_')[0]} thread{'' if k.startswith('1_') else 's'}: p50 {_fmt(v.get('p50'))}"
        for k, v in (r.get("embed_reference") or {}).items()
    )
    row(
        "one question embedded by sentence-transformers fp32, torch's default threads, ms "
        "(`embed_reference_ms`)",
        f"{_fmt(r.get('embed_reference_ms'))} ({per_threads or '–'})",
    )
    one = (r.get("embed_reference") or {}).get("1_threads", {}).get("p50")
    ask = (r.get("ask_ms") or {}).get("p50")
    if one and ask:
        row("`ask_ms.p50` / the one-thread reference (stricter than bar 1)", _fmt(ask / one, 3))
    row("`QAService.ask` on the shipped questions, ms (`ask_ms`)", pp(r.get("ask_ms")))
    row("HTTP `/api/ask`, 1 client, ms (`http_ask_ms`)", pp(r.get("http_ask_ms")))
    row("`QAService.ask` timed alongside those requests, ms", pp(r.get("ask_ms_alongside_http")))
    row("HTTP `/api/health`, 1 client, ms (`http_health_ms`)", pp(r.get("http_health_ms")))
    row(
        "HTTP `/api/ask` requests/s, 1 client / 8 clients",
        f"{_fmt(r.get('http_rps_c1'))} / {_fmt(r.get('http_rps'))}",
    )
    row(
        "index seeds/, model loaded (`index_s`; first build in a process)",
        f"{_fmt(r.get('index_s'))} s ({_fmt(r.get('index_cold_s'))} s)",
    )
    row(
        f"encode the same {r.get('encoded_texts', '?')} texts (`encode_s`)",
        f"{_fmt(r.get('encode_s'))} s",
    )
    row("fresh `qa ask` process (`cold_ask_s`)", f"{_fmt(r.get('cold_ask_s'))} s")
    row("fresh `import sentence_transformers` (`import_st_s`)", f"{_fmt(r.get('import_st_s'))} s")
    row(
        "server memory after the run (`rss_mb`), growth over the soak",
        f"{_fmt(r.get('rss_mb'))} MB, {_fmt(r.get('rss_growth_mb'))} MB over "
        f"{r.get('soak_requests', 0):,} requests",
    )
    out += [
        "",
        "| passages (built) | index s | ask p50 ms | ask p95 ms | on disk MB | search "
        "| recall@10 | HNSW recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in r.get("scale", []):
        out.append(
            f"| {s['passages_target']:,} ({s['passages']:,}) | {_fmt(s['index_s'])} | "
            f"{_fmt(s['ask_ms']['p50'])} | {_fmt(s['ask_ms']['p95'])} | {_fmt(s['disk_mb'])} | "
            f"{s['search']} | {_fmt(s['recall_at_10'], 4)} | {_fmt(s['hnsw_recall_at_10'], 4)} |"
        )
    if r.get("hnsw_config"):
        out += [
            "",
            f"Chroma reports the HNSW configuration back as `{json.dumps(r['hnsw_config'])}`.",
        ]
    if r.get("default_hnsw_recall_at_10") is not None:
        out[-1] += (
            " The same vectors in a collection with Chroma's default HNSW settings: recall@10 "
            f"{_fmt(r['default_hnsw_recall_at_10'], 4)} at "
            f"{r.get('default_hnsw_size', 0):,} passages."
        )
    out += ["", "| bar | ratio | limit | holds |", "|---|---|---|---|"]
    for c in check_bar(r):
        sign = "≥" if c.name.startswith(("2b", "5b")) else "≤"
        verdict = {True: "yes", False: "**no**", None: "not measured"}[c.holds]
        out.append(
            f"| {c.name} ({c.detail}) | {_fmt(c.value, 3)} | {sign} {c.limit:g} | {verdict} |"
        )
    return "\n".join(out) + "\n"


def replace_between_markers(text: str, block: str) -> str:
    """`text` with what stands between the bench markers replaced by `block`."""
    a, b = text.find(START_MARK), text.find(END_MARK)
    if a < 0 or b < a:
        raise ValueError(f"the README has no {START_MARK} ... {END_MARK} section")
    return text[: a + len(START_MARK)] + "\n" + block.rstrip("\n") + "\n" + text[b:]


# --- measurements ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the run ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "-"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "onnxruntime": ort_version,
    }


def shipped_questions(seeds_dir: Path) -> list[str]:
    """The questions of the shipped sets, through the evaluation's loader when it exists."""
    try:
        from qa.eval.evaluate import corpus_texts, load_question_sets, shipped_question_files

        sets = load_question_sets(shipped_question_files(), corpus_texts(seeds_dir))
        return [q.question for s in sets for q in s.questions]
    except ImportError:
        files = sorted(Settings().questions_dir.glob("*.jsonl"))
        return [
            json.loads(line)["question"]
            for f in files
            for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]


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


def _timed_process(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def measure_cold(index_dir: Path, question: str, rounds: int) -> dict[str, Any]:
    """Wall time of a fresh `qa ask` and of a fresh `import sentence_transformers`, alternated."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
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


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


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
    from qa.ask.service import QAService
    from qa.index.build import build_index
    from qa.index.builds import build_files
    from qa.index.store import VectorStore

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
        corpus.mkdir()
        for name, text in synthetic_corpus(sentences, headings, n):
            (corpus / name).write_text(text, encoding="utf-8")
        index_dir = work / f"syn-{n}-index"
        t = time.perf_counter()
        report = build_index(corpus, index_dir, mean)
        index_s = time.perf_counter() - t
        service = QAService(
            Settings.from_env(env={}, seeds_dir=corpus, index_dir=index_dir), embedder
        )
        t = time.perf_counter()
        service.ready()
        load_s = time.perf_counter() - t
        idx = service.index()
        hnsw = VectorStore.open(
            build_files(index_dir, idx.build_id).chroma, idx.build_id, exact=False
        )
        used, approx = [], []
        for qv in queries:
            exact = idx.vectors @ qv
            used.append(recall_at_k([h.row for h in idx.store.query(qv, RECALL_K)], exact))
            approx.append(recall_at_k([h.row for h in hnsw.query(qv, RECALL_K)], exact))
        rows.append(
            {
                "passages_target": n,
                "passages": report.passages,
                "index_s": round(index_s, 2),
                "load_s": round(load_s, 2),
                "disk_mb": round(_disk_bytes(build_files(index_dir, idx.build_id).root) / 1e6, 1),
                "search": "exact" if idx.store.exact else "hnsw",
                "recall_at_10": round(float(np.mean(used)), 4),
                "hnsw_recall_at_10": round(float(np.mean(approx)), 4),
            }
        )
        if n == contrast:
            extra = _default_hnsw_recall(idx.vectors, queries, work / f"default-{n}")
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


def _default_hnsw_recall(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict[str, Any]:
    """Recall@10 of the same vectors in a collection left at Chroma's default HNSW settings."""
    import chromadb

    from qa.index.store import _chroma_settings

    client = chromadb.PersistentClient(path=str(folder), settings=_chroma_settings())
    col = client.create_collection(
        "default", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    for i in range(0, len(vectors), 4000):
        chunk = vectors[i : i + 4000]
        col.add(ids=[str(i + j) for j in range(len(chunk))], embeddings=chunk)
    scores = []
    for qv in queries:
        res = col.query(query_embeddings=[qv], n_results=RECALL_K, include=[])
        scores.append(recall_at_k([int(x) for x in res["ids"][0]], vectors @ qv))
    return {"default_hnsw_recall_at_10": round(float(np.mean(scores)), 4)}


# --- HTTP -----------------------------------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Client:
    """One keep-alive HTTP/1.1 connection to the server under test."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        """Send one request, read the whole response, return its status."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        resp.read()
        return resp.status

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _throughput(port: int, questions: Sequence[str], total: int, clients: int) -> float:
    """Requests/s for `total` /api/ask requests spread over `clients` threads."""
    counter = iter(range(total))
    lock = threading.Lock()
    failures: list[int] = []

    def work() -> None:
        c = Client(port)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                status = c.request("POST", "/api/ask", {"question": questions[i % len(questions)]})
                if status != 200:
                    failures.append(status)
        finally:
            c.close()

    threads = [threading.Thread(target=work) for _ in range(clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    if failures:
        raise RuntimeError(
            f"{len(failures)} of {total} requests failed (first status {failures[0]})"
        )
    return total / elapsed


def measure_http(
    index_dir: Path,
    seeds_dir: Path,
    questions: Sequence[str],
    plan: Plan,
    ask: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Latency at concurrency 1, throughput at 1 and 8, and memory over a soak, via `qa serve`.

    `ask`, the in-process call, is timed alongside each HTTP request at concurrency 1, so the
    HTTP overhead is judged against an in-process time taken under the same load.
    """
    port = free_port()
    env = dict(os.environ, QA_RATE_LIMIT="0", HF_HUB_OFFLINE="1")
    args = [sys.executable, "-m", "qa", "serve", "--index", str(index_dir), "--seeds"]
    args += [str(seeds_dir), *f"--host 127.0.0.1 --port {port} --rate-limit 0".split()]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, server, log)
            return _load_server(port, server.pid, questions, plan, ask)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _load_server(
    port: int, pid: int, questions: Sequence[str], plan: Plan, ask: Callable[[str], Any] | None
) -> dict[str, Any]:
    c = Client(port)
    for q in questions[:5]:
        c.request("POST", "/api/ask", {"question": q})
    asks, health, local = [], [], []
    for _ in range(plan.rounds):
        for q in questions:
            if ask is not None:
                t = time.perf_counter()
                ask(q)
                local.append(time.perf_counter() - t)
            t = time.perf_counter()
            c.request("GET", "/api/health")
            health.append(time.perf_counter() - t)
            t = time.perf_counter()
            status = c.request("POST", "/api/ask", {"question": q})
            asks.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"/api/ask answered {status}")
    c.close()
    rps1, rps8 = [], []
    for _ in range(2):  # alternated, so both see the same machine
        rps1.append(_throughput(port, questions, plan.http_requests, 1))
        rps8.append(_throughput(port, questions, plan.http_requests, 8))
    before = rss_mb(pid)
    _throughput(port, questions, plan.soak_requests, 8)
    after = rss_mb(pid)
    return {
        "ask_ms_alongside_http": summary_ms(local) if local else None,
        "http_ask_ms": summary_ms(asks),
        "http_health_ms": summary_ms(health),
        "http_rps_c1": round(statistics.median(rps1), 1),
        "http_rps": round(statistics.median(rps8), 1),
        "rss_mb": round(after, 1),
        "rss_before_soak_mb": round(before, 1),
        "rss_growth_mb": round(after - before, 1),
        "soak_requests": plan.soak_requests,
    }


def _wait_ready(port: int, server: subprocess.Popen[bytes], log: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"qa serve exited with {server.returncode}: {log.read()[-2000:]!r}")
        try:
            c = Client(port)
            status = c.request("GET", "/api/health")
            c.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"qa serve did not become ready on port {port} within {timeout:.0f} s")


# --- the whole run --------------------------------------------------------------------------


def run(
    plan: Plan, seeds_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every measurement, in the order that keeps each one honest; returns the result object."""
    from qa.ask.service import QAService
    from qa.encoders import default_embedder
    from qa.model import configured_encoder

    say = progress or (lambda _msg: None)
    seeds_dir = seeds_dir or Settings.from_env().seeds_dir
    questions = shipped_questions(seeds_dir)
    if plan.questions:
        questions = questions[: plan.questions]
    result: dict[str, Any] = {
        "plan": plan.name,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine(),
        "encoder": configured_encoder(),
        "questions": len(questions),
    }
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        say("loading the encoder")
        embedder = default_embedder()
        embedder.encode(["warm-up", "warm up twice"])
        result["encoder"] = embedder.name
        # First, before anything imports chromadb: the first build pays every import.
        say("index and encode seeds/")
        facts, index_dir = measure_index(seeds_dir, embedder, work, plan.index_rounds)
        result.update(facts)
        say("ask vs the reference embedding")
        settings = Settings.from_env(env={}, seeds_dir=seeds_dir, index_dir=index_dir)
        result.update(measure_ask(settings, embedder, questions, plan.rounds))
        say("fresh processes")
        result.update(measure_cold(index_dir, questions[0], plan.cold_rounds))
        result.update(
            measure_scale(seeds_dir, embedder, questions, plan.scale, work, plan.rounds, say)
        )
        say("HTTP")
        local = QAService(settings, embedder)
        local.ready()
        result.update(measure_http(index_dir, seeds_dir, questions, plan, local.ask))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["bar"] = [asdict(c) for c in check_bar(result)]
    return result


def write_readme(result: dict[str, Any], path: Path = README) -> None:
    """Replace the README's performance block with this run's table."""
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_between_markers(text, render_markdown(result)), encoding="utf-8")
