"""Serving over real HTTP: startup, hot swap of builds under load, slow clients, `qa serve`."""

from __future__ import annotations

import errno
import io
import json
import logging
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from pathlib import Path

import pytest

from qa.ask.service import QAService
from qa.index import builds
from qa.index.build import build_index
from qa.settings import Settings
from qa.web.app import SECURITY_HEADERS, create_app, log_access
from qa.web.server import _cannot_listen, _DeepQueue, prepare
from tests.conftest import FakeEmbedder
from tests.live import QAServe, http, server_thread
from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
QUESTIONS = [
    json.loads(line)["question"]
    for line in (PROJECT_ROOT / "tests" / "questions" / "dev" / "handwritten.jsonl")
    .read_text()
    .splitlines()
    if line.strip()
]


def test_prepare_builds_a_missing_index_with_progress(corpus: Path, tmp_path: Path) -> None:
    s = Settings.from_env(env={}, seeds_dir=corpus, index_dir=tmp_path / "index")
    err = io.StringIO()
    service, facts = prepare(s, FakeEmbedder(), err)
    assert service.ask("Where did Rubio meet Lavrov?").citations
    log = err.getvalue()
    assert "No index in" in log and "embedding: 0/" in log and "Built " in log
    assert facts["documents"] == 5 and facts["build"] == builds.current_build_id(s.index_dir)
    # A second start reuses the published build.
    err = io.StringIO()
    _, again = prepare(s, FakeEmbedder(), err)
    assert again["build"] == facts["build"] and "No index" not in err.getvalue()


def test_hot_swap_under_load_fails_no_request(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    emb = FakeEmbedder()
    first = build_index(corpus, index, emb).build_id
    s = Settings.from_env(env={}, seeds_dir=corpus, index_dir=index, rate_limit=0, threads=4)
    service = QAService(s, emb)
    service.ready()
    published: list[float] = []
    real_publish = builds.publish

    def timed_publish(index_dir: Path, build_id: str) -> None:
        real_publish(index_dir, build_id)
        published.append(time.monotonic())

    monkeypatch.setattr(builds, "publish", timed_publish)
    results: list[tuple[float, float, int, str]] = []  # start, end, status, build or error
    stop = threading.Event()

    with server_thread(create_app(s, service), s) as url:

        def client(i: int) -> None:
            n = i
            while not stop.is_set():
                t0 = time.monotonic()
                question = {"question": QUESTIONS[n % len(QUESTIONS)]}
                try:
                    status, _, body = http("POST", url + "/api/ask", question)
                    build = body["build"] if status == 200 else json.dumps(body)
                except Exception as exc:  # a dropped connection is a failure too
                    status, build = -1, repr(exc)
                results.append((t0, time.monotonic(), status, build))
                n += 4

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        while len(results) < 20:
            time.sleep(0.05)
        (corpus / "005_new_article.txt").write_text(
            "Quillmouth Harbour Report\n\nThe Quillmouth harbour reopened on Tuesday after a "
            "storm damaged its northern pier.\n",
            encoding="utf-8",
        )
        second = build_index(corpus, index, emb).build_id
        deadline = time.monotonic() + 60
        while sum(1 for r in results if r[0] > published[0]) < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        status, _, health = http("GET", url + "/api/health")
        _, _, answer = http(
            "POST",
            url + "/api/ask",
            {"question": "When did the Quillmouth harbour reopen after the storm?"},
        )

    failures = [r for r in results if r[2] != 200]
    assert not failures, failures[:3]
    assert {r[3] for r in results} == {first, second}
    assert all(r[3] == second for r in results if r[0] > published[0])
    in_flight = [r for r in results if r[0] < published[0] < r[1]]
    assert in_flight, "no request was in flight when the new build was published"
    assert status == 200 and health["build"] == second and health["documents"] == 6
    assert "005_new_article" in [c["doc_id"] for c in answer["citations"]]


@pytest.fixture
def fake_server(corpus: Path, tmp_path: Path) -> Iterator[str]:
    emb = FakeEmbedder()
    build_index(corpus, tmp_path / "index", emb)
    s = Settings.from_env(
        env={}, seeds_dir=corpus, index_dir=tmp_path / "index", rate_limit=0, threads=2
    )
    with server_thread(create_app(s, QAService(s, emb)), s) as url:
        yield url


def test_chunked_oversized_body_is_refused_over_http(fake_server: str) -> None:
    host, port = fake_server.removeprefix("http://").split(":")
    conn = HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"question": "x" * 40_000}).encode()
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    conn.request(
        "POST",
        "/api/ask",
        body=chunks,
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 413
    assert json.loads(resp.read())["error"]["code"] == "too_large"


def test_slow_clients_do_not_tie_up_the_workers(fake_server: str) -> None:
    host, port = fake_server.removeprefix("http://").split(":")
    # More stalled clients than worker threads, each halfway through its request.
    stalled = []
    for _ in range(6):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        stalled.append(sock)
    try:
        t0 = time.monotonic()
        status, headers, body = http("GET", fake_server + "/api/health", timeout=10)
        assert status == 200 and body["status"] == "ok"
        assert time.monotonic() - t0 < 5
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value
    finally:
        for sock in stalled:
            sock.close()


# --- `qa serve` as a subprocess ---------------------------------------------------------------


@pytest.fixture(scope="module")
def qa_serve(built_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QAServe]:
    """`qa serve` over the session index; stopped with Ctrl-C (SIGINT) at the end."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    server = QAServe(
        ["--index", str(built_index.index_dir), "--seeds", str(built_index.seeds_dir)],
        log,
        env={"QA_RATE_LIMIT": "0", "QA_THREADS": "4"},
    )
    yield server
    assert server.stop() == 0, log.read_text()
    assert "Stopped." in log.read_text() and "Traceback" not in log.read_text()


def test_qa_serve_answers_over_http(qa_serve: QAServe) -> None:
    status, headers, health = http("GET", qa_serve.url + "/api/health")
    assert status == 200 and health["status"] == "ok" and health["documents"] == 5
    assert headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert headers.get("Server") == "qa"
    status, _, answer = http("POST", qa_serve.url + "/api/ask", {"question": QUESTIONS[1]})
    assert status == 200 and answer["answerable"] and answer["build"] == health["build"]
    status, headers, page = http("GET", qa_serve.url + "/")
    assert status == 200 and "/static/main.js" in page
    log = qa_serve.log.read_text()
    assert "Loading the model and the index" in log and "5 documents" in log
    # One line per request (method, path, status, time), and never the question asked.
    assert re.search(r"qa\.web\.access: 127\.0\.0\.1 POST /api/ask 200 \d+ ms", log), log
    assert re.search(r"GET /api/health 200 \d+ ms", log) and QUESTIONS[1] not in log
    assert " DEBUG " not in log and "Task queue depth" not in log


def test_qa_serve_refuses_a_damaged_index(tmp_path: Path) -> None:
    index = tmp_path / "index"
    (index / "builds" / "20260101T000000-abcdef").mkdir(parents=True)
    (index / "CURRENT").write_text("20260101T000000-abcdef\n")
    done = subprocess.run(
        [sys.executable, "-m", "qa", "serve", "--index", str(index), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3
    assert "incomplete" in done.stderr and "qa index" in done.stderr
    assert "Traceback" not in done.stderr and "Serving on" not in done.stdout


def test_qa_serve_on_a_busy_port_says_which_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "qa",
                "serve",
                "--index",
                str(tmp_path / "none"),
                *("--port", str(port)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "QA_PORT" in done.stderr
    assert "Traceback" not in done.stderr and "Serving on" not in done.stdout
    # It failed before building anything.
    assert "building" not in done.stderr and not (tmp_path / "none").exists()


def test_a_listen_failure_names_the_setting_to_change() -> None:
    s = Settings.from_env(env={}, host="10.255.255.1", port=80)
    busy = _cannot_listen(s, OSError(errno.EADDRINUSE, "Address already in use"))
    assert "in use" in busy and "QA_PORT" in busy and "QA_HOST" not in busy
    assert "privileges" in _cannot_listen(s, PermissionError(errno.EACCES, "Permission denied"))
    absent = _cannot_listen(s, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    assert "QA_HOST" in absent and "QA_PORT" not in absent
    assert "QA_HOST" in _cannot_listen(s, ValueError("Invalid host/port specified."))


def test_the_server_log_shows_no_library_debug_and_no_shallow_queue() -> None:
    # Under pytest the root logger has handlers, so `_log_to` is tried in a fresh interpreter.
    code = """
import io, logging, sys
from qa.web.server import _log_to
from qa.index.lexical import LexicalIndex
err = io.StringIO()
_log_to(err, 4)
LexicalIndex.build(["one text about harbours", "another about tariffs"])
logging.getLogger("bm25s").debug("debug from bm25s")
queue = logging.getLogger("waitress.queue")
queue.warning("Task queue depth is %d", 2)
queue.warning("Task queue depth is %d", 9)
logging.getLogger("qa.web.access").info("a request line")
sys.stdout.write(err.getvalue())
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    assert "DEBUG" not in out and "Building index" not in out
    assert "Task queue depth is 9" in out and "Task queue depth is 2" not in out
    assert "a request line" in out


def test_an_access_line_cannot_be_forged_by_a_path(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="qa.web.access"):
        log_access("1.2.3.4", "GET", "/x\n2026 INFO qa.web.access: forged", 404, 1.0)
        log_access(None, "-", "-", 413, None)
    first, second = (r.getMessage() for r in caplog.records)
    assert "\n" not in first and first.endswith("404 1 ms")
    assert second == "- - - 413 -"


def test_the_queue_warning_passes_only_past_the_thread_count() -> None:
    deep = _DeepQueue(threads=4)

    def record(depth: int) -> logging.LogRecord:
        return logging.LogRecord(
            "waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (depth,), None
        )

    assert not deep.filter(record(1)) and not deep.filter(record(4))
    assert deep.filter(record(5))


@pytest.mark.slow
def test_load_on_loopback(qa_serve: QAServe) -> None:
    """200 questions at concurrency 4: requests per second and latency percentiles."""
    url = qa_serve.url + "/api/ask"
    http("POST", url, {"question": QUESTIONS[0]})  # warm

    def one(i: int) -> tuple[int, float]:
        t0 = time.perf_counter()
        status, _, _ = http("POST", url, {"question": QUESTIONS[i % len(QUESTIONS)]})
        return status, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(200)))
    wall = time.perf_counter() - t0
    assert all(status == 200 for status, _ in results)
    latencies = sorted(ms * 1000 for _, ms in results)
    report = {
        "requests": len(results),
        "concurrency": 4,
        "seconds": round(wall, 2),
        "rps": round(len(results) / wall, 1),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[int(0.95 * len(latencies)) - 1], 1),
        "max_ms": round(latencies[-1], 1),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "load.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nload /api/ask: {report}")
