"""The encoders: ONNX vectors match sentence-transformers', the export is checked, and the query
path never imports torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.ask.service import QAService
from qa.chunking import chunk_document, merge_duplicates
from qa.encoders import configured_encoder
from qa.encoders import onnx as onnx_encoder
from qa.encoders.choice import host_encoder
from qa.encoders.onnx import OnnxEmbedder, check_export, ensure_exported
from qa.encoders.reference import SentenceTransformerEmbedder
from qa.errors import IndexUnavailable
from qa.index.build import build_index, read_corpus
from qa.model import ENCODERS, Embedder, bundled_model_path
from qa.settings import Settings
from tests.conftest import SEEDS, FakeEmbedder


@pytest.fixture(scope="module")
def seed_sentences() -> list[str]:
    """Every sentence of the seeds' passages (what the index embeds besides the passages)."""
    docs, _ = read_corpus(SEEDS)
    raw = {d.id: d.raw for d in docs}
    passages = merge_duplicates([p for d in docs for p in chunk_document(d)])
    return sorted({raw[p.doc_id][a:b] for p in passages for a, b in p.sentences})


@pytest.fixture(scope="module")
def reference(seed_sentences: list[str]) -> np.ndarray:
    """sentence-transformers fp32 vectors of the seed sentences."""
    return SentenceTransformerEmbedder().encode(seed_sentences)


@pytest.mark.parametrize(
    ("variant", "floor"), [("onnx", 0.99), ("onnx-fused", 0.99), ("onnx-int8", 0.98)]
)
def test_onnx_vectors_match_sentence_transformers(
    variant: str, floor: float, seed_sentences: list[str], reference: np.ndarray
) -> None:
    vectors = OnnxEmbedder(variant).encode(seed_sentences)
    assert vectors.shape == reference.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = (vectors * reference).sum(axis=1)
    worst = int(np.argmin(cosine))
    assert cosine.min() >= floor, (seed_sentences[worst], float(cosine.min()))


def test_fused_fp32_gives_the_plain_fp32_vectors(seed_sentences: list[str]) -> None:
    plain = OnnxEmbedder("onnx").encode(seed_sentences)
    fused = OnnxEmbedder("onnx-fused").encode(seed_sentences)
    assert np.abs(plain - fused).max() < 1e-4


@pytest.mark.parametrize("variant", ["onnx", "onnx-fused", "onnx-int8"])
def test_one_text_gets_the_vector_it_gets_in_a_batch(
    variant: str, seed_sentences: list[str]
) -> None:
    enc = OnnxEmbedder(variant)
    batch = enc.encode(seed_sentences[:40])
    alone = np.stack([enc.encode([s])[0] for s in seed_sentences[:40]])
    assert np.abs(batch - alone).max() < 1e-4


def test_long_texts_are_truncated_at_256_tokens_like_sentence_transformers() -> None:
    text = " ".join(["diplomacy"] * 600)
    enc = OnnxEmbedder("onnx")
    longer = text + " " + " ".join(["sanctions"] * 200)
    a, b = enc.encode([text, longer])
    assert float(a @ b) > 0.9999  # everything past token 256 is cut off


def test_default_encoder_names_its_backend(embedder: Embedder) -> None:
    # The tests run on fp32 (conftest.py); the product on the variant this host's export
    # measured fastest (tests/test_encoder_choice.py), named the same way.
    assert embedder.name == "all-MiniLM-L6-v2/onnx-fused" and embedder.dim == 384
    assert configured_encoder({}) == host_encoder() and host_encoder() in ENCODERS


def test_configured_encoder_reads_qa_encoder() -> None:
    assert configured_encoder({}) == host_encoder()
    assert configured_encoder({"QA_ENCODER": "torch"}) == "torch"
    assert configured_encoder({"QA_ENCODER": "onnx-int8"}) == "onnx-int8"
    with pytest.raises(ValueError, match="QA_ENCODER"):
        configured_encoder({"QA_ENCODER": "gpu"})


def test_export_is_verified_against_its_hashes(tmp_path: Path) -> None:
    good = ensure_exported("onnx-int8")
    source = Path(bundled_model_path())
    copy = tmp_path / onnx_encoder.MODEL_NAME
    shutil.copytree(good, copy)
    assert check_export(copy, source, "onnx-int8") is None

    with open(copy / onnx_encoder.FILES["onnx-int8"], "ab") as f:
        f.write(b"\0")
    assert "sha256" in (check_export(copy, source, "onnx-int8") or "")
    assert check_export(copy, source, "onnx") is None  # the fp32 file is still intact

    meta = json.loads((copy / "meta.json").read_text())
    meta["source"]["model.safetensors"].update(mtime_ns=1, sha256="0" * 64)
    (copy / "meta.json").write_text(json.dumps(meta))
    assert "weights changed" in (check_export(copy, source, "onnx") or "")

    (copy / "meta.json").unlink()
    assert check_export(copy, source, "onnx") == "not exported yet"


def test_a_build_is_refused_by_another_encoder(tmp_path: Path, embedder: Embedder) -> None:
    index = tmp_path / "index"
    build_index(SEEDS, index, FakeEmbedder())
    service = QAService(Settings.from_env(env={}, seeds_dir=SEEDS, index_dir=index), embedder)
    with pytest.raises(IndexUnavailable, match=rf"fake-bow.*{re.escape(embedder.name)}.*qa index"):
        service.ready()


def test_qa_ask_imports_neither_torch_nor_sentence_transformers(built_index: Settings) -> None:
    code = (
        "import sys\n"
        "from qa.cli import main\n"
        "rc = main(['ask', '--json', '--index', sys.argv[1], 'Where did Rubio and Lavrov meet?'])\n"
        "names = ('torch', 'sentence_transformers', 'transformers')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('MODULES', rc, ','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(built_index.index_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "QA_ENCODER"},
    ).stdout
    marker = out.strip().splitlines()[-1]
    assert marker.split() == ["MODULES", "0"], out[-2000:]  # exit 0, no heavy module
    assert "Malaysia" in out
