"""A real Chroma server for tests: `chroma run` on a free loopback port, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def chroma_executable() -> str:
    """The `chroma` CLI that chromadb installed beside this Python."""
    here = Path(sys.executable).parent / "chroma"
    found = str(here) if here.exists() else shutil.which("chroma")
    if not found:
        pytest.fail("the `chroma` CLI is missing: chromadb installs it (pip install chromadb)")
    return found


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """`chroma run --path DIR --host 127.0.0.1 --port PORT` as a subprocess."""

    def __init__(self, path: Path, log: Path, port: int | None = None) -> None:
        self.path = path
        self.log = log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ChromaServer:
        """Start the server and wait for its heartbeat; a taken port is retried with another."""
        for _attempt in range(3):
            argv = [chroma_executable(), "run", "--path", str(self.path)]
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.alive():
                    return self
                time.sleep(0.1)
            self.stop()
            self.port = free_port()
        raise RuntimeError(f"chroma run did not start:\n{self.log.read_text(errors='replace')}")

    def alive(self) -> bool:
        """True when the server answers its heartbeat."""
        try:
            with urllib.request.urlopen(self.url + "/api/v2/heartbeat", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server (kill it if it does not stop within 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP the server: clients block as on a stalled network."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def collections(self) -> set[str]:
        """Names of the collections the server holds."""
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.HttpClient(
            host="127.0.0.1", port=self.port, settings=ChromaSettings(anonymized_telemetry=False)
        )
        return {c.name for c in client.list_collections()}


@contextmanager
def chroma_server(root: Path) -> Iterator[ChromaServer]:
    """A started Chroma server persisting into `root/data`; stopped on exit."""
    server = ChromaServer(root / "data", root / "chroma.log").start()
    try:
        yield server
    finally:
        server.stop()
