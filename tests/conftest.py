"""Shared fixtures: the real bundled model and a real index of seeds/, built once per session.

A tiny deterministic fake embedder is offered for unit tests that need speed, not meaning.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# Tests that pin exact behaviour (the behaviour snapshot, the retrieval oracle, the accepted
# metrics, `qa train`'s weights) hold on every host only with fp32 arithmetic, which is the
# same everywhere; the 8-bit variant a host may serve with is measured against it by
# tests/test_encoder_quality.py, and tests of the host's own choice unset this.
os.environ["QA_ENCODER"] = "onnx-fused"

from qa.ask.service import QAService
from qa.encoders import default_embedder
from qa.index.build import build_index
from qa.model import Embedder
from qa.settings import Settings
from qa.text import words
from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"


class FakeEmbedder:
    """Hashed bag of words: fast, deterministic, and similar texts get similar vectors."""

    name = "fake-bow"
    dim = 64

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in words(t) or ["<empty>"]:
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0
            out[i] /= np.linalg.norm(out[i])
        if progress:
            progress(len(texts))
        return out


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled all-MiniLM-L6-v2."""
    return default_embedder()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A per-test copy of seeds/ that a test may change freely."""
    d = tmp_path / "seeds"
    d.mkdir()
    for p in SEEDS.glob("*.txt"):
        shutil.copy2(p, d / p.name)
    return d


@pytest.fixture(scope="session")
def seeds_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of seeds/ (tests must never touch the real corpus)."""
    d = tmp_path_factory.mktemp("seeds")
    for p in SEEDS.glob("*.txt"):
        shutil.copy2(p, d / p.name)
    return d


@pytest.fixture(scope="session")
def built_index(
    tmp_path_factory: pytest.TempPathFactory, seeds_copy: Path, embedder: Embedder
) -> Settings:
    """Settings pointing at a real index of the seeds, built once with the real model."""
    index_dir = tmp_path_factory.mktemp("index")
    build_index(seeds_copy, index_dir, embedder)
    return Settings.from_env(env={}, seeds_dir=seeds_copy, index_dir=index_dir)


@pytest.fixture(scope="session")
def service(built_index: Settings, embedder: Embedder) -> QAService:
    """A QAService over the session index."""
    svc = QAService(built_index, embedder)
    svc.ready()
    return svc
