"""Build an index: corpus -> passages -> vectors + BM25 -> a new build directory -> publish.

A build is written into a fresh directory and published by one atomic rename of CURRENT, so a
build that fails or is killed leaves the previous one serving. Vectors of passages (and
sentences) whose text is unchanged are copied from the serving build instead of re-embedded.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from qa.chunking import (
    ChunkSettings,
    Passage,
    chunk_document,
    lexical_text,
    merge_duplicates,
    sentence_texts,
)
from qa.corpus import Document, FileReport, read_corpus
from qa.errors import IndexUnavailable
from qa.index import builds
from qa.index.lexical import LexicalIndex
from qa.index.store import VectorStore
from qa.model import Embedder


@dataclass
class BuildReport:
    """The outcome of `build_index`."""

    build_id: str
    files: list[FileReport] = field(default_factory=list)
    passages: int = 0
    embedded: int = 0
    reused: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


Progress = Callable[[str, int, int], None]


def progress_lines(err: TextIO) -> Progress:
    """Progress as a line per quarter of each stage, not a bar: readable in a terminal and in a
    log file alike (a bar's carriage returns and escapes are noise in a file)."""
    shown: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        quarter = 4 if total == 0 else (4 * done) // total
        if shown.get(stage) != quarter:
            shown[stage] = quarter
            print(f"  {stage}: {done}/{total}", file=err, flush=True)

    return progress


def _noop(stage: str, done: int, total: int) -> None:
    pass


def _pause_for_tests(progress: Progress) -> Progress:
    """Test hook (tests/test_faults.py), inert unless QA_TEST_PAUSE_AT is "stage:n": at the
    first progress report of `stage` with done >= n, write "stage done/total" to the file
    QA_TEST_PAUSE_FILE and wait there, so the test SIGKILLs the build at a known point."""
    import os

    stage, _, n = os.environ.get("QA_TEST_PAUSE_AT", "").partition(":")
    if not stage:
        return progress

    def paused(s: str, done: int, total: int) -> None:
        progress(s, done, total)
        if s == stage and done >= int(n or 0):
            Path(os.environ["QA_TEST_PAUSE_FILE"]).write_text(f"{s} {done}/{total}\n")
            while True:
                time.sleep(3600)

    return paused


def corpus_hash(docs: list[Document]) -> str:
    """One hash for the whole corpus: ids and file hashes, in order."""
    h = hashlib.sha256()
    for d in sorted(docs, key=lambda d: d.id):
        h.update(f"{d.id}\x00{d.sha256}\n".encode())
    return h.hexdigest()


def _previous_vectors(index_dir: Path, model: str) -> dict[str, np.ndarray]:
    """content key -> vector from the serving build (empty when unusable or another model)."""
    try:
        build_id = builds.current_build_id(index_dir)
        if build_id is None:
            return {}
        files = builds.build_files(index_dir, build_id)
        manifest = builds.read_manifest(files)
        if manifest.get("model") != model:
            return {}
        keys = json.loads((files.root / "keys.json").read_text(encoding="utf-8"))
        vectors = np.concatenate(
            [builds.read_vectors(files.vectors), builds.read_vectors(files.sentence_vectors)]
        )
        if len(keys) != len(vectors):
            return {}
        return dict(zip(keys, vectors, strict=True))
    except (IndexUnavailable, OSError, ValueError):
        return {}


def _key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    chunk_settings: ChunkSettings | None = None,
    chroma_url: str = "",
    progress: Progress = _noop,
) -> BuildReport:
    """Build a new index of `seeds_dir` and publish it. Holds the index lock throughout.

    The steps: read the corpus, cut it into passages, embed what the serving build has not
    embedded yet, write the build's files and its vector store, then publish it with one
    atomic switch of CURRENT.
    """
    chunk_settings = chunk_settings or ChunkSettings()
    progress = _pause_for_tests(progress)
    t0 = time.perf_counter()
    with builds.build_lock(index_dir):
        previous_id = builds.current_build_id_or_none(index_dir)
        docs, reports = _usable_corpus(seeds_dir)
        passages = _passages(docs, reports, chunk_settings)
        build_id = builds.new_build_id()
        report = BuildReport(build_id=build_id, files=reports, passages=len(passages))
        files = builds.build_files(index_dir, build_id)
        try:
            files.root.mkdir(parents=True)
            doc_by_id = {d.id: d for d in docs}
            texts = [p.search_text for p in passages] + [
                t for p in passages for t in sentence_texts(doc_by_id[p.doc_id], p)
            ]
            keys = [_key(embedder.name, t) for t in texts]
            vectors, fresh = _embed_new(texts, keys, index_dir, embedder, report, progress)
            _count_embedded(report, passages, doc_by_id, fresh)
            _write_files(files, docs, passages, vectors, keys, progress)
            _write_store(files, build_id, vectors[: len(passages)], chroma_url, progress)
            builds.write_json(
                files.manifest,
                {
                    "build_id": build_id,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "model": embedder.name,
                    "dimension": embedder.dim,
                    "documents": len(docs),
                    "passages": len(passages),
                    "sentences": len(texts) - len(passages),
                    "tokens": sum(p.tokens for p in passages),
                    "corpus_sha256": corpus_hash(docs),
                    "seeds_dir": str(seeds_dir.resolve()),
                    "store": chroma_url or "embedded",
                    "chunking": asdict(chunk_settings),
                    "previous": previous_id,
                },
            )
            builds.publish(index_dir, build_id)
        except BaseException as exc:
            # Nothing of a failed build stays behind (a full disk gets its space back), and
            # CURRENT still names the previous build, which keeps serving.
            shutil.rmtree(files.root, ignore_errors=True)
            _raise_one_sentence(exc, previous_id)
            raise
        if chroma_url:  # also the collections of killed builds
            _drop_old_collections(index_dir, chroma_url, keep={build_id, previous_id or build_id})
        builds.remove_old_builds(index_dir)
    report.seconds = time.perf_counter() - t0
    return report


def _raise_one_sentence(exc: BaseException, previous_id: str | None) -> None:
    """A build that failed on the disk (full, read-only, ...) as one IndexUnavailable sentence
    that names the cause; any other failure is left as it is."""
    serving = f"build {previous_id} still serves" if previous_id else "nothing was published"
    text = str(exc)
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or any(
        s in text.lower() for s in ("no space left", "disk is full")
    ):
        raise IndexUnavailable(
            f"the disk is full: the new build could not be written and was removed ({serving}); "
            "free some space and run `qa index` again"
        ) from exc
    if isinstance(exc, OSError) and not isinstance(exc, IndexUnavailable):
        where = f" ({exc.filename})" if exc.filename else ""
        raise IndexUnavailable(
            f"the new build could not be written: {exc.strerror or exc}{where} ({serving}); "
            "fix that and run `qa index` again"
        ) from exc


def _usable_corpus(seeds_dir: Path) -> tuple[list[Document], list[FileReport]]:
    """The corpus's documents and file reports; IndexUnavailable when no file is usable."""
    docs, reports = read_corpus(seeds_dir)
    if not docs:
        raise IndexUnavailable(
            f"no usable article in {seeds_dir}: "
            + "; ".join(f"{r.name}: {r.reason}" for r in reports)
            if reports
            else f"no .txt article in {seeds_dir}"
        )
    return docs, reports


def _passages(
    docs: list[Document], reports: list[FileReport], chunk_settings: ChunkSettings
) -> list[Passage]:
    """Every document's passages, duplicates merged; counts go into the file reports."""
    by_name = {r.name: r for r in reports}
    all_passages: list[Passage] = []
    for d in docs:
        ps = chunk_document(d, chunk_settings)
        by_name[Path(d.path).name].passages = len(ps)
        by_name[Path(d.path).name].tokens = sum(p.tokens for p in ps)
        all_passages.extend(ps)
    return merge_duplicates(all_passages)


def _embed_new(
    texts: list[str],
    keys: list[str],
    index_dir: Path,
    embedder: Embedder,
    report: BuildReport,
    progress: Progress,
) -> tuple[np.ndarray, set[int]]:
    """A vector for every text: copied from the serving build when it has the same text
    embedded by the same model, else embedded now (with progress); and which texts were."""
    known = _previous_vectors(index_dir, embedder.name)
    todo = sorted({k: i for i, k in reversed(list(enumerate(keys))) if k not in known}.values())
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        if k in known:
            vectors[i] = known[k]
    t_enc = time.perf_counter()
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        progress("embedding", done, len(todo))

    progress("embedding", 0, len(todo))
    if todo:
        fresh = embedder.encode([texts[i] for i in todo], progress=tick)
        fresh_by_key = {keys[i]: fresh[j] for j, i in enumerate(todo)}
        for i, k in enumerate(keys):
            if k in fresh_by_key:
                vectors[i] = fresh_by_key[k]
    report.encode_seconds = time.perf_counter() - t_enc
    report.embedded = len(todo)
    report.reused = len(texts) - len(todo)
    return vectors, set(todo)


def _write_files(
    files: builds.BuildFiles,
    docs: list[Document],
    passages: list[Passage],
    vectors: np.ndarray,
    keys: list[str],
    progress: Progress,
) -> None:
    """The build's own files: vectors, their content keys, passages, documents, BM25."""
    n = len(passages)
    doc_by_id = {d.id: d for d in docs}
    progress("writing", 0, 3)
    np.save(files.vectors, vectors[:n])
    np.save(files.sentence_vectors, vectors[n:])
    (files.root / "keys.json").write_text(json.dumps(keys), encoding="utf-8")
    with open(files.passages, "w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps(builds.passage_to_json(p), ensure_ascii=False) + "\n")
    builds.write_json(files.documents, [builds.document_to_json(d) for d in docs])
    progress("writing", 1, 3)
    LexicalIndex.build([lexical_text(p, doc_by_id[p.doc_id]) for p in passages]).save(files.bm25)
    progress("writing", 2, 3)


def _write_store(
    files: builds.BuildFiles,
    build_id: str,
    vectors: np.ndarray,
    chroma_url: str,
    progress: Progress,
) -> None:
    """The build's vector store (embedded in the build folder, or a collection on a server)."""
    store = VectorStore.create(None if chroma_url else files.chroma, build_id, chroma_url)
    try:  # closed when written: a serving process that built must not keep this client open
        store.add(vectors)
        if store.count() != len(vectors):
            raise IndexUnavailable(
                f"the vector store holds {store.count()} of {len(vectors)} vectors"
            )
    finally:
        store.close()
    progress("writing", 3, 3)


def _count_embedded(
    report: BuildReport,
    passages: list[Passage],
    doc_by_id: dict[str, Document],
    todo: set[int],
) -> None:
    """Attribute freshly embedded passages to their files, for the per-file report."""
    by_name = {r.name: r for r in report.files}
    for r in report.files:
        r.embedded = 0
    for i, p in enumerate(passages):
        if i in todo:
            by_name[Path(doc_by_id[p.doc_id].path).name].embedded += 1


def _drop_old_collections(index_dir: Path, url: str, keep: set[str]) -> None:
    root = builds.builds_dir(index_dir)
    for d in root.iterdir() if root.is_dir() else []:
        if d.name not in keep:
            VectorStore.drop(None, d.name, url)
