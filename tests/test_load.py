"""Serving under load, for real: `qa serve` on loopback, keep-alive clients, bounded counts.

Re-index while serving: 2,000 questions at concurrency 16 while `qa index` publishes a changed
corpus; no request fails and every answer comes wholly from the build it names. Soak: 10,000
questions at concurrency 8; no error, memory flat. Slow clients are covered by
tests/test_serve.py::test_slow_clients_do_not_tie_up_the_workers.
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest

from qa.index import builds
from qa.settings import Settings
from tests.figures import record
from tests.live import QAServe
from tests.paths import ROOT as PROJECT_ROOT

pytestmark = pytest.mark.slow

QUESTIONS = [
    json.loads(line)["question"]
    for line in (PROJECT_ROOT / "tests" / "questions" / "dev" / "handwritten.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
    if line.strip()
]
CHANGED_DOC = "000_ab687fec20728463"
NEW_SENTENCE = "Editors added this sentence to the article after it was first indexed. "


@dataclass
class Outcome:
    """One request: when it started and ended, its status, and the answer (or the error)."""

    start: float
    end: float
    status: int
    body: Any


@dataclass
class Load:
    """The outcomes of a bounded load, in completion order."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def summary(self, concurrency: int) -> dict[str, Any]:
        ms = sorted((o.end - o.start) * 1000 for o in self.outcomes)
        return {
            "requests": len(self.outcomes),
            "concurrency": concurrency,
            "failed": len(self.failures),
            "seconds": round(self.seconds, 1),
            "rps": round(len(ms) / self.seconds, 1),
            "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[int(0.95 * len(ms)) - 1], 1),
            "p99_ms": round(ms[int(0.99 * len(ms)) - 1], 1),
            "max_ms": round(ms[-1], 1),
        }


def run_load(
    url: str,
    requests: int,
    concurrency: int,
    question: Callable[[int], str],
    keep: bool = False,
    done: Callable[[int], None] | None = None,
) -> Load:
    """POST /api/ask `requests` times from `concurrency` keep-alive clients on loopback.

    A refused or dropped connection counts as a failed request (status 0), never a retry.
    """
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    counter = itertools.count()
    lock = threading.Lock()
    load = Load()

    def client() -> None:
        conn = HTTPConnection(host, int(port), timeout=60)
        while True:
            with lock:
                i = next(counter)
            if i >= requests:
                break
            body = json.dumps({"question": question(i)}).encode()
            t0 = time.monotonic()
            try:
                conn.request("POST", "/api/ask", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                status = resp.status
                parsed = json.loads(raw) if (keep or status != 200) else None
            except (OSError, ValueError) as exc:
                status, parsed = 0, repr(exc)
                conn.close()
                conn = HTTPConnection(host, int(port), timeout=60)
            outcome = Outcome(t0, time.monotonic(), status, parsed)
            with lock:
                load.outcomes.append(outcome)
                n = len(load.outcomes)
            if done:
                done(n)
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.monotonic() - t0
    return load


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(built_index: Settings, tmp_path: Path) -> Iterator[tuple[QAServe, Path, Path]]:
    """`qa serve` over private copies of the session corpus and index (rate limit off)."""
    seeds = Path(shutil.copytree(built_index.seeds_dir, tmp_path / "seeds"))
    index = Path(
        shutil.copytree(
            built_index.index_dir,
            tmp_path / "index",
            ignore=shutil.ignore_patterns("feedback*", ".lock"),
        )
    )
    server = QAServe(
        ["--index", str(index), "--seeds", str(seeds)],
        tmp_path / "serve.log",
        env={"QA_RATE_LIMIT": "0", "QA_THREADS": "8"},
    )
    yield server, seeds, index
    assert server.stop() == 0, server.log.read_text()
    assert "Traceback" not in server.log.read_text()


def build_documents(index: Path, build_id: str) -> dict[str, dict[str, Any]]:
    files = builds.build_files(index, build_id)
    return {d["id"]: d for d in json.loads(files.documents.read_text(encoding="utf-8"))}


def test_reindex_while_serving_never_mixes_builds(served: tuple[QAServe, Path, Path]) -> None:
    server, seeds, index = served
    old = builds.current_build_id(index)
    requests, concurrency = 2000, 16
    started = threading.Event()
    load_box: list[Load] = []

    def notice(n: int) -> None:
        if n >= 200:
            started.set()

    loader = threading.Thread(
        target=lambda: load_box.append(
            run_load(
                server.url,
                requests,
                concurrency,
                lambda i: QUESTIONS[i % len(QUESTIONS)],
                keep=True,
                done=notice,
            )
        )
    )
    loader.start()
    try:
        assert started.wait(timeout=300), "the load never got going"
        # The changed corpus: one article gains a sentence at the top of its body, so every
        # offset after it moves and its sha256 changes.
        path = seeds / f"{CHANGED_DOC}.txt"
        raw = path.read_text(encoding="utf-8")
        cut = raw.index("\nThe intricate dance") + 1  # the first paragraph of the body
        path.write_text(raw[:cut] + NEW_SENTENCE + raw[cut:], encoding="utf-8")
        t_index = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "qa",
                "index",
                "-q",
                "--seeds",
                str(seeds),
                "--index",
                str(index),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        published = time.monotonic()
        assert done.returncode == 0, done.stderr
    finally:
        loader.join()
    load = load_box[0]
    new = builds.current_build_id(index)
    assert new != old

    assert not load.failures, load.failures[:3]
    docs = {b: build_documents(index, b) for b in (old, new)}  # type: ignore[arg-type]
    assert docs[old][CHANGED_DOC]["sha256"] != docs[new][CHANGED_DOC]["sha256"]
    by_build: dict[str, int] = {}
    cited_changed: dict[str, int] = {old: 0, new: 0}  # type: ignore[dict-item]
    citations = 0
    for o in load.outcomes:
        build = o.body["build"]
        by_build[build] = by_build.get(build, 0) + 1
        for c in o.body["citations"]:
            doc = docs[build][c["doc_id"]]
            if c["doc_sha256"] != doc["sha256"]:
                # The old build answered after the edit: its citation was moved into the edited
                # file, whose text the new build holds.
                assert (build, c["doc_id"]) == (old, CHANGED_DOC), (build, c["doc_id"])
                doc = docs[new][c["doc_id"]]  # type: ignore[index]
            assert c["doc_sha256"] == doc["sha256"], (build, c["doc_id"])
            assert doc["text"][c["start"] : c["end"]] == c["text"], (build, c["doc_id"])
            for loc in c["also_at"]:
                assert loc["doc_id"] in docs[build]
            citations += 1
            if c["doc_id"] == CHANGED_DOC:
                cited_changed[build] += 1
    assert set(by_build) == {old, new}, by_build
    assert all(n > 0 for n in cited_changed.values()), cited_changed
    # Once `qa index` has returned, every new question is answered by the new build.
    after = [o for o in load.outcomes if o.start > published]
    assert after and all(o.body["build"] == new for o in after)
    summary = load.summary(concurrency)
    summary.update(
        builds={"old": by_build[old], "new": by_build[new]},
        citations_checked=citations,
        changed_article_cited={"old": cited_changed[old], "new": cited_changed[new]},
        index_seconds=round(published - t_index, 1),
        requests_after_publish=len(after),
    )
    record("reindex_under_load", summary)


def test_soak_memory_stays_flat(served: tuple[QAServe, Path, Path]) -> None:
    server, _, _ = served
    pid = server.proc.pid
    warm = run_load(server.url, 200, 8, lambda i: QUESTIONS[i % len(QUESTIONS)])
    assert not warm.failures
    start_mb = rss_mb(pid)
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(rss_mb(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # Half the questions repeat, half are new strings: no cache may grow without bound.
        load = run_load(
            server.url,
            10_000,
            8,
            lambda i: QUESTIONS[i % len(QUESTIONS)] + (f" (#{i})" if i % 2 else ""),
        )
    finally:
        stop.set()
        sampler.join()
    end_mb = rss_mb(pid)
    assert not load.failures, load.failures[:3]
    summary = load.summary(8)
    summary.update(
        rss_start_mb=round(start_mb, 1),
        rss_end_mb=round(end_mb, 1),
        rss_max_mb=round(max([start_mb, end_mb, *samples]), 1),
    )
    record("soak", summary)
    assert end_mb - start_mb < max(25.0, 0.05 * start_mb), summary
