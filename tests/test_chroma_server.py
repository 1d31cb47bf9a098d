"""Scale-out: the same end-to-end questions against the embedded store and a real Chroma server.

The server is `chroma run` on a free loopback port, started here and stopped afterwards. A
build made with `QA_CHROMA_URL` keeps its vectors in one collection on the server; the app
names the active one (CURRENT + the manifest's "store") and drops old builds' collections.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from qa.ask.service import QAService
from qa.errors import IndexUnavailable
from qa.index import builds
from qa.index.build import build_index
from qa.index.store import VectorStore, collection_name
from qa.model import Embedder
from qa.settings import Settings
from qa.text import fold
from qa.web.app import create_app
from tests.chroma_server import ChromaServer, chroma_server
from tests.conftest import FakeEmbedder
from tests.figures import record
from tests.live import QAServe, http
from tests.test_ask import OWN_QUESTIONS

MODES = ["embedded", "server"]
OFF_TOPIC = ["How do I bake sourdough bread at home?", "Who won the 2018 FIFA World Cup final?"]
FAQ_QUESTIONS = [
    "Why are US-Russia relations so strained right now?",
    "What is the current state of the war in Ukraine?",
]
QUESTIONS = [q for q, _ in OWN_QUESTIONS] + FAQ_QUESTIONS + OFF_TOPIC


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with chroma_server(tmp_path_factory.mktemp("chroma")) as server:
        yield server


def copy_index(src: Path, dst: Path) -> Path:
    """A private copy of an index folder (so a rebuild reuses its vectors: nothing re-embedded)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("feedback*", ".lock"))
    return dst


@pytest.fixture(scope="module")
def server_settings(
    built_index: Settings,
    embedder: Embedder,
    chroma: ChromaServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """The session corpus indexed into the Chroma server (vectors reused from the session)."""
    index = copy_index(built_index.index_dir, tmp_path_factory.mktemp("server") / "index")
    report = build_index(built_index.seeds_dir, index, embedder, chroma_url=chroma.url)
    assert report.embedded == 0
    return replace(built_index, index_dir=index, chroma_url=chroma.url)


@pytest.fixture(scope="module", params=MODES)
def store_service(
    request: pytest.FixtureRequest,
    service: QAService,
    server_settings: Settings,
    embedder: Embedder,
) -> QAService:
    """The same corpus served from the embedded store, then from the Chroma server."""
    if request.param == "embedded":
        return service
    svc = QAService(server_settings, embedder)
    svc.ready()
    return svc


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer object minus what legitimately differs between two builds: timing and build."""
    return {k: v for k, v in answer.items() if k not in ("timing_ms", "build")}


# --- the end-to-end questions, once per store ----------------------------------------------


def test_the_build_lives_where_it_was_configured(store_service: QAService) -> None:
    idx = store_service.index()
    files = builds.build_files(store_service.settings.index_dir, idx.build_id)
    if store_service.settings.chroma_url:
        assert idx.manifest["store"] == store_service.settings.chroma_url
        assert not files.chroma.exists()  # nothing embedded was written or created on open
    else:
        assert idx.manifest["store"] == "embedded" and files.chroma.is_dir()


@pytest.mark.parametrize(("question", "phrase"), OWN_QUESTIONS[:6])
def test_questions_are_answered_from_either_store(
    store_service: QAService, question: str, phrase: str
) -> None:
    answer = store_service.ask(question)
    assert answer.answerable and answer.build == store_service.index().build_id
    assert fold(phrase) in fold(answer.citations[0].text), question


def test_citations_are_exact_and_verified_in_either_store(store_service: QAService) -> None:
    idx = store_service.index()
    for question in QUESTIONS:
        answer = store_service.ask(question, top_k=8)
        assert answer.citations, question
        for c in answer.citations:
            doc = idx.documents[c.doc_id]
            assert doc.sha256 == c.doc_sha256 and doc.raw[c.start : c.end] == c.text


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_is_unanswerable_in_either_store(store_service: QAService, question: str) -> None:
    assert not store_service.ask(question).answerable


def test_server_and_embedded_give_the_same_answers(
    service: QAService, server_settings: Settings, embedder: Embedder
) -> None:
    remote = QAService(server_settings, embedder)
    assert remote.index().build_id != service.index().build_id
    for question in QUESTIONS:
        for k in (1, 5, 12):
            here = service.ask(question, top_k=k).to_dict()
            there = remote.ask(question, top_k=k).to_dict()
            assert comparable(there) == comparable(here), (question, k)
    record("store_parity", {"questions": len(QUESTIONS), "answers_compared": 3 * len(QUESTIONS)})


# --- the CLI and the lifecycle of collections on the server ---------------------------------


def _qa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_cli_indexes_into_and_asks_a_chroma_server(
    built_index: Settings, service: QAService, chroma: ChromaServer, tmp_path: Path
) -> None:
    index = copy_index(built_index.index_dir, tmp_path / "index")
    seeds = ["--seeds", str(built_index.seeds_dir), "--index", str(index)]
    done = _qa("index", "--json", "-q", *seeds, "--chroma-url", chroma.url)
    assert done.returncode == 0, done.stderr
    build = json.loads(done.stdout)["build_id"]
    assert builds.current_build_id(index) == build
    assert collection_name(build) in chroma.collections()
    manifest = builds.read_manifest(builds.build_files(index, build))
    assert manifest["store"] == chroma.url

    question = "Where did Rubio and Lavrov meet?"
    # The flag and the environment variable name the same setting.
    by_flag = _qa("ask", "--json", *seeds, "--chroma-url", chroma.url, question)
    by_env = _qa("ask", "--json", *seeds, question, env={"QA_CHROMA_URL": chroma.url})
    for done in (by_flag, by_env):
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["build"] == build
        assert comparable(answer) == comparable(service.ask(question).to_dict())
    # `qa serve` over the server's build: the same answer over HTTP.
    serve = QAServe([*seeds, "--chroma-url", chroma.url], tmp_path / "serve.log")
    try:
        status, _, health = http("GET", serve.url + "/api/health")
        assert status == 200 and health["build"] == build
        status, _, answer = http("POST", serve.url + "/api/ask", {"question": question})
        assert status == 200 and answer["build"] == build
        assert comparable(answer) == comparable(service.ask(question).to_dict())
    finally:
        assert serve.stop() == 0
    # Without the URL, the build cannot be served from here: said in one sentence.
    no_url = _qa("ask", *seeds, question, env={"QA_CHROMA_URL": ""})
    assert no_url.returncode == 3 and "needs its URL" in no_url.stderr
    assert no_url.stderr.count("\n") == 1 and "Traceback" not in no_url.stderr
    assert not builds.build_files(index, build).chroma.exists()  # and no empty store was made


def test_old_builds_collections_are_dropped_after_a_switch(
    corpus_copy: Path, chroma: ChromaServer, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    emb = FakeEmbedder()
    made = [build_index(corpus_copy, index, emb, chroma_url=chroma.url).build_id]
    # A killed build leaves a half-written folder and a collection on the server.
    killed = builds.new_build_id()
    (builds.builds_dir(index) / killed).mkdir()
    VectorStore.create(None, killed, chroma.url)
    assert collection_name(killed) in chroma.collections()
    for _ in range(3):
        made.append(build_index(corpus_copy, index, emb, chroma_url=chroma.url).build_id)
        mine = {collection_name(b) for b in [*made, killed]} & chroma.collections()
        # The serving build and the one before it (questions in flight may still use it).
        assert mine == {collection_name(made[-1]), collection_name(made[-2])}
    assert not (builds.builds_dir(index) / killed).exists()


@pytest.fixture
def corpus_copy(built_index: Settings, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built_index.seeds_dir, tmp_path / "seeds"))


def test_a_stopped_server_is_reported_and_a_restart_resumes(
    built_index: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    index = copy_index(built_index.index_dir, tmp_path / "index")
    server = ChromaServer(tmp_path / "data", tmp_path / "chroma.log").start()
    try:
        s = replace(
            built_index,
            index_dir=index,
            chroma_url=server.url,
            rate_limit=0,
            feedback_db=tmp_path / "feedback.sqlite3",
        )
        first = build_index(s.seeds_dir, index, embedder, chroma_url=server.url).build_id
        running = QAService(s, embedder)
        running.ready()
        server.stop()
        question = "Where did Rubio and Lavrov meet?"
        # A process that opened the build before: small collections are searched exactly from
        # vectors read at open, so it keeps answering; otherwise it says 503 (StoreError).
        if running.index().store.exact:
            assert running.ask(question).build == first
        else:
            with pytest.raises(IndexUnavailable, match="vector store"):
                running.ask(question)

        # A process that starts now cannot open the build: one sentence, exit 3, no traceback.
        args = ["--index", str(index), "--seeds", str(s.seeds_dir), "--chroma-url", server.url]
        asked = _qa("ask", *args, question)
        assert asked.returncode == 3, asked.stderr
        assert f"cannot reach the Chroma server at {server.url}" in asked.stderr
        assert asked.stderr.count("\n") == 1 and "Traceback" not in asked.stderr
        client = create_app(s, QAService(s, embedder)).test_client()
        health = client.get("/api/health")
        assert health.status_code == 503
        assert "cannot reach the Chroma server" in health.json["error"]["message"]
        assert client.post("/api/ask", json={"question": question}).status_code == 503
        # Building needs the server too; the failure publishes nothing.
        indexed = _qa("index", "-q", *args)
        assert indexed.returncode == 3 and "cannot reach the Chroma server" in indexed.stderr
        assert "Traceback" not in indexed.stderr
        assert builds.current_build_id(index) == first

        # The same server restarted on its data: everything resumes, nothing rebuilt.
        server = ChromaServer(server.path, server.log, port=server.port).start()
        s = replace(s, chroma_url=server.url)  # the same port unless it was taken meanwhile
        assert QAService(s, embedder).ask(question).build == first
        assert collection_name(first) in server.collections()
    finally:
        server.stop()


def test_a_killed_server_build_is_cleaned_up_by_the_next(
    built_index: Settings, chroma: ChromaServer, tmp_path: Path
) -> None:
    """`qa index --chroma-url` SIGKILLed while it writes to the server; the next one publishes.

    The server is paused (SIGSTOP) once the build's local files are written, so the kill lands
    while the indexer waits on the server, with the collection half made; then it resumes.
    """
    index = copy_index(built_index.index_dir, tmp_path / "index")
    before = builds.current_build_id(index)
    seeds = tmp_path / "seeds"
    shutil.copytree(built_index.seeds_dir, seeds)
    target = seeds / "000_ab687fec20728463.txt"
    target.write_text(
        "A new opening line.\n" + target.read_text(encoding="utf-8"), encoding="utf-8"
    )
    args = ["index", "-q", "--seeds", str(seeds), "--index", str(index), "--chroma-url", chroma.url]
    proc = subprocess.Popen([sys.executable, "-m", "qa", *args], stderr=subprocess.PIPE)
    try:
        new = _wait_for(lambda: _new_build_with(index, before, "bm25"), proc, timeout=300)
        chroma.pause()
        time.sleep(1.0)  # the indexer reaches its next request to the server and waits
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        chroma.resume()
    assert builds.current_build_id(index) == before
    assert not (builds.builds_dir(index) / new / builds.MANIFEST).exists()

    done = _qa(*args)
    assert done.returncode == 0, done.stderr
    after = builds.current_build_id(index)
    assert after not in (before, new)
    assert collection_name(new) not in chroma.collections()
    assert not (builds.builds_dir(index) / new).exists()


def _new_build_with(index: Path, before: str | None, name: str) -> str | None:
    root = builds.builds_dir(index)
    for d in root.iterdir() if root.is_dir() else []:
        if d.name != before and (d / name).exists():
            return d.name
    return None


def _wait_for(found: Any, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"qa index ended first: {err!r}")
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("timed out")
