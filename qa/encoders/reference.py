"""The reference encoder: all-MiniLM-L6-v2 in fp32 through sentence-transformers (torch)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from qa.model import DIM, MODEL_NAME, bundled_model_path


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 in fp32 on the CPU through sentence-transformers (the reference)."""

    name = MODEL_NAME
    dim = DIM
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
