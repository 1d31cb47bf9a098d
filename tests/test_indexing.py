"""Index builds: reuse of unchanged vectors, atomic publish, bad files, locks, damage detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.errors import IndexUnavailable
from qa.index import builds
from qa.index.build import build_index, read_corpus
from qa.index.loaded import LoadedBuild
from tests.conftest import FakeEmbedder
from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"


def test_build_writes_manifest_and_publishes(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    report = build_index(corpus, index, FakeEmbedder())
    assert builds.current_build_id(index) == report.build_id
    manifest = json.loads((index / "builds" / report.build_id / "manifest.json").read_text())
    assert manifest["model"] == "fake-bow" and manifest["dimension"] == 64
    assert manifest["documents"] == 5 and manifest["passages"] == report.passages
    assert manifest["chunking"]["max_chars"] == 1200
    assert len(manifest["corpus_sha256"]) == 64
    assert [f.status for f in report.files] == ["indexed"] * 5
    assert all(f.passages > 0 and f.tokens > 0 for f in report.files)
    opened = LoadedBuild.open(index, report.build_id)
    assert len(opened.passages) == report.passages == opened.store.count()


def test_unchanged_corpus_embeds_nothing_and_one_change_embeds_one_file(
    corpus: Path, tmp_path: Path
) -> None:
    index = tmp_path / "index"
    emb = FakeEmbedder()
    first = build_index(corpus, index, emb)
    # A fresh build embeds each distinct text once; "reused" only counts the texts it repeats
    # itself (a heading line such as "Conclusion" that opens a passage in two articles).
    assert first.embedded > 0 and sum(emb.calls) == first.embedded
    assert first.reused <= 0.02 * (first.embedded + first.reused)

    second = build_index(corpus, index, emb)
    assert second.embedded == 0 and second.reused == first.embedded + first.reused
    assert second.build_id != first.build_id

    target = corpus / "003_cff1df476ef32d7a.txt"
    target.write_text(
        target.read_text(encoding="utf-8") + "\nA brand new closing line.", encoding="utf-8"
    )
    third = build_index(corpus, index, emb)
    by_file = {f.name: f.embedded for f in third.files}
    assert by_file.pop(target.name) >= 1
    assert set(by_file.values()) == {0}

    (corpus / "004_5ed343157987b097.txt").unlink()
    fourth = build_index(corpus, index, emb)
    opened = LoadedBuild.open(index, fourth.build_id)
    assert "004_5ed343157987b097" not in opened.documents
    assert all(p.doc_id != "004_5ed343157987b097" for p in opened.passages)
    assert fourth.embedded == 0


class ExplodingEmbedder(FakeEmbedder):
    def encode(self, texts, progress=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("model crashed mid-build")


def test_failed_build_leaves_previous_serving(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    good = build_index(corpus, index, FakeEmbedder())
    (corpus / "new.txt").write_text(
        "Fresh heading\nSomething nobody embedded yet.", encoding="utf-8"
    )
    with pytest.raises(RuntimeError, match="crashed"):
        build_index(corpus, index, ExplodingEmbedder())
    assert builds.current_build_id(index) == good.build_id
    LoadedBuild.open(index, good.build_id)  # still opens
    # The next build cleans up the half-written directory and publishes.
    again = build_index(corpus, index, FakeEmbedder())
    assert builds.current_build_id(index) == again.build_id
    assert all((d / "manifest.json").exists() for d in (index / "builds").iterdir())


def test_bad_files_are_skipped_with_reasons(corpus: Path, tmp_path: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "latin.txt").write_bytes("Caf\xe9 society and its d\xe9bats.".encode("latin-1"))
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "headings.txt").write_text("Only A Heading\nAnother Heading\n", encoding="utf-8")
    (corpus / "notes.md").write_text("# not part of the corpus", encoding="utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_text("Secret text outside the corpus.", encoding="utf-8")
    (corpus / "link.txt").symlink_to(outside)
    (corpus / "huge.txt").write_bytes(b"word " * 4_200_000)
    docs, reports = read_corpus(corpus)
    reasons = {r.name: (r.status, r.reason) for r in reports}
    assert reasons["empty.txt"] == ("skipped", "empty")
    assert reasons["latin.txt"][1].startswith("not UTF-8")
    assert (
        reasons["binary.txt"][1].startswith("not UTF-8") or "not text" in reasons["binary.txt"][1]
    )
    assert reasons["headings.txt"] == ("skipped", "no text besides headings")
    assert reasons["notes.md"] == ("skipped", "not a .txt file")
    assert "outside" in reasons["link.txt"][1]
    assert reasons["huge.txt"][1].startswith("too large")
    assert len(docs) == 5


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    with pytest.raises(IndexUnavailable, match=r"no \.txt article"):
        build_index(tmp_path / "seeds", tmp_path / "index", FakeEmbedder())
    with pytest.raises(IndexUnavailable, match="does not exist"):
        build_index(tmp_path / "nope", tmp_path / "index", FakeEmbedder())


def test_damaged_builds_are_reported_not_raised_raw(corpus: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    report = build_index(corpus, index, FakeEmbedder())
    files = builds.build_files(index, report.build_id)
    np.save(files.vectors, np.zeros((3, 64), dtype=np.float32))
    with pytest.raises(IndexUnavailable, match="damaged"):
        LoadedBuild.open(index, report.build_id)
    files.manifest.unlink()
    with pytest.raises(IndexUnavailable, match="incomplete"):
        LoadedBuild.open(index, report.build_id)
    (index / "CURRENT").write_text("garbage\n")
    with pytest.raises(IndexUnavailable, match="run `qa index`"):
        builds.current_build_id(index)
    # A rebuild repairs it.
    fixed = build_index(corpus, index, FakeEmbedder())
    assert builds.current_build_id(index) == fixed.build_id


def test_second_build_refuses_while_the_lock_is_held(tmp_path: Path) -> None:
    with (
        builds.build_lock(tmp_path),
        pytest.raises(IndexUnavailable, match="another"),
        builds.build_lock(tmp_path, wait=False),
    ):
        pass


def test_current_watcher_sees_every_change_and_reads_only_on_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    watcher = builds.CurrentWatcher(index)
    assert watcher.build_id() is None  # nothing published
    reads = []
    real = builds.current_build_id
    monkeypatch.setattr(builds, "current_build_id", lambda d: reads.append(d) or real(d))

    def publish(build_id: str) -> None:  # what `publish` does: a new file renamed over CURRENT
        (index / ".CURRENT.tmp").write_text(build_id + "\n", encoding="utf-8")
        (index / ".CURRENT.tmp").replace(index / builds.CURRENT)

    publish("20260101T000000-aaaaaa")
    assert [watcher.build_id() for _ in range(5)] == ["20260101T000000-aaaaaa"] * 5
    assert len(reads) == 1  # four of five answered by one stat
    publish("20260101T000001-bbbbbb")
    assert watcher.build_id() == "20260101T000001-bbbbbb"
    # Written in place (same inode, same size): the new mtime gives it away.
    current = index / builds.CURRENT
    st = current.stat()
    current.write_text("20260101T000002-cccccc\n", encoding="utf-8")
    os.utime(current, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert watcher.build_id() == "20260101T000002-cccccc"
    current.write_text("not a build\n", encoding="utf-8")
    for _ in range(2):  # a corrupt CURRENT is reported every time, never cached as good
        with pytest.raises(IndexUnavailable, match="does not name a build"):
            watcher.build_id()
    current.unlink()
    assert watcher.build_id() is None
    publish("20260101T000003-dddddd")
    assert watcher.build_id() == "20260101T000003-dddddd"


def test_a_build_of_another_chunker_version_serves_with_a_warning(
    corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from qa.ask.service import QAService
    from qa.chunking import CHUNKER_VERSION, ChunkSettings
    from qa.settings import Settings

    index = tmp_path / "index"
    emb = FakeEmbedder()
    build_index(corpus, index, emb, chunk_settings=ChunkSettings(version=CHUNKER_VERSION - 1))
    service = QAService(Settings(seeds_dir=corpus, index_dir=index), embedder=emb)
    try:
        with caplog.at_level("WARNING", logger="qa.ask.service"):
            answer = service.ask("Where did Rubio and Lavrov meet?")
        assert answer.citations  # it still answers
        assert any(
            "chunker version" in r.getMessage() and "qa index" in r.getMessage()
            for r in caplog.records
        )
    finally:
        service.close()


def _qa_index(corpus: Path, index: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`qa index` in a process of its own, its stderr a pipe (no terminal)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "qa",
            "index",
            *flags,
            "--seeds",
            str(corpus),
            "--index",
            str(index),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_qa_index_into_a_log_file_writes_lines_not_bars(corpus: Path, tmp_path: Path) -> None:
    # `make run > log`: stderr is no terminal, so no carriage returns or escape sequences.
    index = tmp_path / "index"
    done = _qa_index(corpus, index)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines()]
    embedding = [line for line in lines if line.startswith("embedding: ")]
    assert embedding and embedding[-1].split(": ")[1].split("/")[0] == embedding[-1].split("/")[1]
    # `make run`'s `qa index --if-missing`: a published index is served as it is.
    published = builds.current_build_id(index)
    again = _qa_index(corpus, index, "--if-missing")
    assert again.returncode == 0 and f"already serves build {published}" in again.stderr
    assert [d.name for d in builds.builds_dir(index).iterdir()] == [published]
