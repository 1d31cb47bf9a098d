"""The encoders of the model, and the process-wide one `QA_ENCODER` picks (see qa.model)."""

from __future__ import annotations

import threading

from qa.model import ENCODERS, Embedder, configured_encoder


def make_embedder(encoder: str) -> Embedder:
    """A new embedder of the named backend (see ENCODERS)."""
    if encoder == "torch":
        from qa.encoders.reference import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()
    if encoder in ENCODERS:
        from qa.encoders.onnx import OnnxEmbedder

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
