"""Index faults, tried for real: `qa index` SIGKILLed at many points, damaged and mismatched
builds, two `qa index` runs at once, and a corpus folder full of bad files.

Every `qa index` here is a real subprocess with the real model; the previous build must keep
serving through every fault, and the next `qa index` must complete and publish.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from qa.ask.service import QAService
from qa.filelock import locked
from qa.index import builds
from qa.index.build import build_index
from qa.model import Embedder
from qa.settings import Settings
from qa.web.app import create_app
from tests.figures import record

QUESTION = "Where did Rubio and Lavrov meet?"
# A question only the variant articles (below) answer.
VARIANT_QUESTION = "WHERE DID RUBIO AND LAVROV MEET?"


def qa(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m qa ARGS`, captured."""
    return subprocess.run(
        [sys.executable, "-m", "qa", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def copy_index(src: Path, dst: Path) -> Path:
    """A private copy of an index folder: a rebuild of the same corpus reuses its vectors."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("feedback*", ".lock"))
    return dst


def changed_corpus(seeds: Path, dst: Path, variants: int = 3) -> Path:
    """The seeds plus `variants` upper-cased copies of them: hundreds of texts to embed anew."""
    shutil.copytree(seeds, dst)
    for p in sorted(seeds.glob("*.txt"))[:variants]:
        text = p.read_text(encoding="utf-8").upper()
        (dst / f"1{p.name[1:-4]}_upper.txt").write_text(text, encoding="utf-8")
    return dst


def one_sentence(stderr: str) -> str:
    """The CLI's error: exactly one line `qa: ...`, never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("qa: "), stderr
    return lines[0].removeprefix("qa: ")


# --- SIGKILL at any moment ----------------------------------------------------------------


@dataclass
class Kill:
    """Where a `qa index` subprocess was when it was killed."""

    point: str
    stage: str
    seconds: float
    build: str | None
    event: str = ""


def _stage(build_dir: Path | None) -> str:
    if build_dir is None:
        return "starting (imports, model, corpus)"
    for name, stage in [
        (builds.MANIFEST, "publishing"),
        ("chroma", "writing the Chroma collection"),
        ("bm25", "writing BM25"),
        ("documents.json", "writing documents"),
        ("passages.jsonl", "writing passages"),
        ("vectors.npy", "writing vectors"),
    ]:
        if (build_dir / name).exists():
            return stage
    return "embedding"


def kill_indexer(
    args: list[str],
    index: Path,
    trigger: Callable[[Path | None, float], bool],
    may_finish: bool = False,
) -> Kill:
    """Start `qa index ARGS`; when `trigger(new build dir or None, seconds)` says so, freeze it
    (SIGSTOP, so the stage seen is the stage it dies in) and SIGKILL it."""
    root = builds.builds_dir(index)
    before = {d.name for d in root.iterdir()} if root.is_dir() else set()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qa", "index", "-q", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while True:
            new = [d for d in root.iterdir() if d.name not in before] if root.is_dir() else []
            build_dir = new[0] if new else None
            elapsed = time.monotonic() - t0
            if trigger(build_dir, elapsed):
                proc.send_signal(signal.SIGSTOP)
                # The folder may have appeared between the look and the stop.
                new = [d for d in root.iterdir() if d.name not in before] if root.is_dir() else []
                build_dir = new[0] if new else None
                kill = Kill("", _stage(build_dir), round(elapsed, 2), build_dir and build_dir.name)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return kill
            if proc.poll() is not None:
                if may_finish and proc.returncode == 0:  # it beat the clock: nothing to kill
                    return Kill("", "finished", round(elapsed, 2), build_dir and build_dir.name)
                raise AssertionError(f"qa index ended before the kill: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            if elapsed > 300:
                raise AssertionError("qa index never reached the kill point")
            time.sleep(0.003)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def after_seconds(s: float) -> Callable[[Path | None, float], bool]:
    return lambda build_dir, elapsed: elapsed >= s


# Kill points named by the events the indexer reports, never by the clock: `qa index` runs
# with QA_TEST_PAUSE_AT="stage:n" (qa/index/build.py, `_pause_for_tests`), stops at its first
# progress report of `stage` with done >= n, writes a marker file and waits there to be killed.
# None: killed while it waits for the index lock, which the test holds (the "starting" stage).
KILL_EVENTS: list[tuple[str, str | None, str]] = [  # (point, pause at, stage it dies in)
    ("waiting for the index lock", None, "starting (imports, model, corpus)"),
    ("embedding begins", "embedding:0", "embedding"),
    ("after the first batch embedded", "embedding:1", "embedding"),
    ("vectors, passages, documents written", "writing:1", "writing documents"),
    ("BM25 written", "writing:2", "writing BM25"),
    ("Chroma collection written, no manifest", "writing:3", "writing the Chroma collection"),
]


def _opened(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux /proc)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            continue
    return False


def kill_at_event(args: list[str], index: Path, pause_at: str | None, marker: Path) -> Kill:
    """Start `qa index ARGS`, wait for the event, freeze it (SIGSTOP) and SIGKILL it."""
    root = builds.builds_dir(index)
    before = {d.name for d in root.iterdir()} if root.is_dir() else set()
    marker.unlink(missing_ok=True)
    env = {**os.environ, "QA_TEST_PAUSE_AT": pause_at or "", "QA_TEST_PAUSE_FILE": str(marker)}
    with contextlib.ExitStack() as held:
        if pause_at is None:
            held.enter_context(locked(index / ".lock"))  # the build waits for it, forever
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa", "index", "-q", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            reached = (
                (lambda: _opened(proc.pid, index / ".lock")) if pause_at is None else marker.exists
            )
            while not reached():
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else b""
                    raise AssertionError(f"qa index ended before {pause_at}: {err!r}")
                # Not a timing assumption: only a bound on a hung test.
                assert time.monotonic() - t0 < 600, f"qa index never reached {pause_at}"
                time.sleep(0.01)
            proc.send_signal(signal.SIGSTOP)
            new = [d for d in root.iterdir() if d.name not in before] if root.is_dir() else []
            build_dir = new[0] if new else None
            kill = Kill(
                "", _stage(build_dir), round(time.monotonic() - t0, 2), build_dir and build_dir.name
            )
            kill.event = marker.read_text().strip() if pause_at else "opened index/.lock"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return kill
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def fault_index(built_index: Settings, tmp_path: Path) -> Settings:
    """A copy of the session index, with a changed corpus waiting to be indexed."""
    index = copy_index(built_index.index_dir, tmp_path / "index")
    seeds = changed_corpus(built_index.seeds_dir, tmp_path / "seeds")
    return replace(built_index, index_dir=index, seeds_dir=seeds)


def _assert_previous_serves(
    s: Settings, embedder: Embedder, running: QAService, before: str
) -> None:
    assert builds.current_build_id(s.index_dir) == before
    assert running.ask(QUESTION).build == before  # a server that was already up
    fresh = QAService(s, embedder)  # a server that starts now
    assert fresh.ready()["build"] == before
    answer = fresh.ask(QUESTION)
    assert answer.answerable and answer.build == before


def test_index_killed_at_any_point_leaves_the_previous_build_serving(
    fault_index: Settings, embedder: Embedder
) -> None:
    s = fault_index
    before = builds.current_build_id(s.index_dir)
    assert before is not None
    running = QAService(s, embedder)
    running.ready()
    args = ["--seeds", str(s.seeds_dir), "--index", str(s.index_dir)]
    kills = []
    for point, pause_at, stage in KILL_EVENTS:
        kill = kill_at_event(args, s.index_dir, pause_at, s.index_dir.parent / "paused")
        kill.point = point
        kills.append(kill)
        assert kill.stage == stage, kill  # where the event says, every time
        _assert_previous_serves(s, embedder, running, before)

    # The next `qa index` completes, publishes, and clears the half-written folders.
    done = qa("index", "--json", "-q", *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert builds.current_build_id(s.index_dir) == report["build_id"] != before
    assert report["embedded"] > 0
    leftovers = [k.build for k in kills if k.build]
    assert leftovers and not any((builds.builds_dir(s.index_dir) / b).exists() for b in leftovers)
    assert all((d / builds.MANIFEST).is_file() for d in builds.builds_dir(s.index_dir).iterdir())
    assert running.ask(VARIANT_QUESTION).build == report["build_id"]  # hot-swapped
    record("kills", [k.__dict__ for k in kills])


@pytest.mark.slow
def test_index_killed_at_timed_moments(
    built_index: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    """Kills at fractions of a full run's duration, each on a fresh copy of the index."""
    base = changed_corpus(built_index.seeds_dir, tmp_path / "seeds")
    calib = copy_index(built_index.index_dir, tmp_path / "calibrate")
    t0 = time.monotonic()
    done = qa("index", "-q", "--seeds", str(base), "--index", str(calib))
    full = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    kills = []
    for i, fraction in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]):
        index = copy_index(built_index.index_dir, tmp_path / f"index{i}")
        before = builds.current_build_id(index)
        s = replace(built_index, index_dir=index, seeds_dir=base)
        args = ["--seeds", str(base), "--index", str(index)]
        kill = kill_indexer(args, index, after_seconds(fraction * full), may_finish=True)
        kill.point = f"{fraction:.0%} of a {full:.1f} s run"
        kills.append(kill)
        now = builds.current_build_id(index)
        if kill.stage in ("publishing", "finished"):  # complete before the kill: may serve
            assert now in (before, kill.build)
            assert QAService(s, embedder).ask(QUESTION).build == now
        else:
            assert now == before
            assert QAService(s, embedder).ask(QUESTION).build == before
    # The last copy: the next run completes.
    done = qa("index", "-q", *args)
    assert done.returncode == 0, done.stderr
    assert builds.current_build_id(index) != before
    record("timed_kills", [k.__dict__ for k in kills])


# --- damaged builds: detected at start, one sentence, repaired by `qa index` -----------------


def _set_manifest(files: builds.BuildFiles, **changes: object) -> None:
    manifest = json.loads(files.manifest.read_text())
    manifest.update(changes)
    files.manifest.write_text(json.dumps(manifest))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _other_dimension(files: builds.BuildFiles) -> None:
    vectors = np.load(files.vectors)
    np.save(files.vectors, np.zeros((len(vectors), 768), dtype=np.float32))
    _set_manifest(files, dimension=768)


# name -> (damage(index, files of the serving build), words the one-sentence reason holds)
DAMAGES: dict[str, tuple[Callable[[Path, builds.BuildFiles], object], str]] = {
    "no index at all": (lambda index, f: shutil.rmtree(index), "no index in"),
    "CURRENT missing": (lambda index, f: (index / builds.CURRENT).unlink(), "no index in"),
    "CURRENT garbage": (
        lambda index, f: (index / builds.CURRENT).write_text("<html>\x00\n"),
        "does not name a build",
    ),
    "CURRENT names a missing build": (
        lambda index, f: (index / builds.CURRENT).write_text("20990101T000000-abcdef\n"),
        "is incomplete",
    ),
    "half-written build (no manifest)": (lambda index, f: f.manifest.unlink(), "is incomplete"),
    "manifest cut in half": (lambda index, f: _truncate(f.manifest), "unreadable manifest"),
    "passages cut in half": (lambda index, f: _truncate(f.passages), "is damaged"),
    "vectors overwritten": (
        lambda index, f: f.vectors.write_bytes(os.urandom(4096)),
        "is damaged",
    ),
    "documents missing": (lambda index, f: f.documents.unlink(), "is damaged"),
    "BM25 missing": (lambda index, f: shutil.rmtree(f.bm25), "is damaged"),
    "Chroma folder missing": (lambda index, f: shutil.rmtree(f.chroma), "chroma is missing"),
    "Chroma database overwritten": (
        lambda index, f: (f.chroma / "chroma.sqlite3").write_bytes(os.urandom(8192)),
        "cannot open the vector store",
    ),
    "manifest names another model": (
        lambda index, f: _set_manifest(f, model="all-mpnet-base-v2"),
        "was made with all-mpnet-base-v2",
    ),
    "manifest dimension differs from the vectors": (
        lambda index, f: _set_manifest(f, dimension=768),
        "but its manifest says 768",
    ),
    "build of a 768-d model": (lambda index, f: _other_dimension(f), "(768-d) but the configured"),
}
# Repairing these re-embeds the whole corpus (the damaged build's vectors cannot be reused).
REEMBED = {
    "no index at all",
    "CURRENT missing",
    "CURRENT garbage",
    "CURRENT names a missing build",
    "half-written build (no manifest)",
    "manifest cut in half",
    "vectors overwritten",
    "manifest names another model",
    "build of a 768-d model",
}
# What a web client reads (the start of it) where it is not "the serving build is damaged".
WEB_KIND = {
    "no index at all": "the index is unavailable: no index has been built yet",
    "CURRENT missing": "the index is unavailable: no index has been built yet",
    "CURRENT garbage": "the index is unavailable: CURRENT does not name a build",
    "Chroma folder missing": "the index is unavailable: its vector store cannot be opened",
    "Chroma database overwritten": "the index is unavailable: its vector store cannot be opened",
}
CLI_REPAIR = {"CURRENT missing", "manifest names another model", "Chroma folder missing"}


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(name, marks=[pytest.mark.slow] if name in REEMBED - CLI_REPAIR else [])
        for name in DAMAGES
    ],
)
def test_damaged_index_is_one_sentence_then_repaired(
    damage: str, built_index: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    index = copy_index(built_index.index_dir, tmp_path / "index")
    s = replace(built_index, index_dir=index, feedback_db=tmp_path / "feedback.sqlite3")
    files = builds.build_files(index, builds.current_build_id(index) or "")
    spoil, reason = DAMAGES[damage]
    spoil(index, files)

    # The CLI: exit 3 and one sentence that says to run `qa index`.
    asked = qa("ask", "--index", str(index), "--seeds", str(s.seeds_dir), QUESTION)
    assert asked.returncode == 3, (asked.returncode, asked.stderr)
    message = one_sentence(asked.stderr)
    assert reason in message and "qa index" in message, message
    # The web app: /api/health says 503 with the kind of problem (the details, which name
    # server paths, stay in the server log); /api/ask says the same.
    client = create_app(s, QAService(s, embedder)).test_client()
    health = client.get("/api/health")
    assert health.status_code == 503
    assert health.json["status"] == "unavailable"
    said = health.json["error"]["message"]
    assert health.json["error"]["code"] == "index_unavailable"
    assert "qa index" in said and str(tmp_path) not in said and said != message
    assert said.startswith(WEB_KIND.get(damage, "the serving build is damaged or unusable")), said
    ask = client.post("/api/ask", json={"question": QUESTION})
    assert ask.status_code == 503 and ask.json["error"]["message"] == said

    # `qa index` repairs by building anew; the same running app recovers without a restart.
    if damage in CLI_REPAIR:
        done = qa("index", "-q", "--index", str(index), "--seeds", str(s.seeds_dir))
        assert done.returncode == 0, done.stderr
    else:
        build_index(s.seeds_dir, index, embedder)
    health = client.get("/api/health")
    assert health.status_code == 200, health.json
    assert health.json["build"] == builds.current_build_id(index) != files.root.name
    assert client.post("/api/ask", json={"question": QUESTION}).json["answerable"]


def test_health_names_a_mismatched_encoder(built_index: Settings, tmp_path: Path) -> None:
    """A build made by another encoder than the configured one (QA_ENCODER) is refused."""
    index = copy_index(built_index.index_dir, tmp_path / "index")
    files = builds.build_files(index, builds.current_build_id(index) or "")
    made_by = json.loads(files.manifest.read_text())["model"]
    _set_manifest(files, model=made_by + "-other")
    asked = qa("ask", "--index", str(index), "--seeds", str(built_index.seeds_dir), QUESTION)
    assert asked.returncode == 3
    message = one_sentence(asked.stderr)
    assert f"made with {made_by}-other (384-d) but the configured encoder is {made_by}" in message


# --- two `qa index` at once ---------------------------------------------------------------


def test_two_index_runs_never_interleave(fault_index: Settings) -> None:
    s = fault_index
    before = builds.current_build_id(s.index_dir)
    args = [sys.executable, "-m", "qa", "index", "--json", "-q"]
    args += ["--seeds", str(s.seeds_dir), "--index", str(s.index_dir)]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    # Watch the builds folder: never two builds in progress at once.
    root = builds.builds_dir(s.index_dir)
    most_in_progress = 0
    while any(p.poll() is None for p in procs):
        in_progress = [d for d in root.iterdir() if not (d / builds.MANIFEST).exists()]
        most_in_progress = max(most_in_progress, len(in_progress))
        time.sleep(0.005)
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    reports = sorted((json.loads(out) for out, _ in outs), key=lambda r: r["build_id"])
    first, second = reports
    manifest = {
        r["build_id"]: builds.read_manifest(builds.build_files(s.index_dir, r["build_id"]))
        for r in reports
    }
    assert most_in_progress == 1
    # The second build started after the first was published: it names it as its previous
    # build and reuses every vector the first one embedded.
    assert manifest[first["build_id"]]["previous"] == before
    assert manifest[second["build_id"]]["previous"] == first["build_id"]
    assert first["embedded"] > 0 and second["embedded"] == 0
    assert builds.current_build_id(s.index_dir) == second["build_id"]


# --- a corpus folder full of bad files ------------------------------------------------------


def test_index_report_names_every_bad_file(built_index: Settings, tmp_path: Path) -> None:
    seeds = Path(shutil.copytree(built_index.seeds_dir, tmp_path / "seeds"))
    (seeds / "empty.txt").write_bytes(b"")
    (seeds / "blank.txt").write_bytes(b" \n\n\t \n")
    (seeds / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (seeds / "latin1.txt").write_bytes("Caf\xe9 soci\xe9t\xe9 and its d\xe9bats.".encode("latin-1"))
    (seeds / "control.txt").write_bytes(b"Some text\x01\x02\x03\x04\x05\x06\x07\x08" * 10)
    with open(seeds / "huge.txt", "wb") as f:  # 20 MB
        f.write(b"A sentence about sanctions on Russia. " * 540_000)
    (seeds / "headings.txt").write_text("Only A Heading\nAnother Heading\n", encoding="utf-8")
    outside = tmp_path / "secret.txt"
    outside.write_text("Secret text outside the corpus folder.", encoding="utf-8")
    (seeds / "outside.txt").symlink_to(outside)
    (seeds / "loop.txt").symlink_to(seeds / "loop.txt")
    (seeds / "dangling.txt").symlink_to(seeds / "nowhere.txt")
    os.mkfifo(seeds / "fifo.txt")  # reading it would block forever
    (seeds / "notes.md").write_text("# not an article", encoding="utf-8")
    index = copy_index(built_index.index_dir, tmp_path / "index")
    args = ["--seeds", str(seeds), "--index", str(index)]

    done = qa("index", "--json", "-q", *args, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    got = {f["name"]: (f["status"], f["reason"]) for f in report["files"]}
    expected = {
        "empty.txt": "empty",
        "blank.txt": "empty",
        "binary.txt": "not text (binary data)",
        "latin1.txt": "not UTF-8 (byte 3)",
        "control.txt": "not text (control characters)",
        "huge.txt": "too large (20.5 MB > 2 MB)",
        "headings.txt": "no text besides headings",
        "outside.txt": "symlink pointing outside the corpus folder",
        "loop.txt": "broken or looping symlink",
        "dangling.txt": "broken or looping symlink",
        "fifo.txt": "not a regular file",
        "notes.md": "not a .txt file",
    }
    for name, reason in expected.items():
        assert got.pop(name) == ("skipped", reason), name
    assert set(got.values()) == {("indexed", "")} and len(got) == 5
    assert report["embedded"] == 0  # the five good articles were indexed before

    text = qa("index", "-q", *args, timeout=120)
    assert text.returncode == 0, text.stderr
    lines = {line.split()[0]: line for line in text.stdout.splitlines() if line.strip()}
    for name, reason in expected.items():
        assert lines[name].split()[1] == "skipped" and lines[name].endswith(reason), lines[name]
    s = replace(built_index, index_dir=index, seeds_dir=seeds)
    opened = QAService(s).index()
    assert sorted(opened.documents) == sorted(p.stem for p in built_index.seeds_dir.glob("*.txt"))
    record("bad_files", {name: reason for name, reason in expected.items()})


def test_cli_refuses_undecodable_and_oversized_questions(built_index: Settings) -> None:
    paths = ["--index", str(built_index.index_dir), "--seeds", str(built_index.seeds_dir)]
    undecodable = os.fsdecode(b"Where did \xff\xfe meet?")  # surrogate-escaped, as argv gives it
    for question, words in [
        (undecodable, "unpaired UTF-16 surrogates"),
        ("x" * 5000, "the limit is 1000"),
        (" \t\n\u3000 ", "must not be empty"),
    ]:
        done = qa("ask", *paths, question)
        assert done.returncode == 2, done.stderr
        assert words in one_sentence(done.stderr)
    odd = qa("ask", "--json", *paths, "\u202eWhere did Rubio\u200d meet \U0001f600 Lavrov?\x07")
    assert odd.returncode == 0, odd.stderr
    assert json.loads(odd.stdout)["citations"]
