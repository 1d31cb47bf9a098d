"""`qa bench`'s HTTP measurements: a real `qa serve` process on loopback, put under load.

Latency at concurrency 1 (with the in-process ask timed alongside, under the same load),
throughput with 1 and 8 clients, and the server's memory before and after a soak.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.bench.plan import Plan
from qa.bench.stats import summary_ms


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
    # The server's query cache is off: the rounds repeat the shipped questions, and the HTTP
    # ratios are about answering a question, not remembering its vector.
    env = dict(os.environ, QA_RATE_LIMIT="0", HF_HUB_OFFLINE="1", QA_QUERY_CACHE="0")
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
