"""The red team's serving findings (issue 14, items 1, 4, 5, 6 and 16), each tried for real:
raw sockets against waitress on a free loopback port, the Flask test client, and `qa` as a
subprocess. Each test failed before its fix."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.ask.service import QAService
from qa.index import builds
from qa.index.build import build_index
from qa.settings import Settings
from qa.web.app import SECURITY_HEADERS, create_app
from qa.web.server import MAX_REQUEST_BODY, REQUEST_DEADLINE, create_server, url_of
from tests.conftest import SEEDS, FakeEmbedder
from tests.figures import record
from tests.live import http, server_thread

Address = tuple[str, int]


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A fast (fake-embedder) index of the seeds, shared by the module."""
    root = tmp_path_factory.mktemp("redteam")
    seeds = Path(shutil.copytree(SEEDS, root / "seeds"))
    build_index(seeds, root / "index", FakeEmbedder())
    return Settings.from_env(
        env={},
        seeds_dir=seeds,
        index_dir=root / "index",
        rate_limit=0,
        threads=4,
        feedback_db=root / "feedback.sqlite3",
    )


@pytest.fixture
def fresh_server(fake_index: Settings) -> Iterator[str]:
    """A server of its own (a flood must not leave anything behind for the next test)."""
    s = fake_index
    with server_thread(create_app(s, QAService(s, FakeEmbedder())), s) as url:
        yield url


@pytest.fixture(scope="module")
def server(fake_index: Settings) -> Iterator[str]:
    s = fake_index
    with server_thread(create_app(s, QAService(s, FakeEmbedder())), s) as url:
        yield url


@contextmanager
def limited_server(s: Settings, **limits: Any) -> Iterator[str]:
    """Like tests.live.server_thread, with create_server's keyword arguments."""
    app = create_app(s, QAService(s, FakeEmbedder()))
    server = create_server(app, replace(s, host="127.0.0.1", port=0), **limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield url_of(server).rstrip("/")
    finally:
        server.close()
        server.task_dispatcher.shutdown()
        thread.join(timeout=10)


def address(url: str) -> Address:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def raw(addr: Address, data: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send `data` on a new connection and read the answer: (status, headers lower-cased, body)."""
    with socket.create_connection(addr, timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything
        received = b""
        while True:
            head, sep, body = received.partition(b"\r\n\r\n")
            if sep:
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, _, v in (line.partition(":") for line in head.decode().split("\r\n")[1:])
                )
                length = int(headers.get("content-length", -1))
                if 0 <= length <= len(body):
                    return int(head.split()[1]), headers, body[:length]
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"the connection closed without a whole answer: {received!r}")
            received += chunk


def assert_secure_json_error(
    answer: tuple[int, dict[str, str], bytes], status: int, code: str
) -> str:
    got, headers, body = answer
    assert got == status, (got, headers, body)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, (name, headers)
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and error["code"] == code, error
    assert error["message"].strip()
    return error["message"]


# --- 1. slow clients ----------------------------------------------------------------------------


TRICKLE = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: "  # then "a" forever


class SlowClients:
    """`n` connections that trickle a request's header bytes (one byte per connection every
    half second) or send nothing at all; each one the server closes is opened again at once."""

    def __init__(self, addr: Address, n: int, trickle: bool) -> None:
        self.addr, self.trickle = addr, trickle
        self.opened: dict[socket.socket, float] = {}
        self.sent: dict[socket.socket, int] = {}  # bytes sent on each
        self.lifetimes: list[float] = []  # seconds each closed connection was held open
        self.closed_first = 0  # of the first `n`, how many the server closed
        self.first: set[socket.socket] = set()
        for _ in range(n):
            self.first.add(self._open())

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.addr, timeout=10)
        sock.setblocking(False)
        self.opened[sock] = time.monotonic()
        return sock

    def tick(self) -> None:
        for sock in list(self.opened):
            try:
                closed = sock.recv(4096, socket.MSG_DONTWAIT) is not None  # b"" or an answer
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if not closed and self.trickle:
                sent = self.sent[sock] = self.sent.get(sock, 0) + 1
                try:
                    sock.send(TRICKLE[sent - 1 : sent] or b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if closed:
                self.lifetimes.append(time.monotonic() - self.opened.pop(sock))
                self.closed_first += sock in self.first
                sock.close()
                try:
                    self._open()
                except OSError:
                    pass  # not accepted yet: the next tick tries again

    def close(self) -> None:
        for sock in self.opened:
            sock.close()


def test_slow_clients_never_lock_normal_clients_out(fresh_server: str) -> None:
    """250 slow connections (125 trickling a header a byte at a time, 125 silent), re-opened
    as soon as the server drops them; health probes keep being answered all along."""
    addr = address(fresh_server)
    window = 2.5 * REQUEST_DEADLINE  # long enough for every first slow connection to expire
    trickling = SlowClients(addr, 125, trickle=True)
    silent = SlowClients(addr, 125, trickle=False)
    stop = threading.Event()

    def attack() -> None:
        while not stop.is_set():
            trickling.tick()
            silent.tick()
            stop.wait(0.5)

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    probes: list[tuple[int, float]] = []  # (status or -1, seconds)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < window:
            p0 = time.monotonic()
            try:
                status, _, body = http("GET", fresh_server + "/api/health", timeout=15)
                status = (
                    status if isinstance(body, dict) and body.get("status") == "ok" else -status
                )
            except OSError:
                status = -1
            probes.append((status, time.monotonic() - p0))
            time.sleep(1)
    finally:
        stop.set()
        attacker.join(timeout=10)
        trickling.close()
        silent.close()
    answered = [s for s, _ in probes if s == 200]
    lifetimes = trickling.lifetimes + silent.lifetimes
    figures = {
        "slow_connections": 250,
        "seconds": round(window, 1),
        "probes": len(probes),
        "answered": len(answered),
        "probe_p50_ms": round(1000 * statistics.median(t for _, t in probes), 1),
        "probe_max_ms": round(1000 * max(t for _, t in probes), 1),
        "slow_closed_by_server": len(lifetimes),
        "slow_lifetime_median_s": round(statistics.median(lifetimes), 1) if lifetimes else None,
    }
    record("slow_clients", figures)
    assert len(answered) == len(probes) >= 5, figures
    # The server closed every one of the first slow connections (the deadline, not the limit).
    assert trickling.closed_first == 125 and silent.closed_first == 125, figures


def test_connections_past_the_limit_shed_the_stalled_ones(fake_index: Settings) -> None:
    """With a low limit (40), 80 silent connections: the oldest ones waiting for a request are
    closed to make room, so a probe is answered long before any deadline."""
    s = fake_index
    with limited_server(s, connection_limit=40) as url:
        silent = SlowClients(address(url), 80, trickle=False)
        try:
            t0 = time.monotonic()
            status, _, body = http("GET", url + "/api/health", timeout=REQUEST_DEADLINE * 3)
            took = time.monotonic() - t0
            silent.tick()
        finally:
            silent.close()
    record("shed_past_the_limit", {"limit": 40, "silent": 80, "probe_s": round(took, 2)})
    assert status == 200 and body["status"] == "ok"
    assert took < REQUEST_DEADLINE, took  # shed, not timed out
    assert silent.closed_first >= 40


def test_a_partial_request_past_the_deadline_gets_a_408(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="qa.web.access"),
        socket.create_connection(address(server), timeout=REQUEST_DEADLINE * 4) as sock,
    ):
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        took = time.monotonic() - t0
    assert any(r.getMessage().endswith(" 408 -") for r in caplog.records)
    head, _, body = data.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 408 ", head), data
    assert json.loads(body)["error"]["code"] == "request_timeout"
    assert REQUEST_DEADLINE - 1 <= took <= REQUEST_DEADLINE * 3, took


# --- 4. the Host header never becomes a redirect ------------------------------------------------


DOUBLE_SLASHES = ["/static//app.js", "/api//ask", "/doc//x", "//api/health", "/api//health"]


def test_no_redirect_to_a_host_the_client_named_test_client(fake_index: Settings) -> None:
    client = create_app(fake_index, QAService(fake_index, FakeEmbedder())).test_client()
    for path in DOUBLE_SLASHES:
        for method in ("GET", "POST"):
            resp = client.open(path, method=method, headers={"Host": "evil.example"})
            assert "evil.example" not in resp.headers.get("Location", ""), (path, resp.headers)
            assert resp.status_code in (404, 405), (path, resp.status_code)
            assert resp.get_json()["error"]["code"] in ("not_found", "method_not_allowed")


def test_no_redirect_to_a_host_the_client_named_raw(server: str) -> None:
    for path in DOUBLE_SLASHES:
        request = f"GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        status, headers, _ = raw(address(server), request.encode())
        assert "location" not in headers, (path, status, headers)
        assert status in (200, 404), (
            path,
            status,
        )  # waitress itself reads `//api/health` as a path


# --- 5. errors that waitress writes itself ------------------------------------------------------


def _head(extra: str, method: str = "POST") -> bytes:
    return f"{method} /api/ask HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def _chunked(body: bytes, size: int = 65536) -> bytes:
    out = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


WAITRESS_ERRORS: dict[str, tuple[bytes, int, str]] = {
    "body over 1 MiB (Content-Length)": (
        _head(f"Content-Type: application/json\r\nContent-Length: {MAX_REQUEST_BODY + 1}\r\n"),
        413,
        "too_large",
    ),
    "body over 1 MiB (chunked)": (
        _head("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n")
        + _chunked(b"x" * (MAX_REQUEST_BODY + 70_000)),
        413,
        "too_large",
    ),
    "headers over 32 KiB": (
        _head("X-Big: " + "a" * 40_000 + "\r\n", "GET"),
        431,
        "headers_too_large",
    ),
    "5,000 headers": (
        _head("".join(f"X-H{i}: {i}\r\n" for i in range(5000)), "GET"),
        431,
        "headers_too_large",
    ),
    "invalid Content-Length": (_head("Content-Length: abc\r\n"), 400, "bad_request"),
    "conflicting Content-Length": (
        _head("Content-Length: 2\r\nContent-Length: 3\r\n") + b"{}",
        400,
        "bad_request",
    ),
    "bad chunk size": (
        _head("Transfer-Encoding: chunked\r\n") + b"zz\r\n{}\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "Transfer-Encoding: gzip, chunked": (
        _head("Transfer-Encoding: gzip, chunked\r\n") + b"2\r\n{}\r\n0\r\n\r\n",
        501,
        "not_implemented",
    ),
}


@pytest.mark.parametrize("case", list(WAITRESS_ERRORS))
def test_errors_waitress_writes_are_json_with_the_security_headers(
    server: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    request, status, code = WAITRESS_ERRORS[case]
    with caplog.at_level(logging.INFO, logger="qa.web.access"):
        message = assert_secure_json_error(raw(address(server), request), status, code)
    assert "generated by" not in message
    # The app never saw the request; the access log still has its line.
    lines = [r.getMessage() for r in caplog.records if r.name == "qa.web.access"]
    assert any(line.endswith(f" {status} -") for line in lines), lines


# --- 6. a 503 tells the kind of problem, never a path or a file's bytes -------------------------

SECRET = "root:x:0:0:TOPSECRET-a8f3c2:/root:/bin/bash"
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:tmp|home|etc|root|var|usr|work|proc|srv|opt)\b")


def _web_bodies(s: Settings) -> list[str]:
    client = create_app(s, QAService(s, FakeEmbedder())).test_client()
    resps = [
        client.get("/api/health"),
        client.post("/api/ask", json={"question": "Where did Rubio and Lavrov meet?"}),
        client.get("/api/examples"),
        client.get("/api/documents/x"),
        client.post(
            "/api/feedback",
            json={"question": "q", "doc_id": "d", "start": 0, "end": 1, "helpful": True},
        ),
    ]
    assert all(r.status_code == 503 for r in resps), [r.status_code for r in resps]
    for r in resps:
        assert "qa index" in r.get_json()["error"]["message"]
    return [r.get_data(as_text=True) for r in resps]


def test_503_bodies_hold_no_secret_and_no_path(
    fake_index: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = Path(shutil.copytree(fake_index.index_dir, tmp_path / "index"))
    s = replace(fake_index, index_dir=index, feedback_db=tmp_path / "feedback.sqlite3")
    serving = builds.current_build_id(index) or ""
    secret = tmp_path / "passwd"
    secret.write_text(SECRET + "\n")
    bodies: dict[str, list[str]] = {}
    # CURRENT a symlink to a file holding a secret-looking line.
    (index / builds.CURRENT).unlink()
    (index / builds.CURRENT).symlink_to(secret)
    bodies["CURRENT -> secret"] = _web_bodies(s)
    # A damaged build (its documents deleted), then its vector store gone, then no index.
    (index / builds.CURRENT).unlink()
    (index / builds.CURRENT).write_text(serving + "\n")
    files = builds.build_files(index, serving)
    files.documents.unlink()
    bodies["documents.json deleted"] = _web_bodies(s)
    shutil.copy(fake_index.index_dir / "builds" / serving / "documents.json", files.documents)
    shutil.rmtree(files.chroma)
    bodies["chroma/ deleted"] = _web_bodies(s)
    (index / builds.CURRENT).unlink()
    bodies["no index"] = _web_bodies(s)
    leaks = {
        case: body
        for case, texts in bodies.items()
        for body in texts
        if "TOPSECRET" in body
        or "root:x" in body
        or str(tmp_path) in body
        or ABSOLUTE_PATH.search(body)
    }
    assert not leaks, leaks
    # The details are in the server log.
    assert "TOPSECRET" in caplog.text and str(index) in caplog.text


# --- 16. a closed pipe ends the CLI quietly -----------------------------------------------------


def test_cli_output_into_a_closed_pipe_exits_quietly(fake_index: Settings) -> None:
    """`qa ask --json ... | head -c 10`, made deterministic: the reading end is closed before
    `qa` writes a byte. (`qa faq` needs no model, so the test is quick.)"""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "qa", "faq", "--seeds", str(fake_index.seeds_dir)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.stderr == "", done.stderr
    assert done.returncode == 141, done.returncode


def test_qa_ask_json_into_a_closed_pipe_exits_quietly(built_index: Settings) -> None:
    """The report's own command, `qa ask --json "..." | head -c 10`, with the pipe closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    args = ["--index", str(built_index.index_dir), "--seeds", str(built_index.seeds_dir)]
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "qa",
                "ask",
                "--json",
                *args,
                "Where did Rubio and Lavrov meet?",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 141, (done.returncode, done.stderr)
