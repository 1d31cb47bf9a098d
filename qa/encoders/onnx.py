"""The bundled all-MiniLM-L6-v2 as ONNX, run by onnxruntime: the encoder without torch.

The ONNX files are exported once from the bundled weights (this needs torch, so it happens at
index time or in `make`'s set-up) into a cache folder beside the virtual environment:

    <venv>/share/qa-models/all-MiniLM-L6-v2.v4/   (the export's version: see `model_dir`)
        model.onnx         fp32: BertModel + mean pooling over the attention mask + L2 norm
        model-fused.onnx   the same in fp32, attention, layer norms and GELU fused (see `fuse`)
        model-int8.onnx    the same with 8-bit weights (blocks of 32, see `quantize`)
        tokenizer.json     the bundled tokenizer
        meta.json          sha256 of every file above and of the weights they came from, and
                           the variant measured fastest on this host (qa.encoders.choice)

Loading checks the files against meta.json and meta.json against the bundled weights, so a
damaged or stale export is redone rather than used. Loading imports neither torch nor
sentence_transformers: `qa ask` starts in a fraction of the time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import EncoderUnavailable
from qa.filelock import locked
from qa.model import DIM, MODEL_NAME, bundled_model_path

# sentence-transformers' max_seq_length for this model (sentence_bert_config.json).
MAX_TOKENS = 256
BATCH_SIZE = 32
# Bump when the export or the quantisation changes: the cache is redone.
EXPORT_VERSION = 4
# 32: as fast as 16 plus ~0.15 ms a question, no more questions moved; 64 flips an
# answerability decision on the dev sets (see the README's variant table).
INT8_BLOCK = 32
FILES = {"onnx": "model.onnx", "onnx-fused": "model-fused.onnx", "onnx-int8": "model-int8.onnx"}
SOURCE_FILES = ("model.safetensors", "config.json", "tokenizer.json")


def cache_root() -> Path:
    """Folder of exported models: beside the virtual environment, else the user's cache."""
    venv_share = Path(sys.prefix) / "share" / "qa-models"
    if os.access(venv_share if venv_share.exists() else Path(sys.prefix), os.W_OK):
        return venv_share
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "qa" / "models"


def model_dir(root: Path | None = None) -> Path:
    """Where the exported files of the bundled model live.

    The folder is named with the export's version, so two checkouts of different versions
    sharing one virtual environment each keep their own export instead of redoing each
    other's on every start.
    """
    return (root or cache_root()) / f"{MODEL_NAME}.v{EXPORT_VERSION}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_facts(source: Path) -> dict[str, dict[str, Any]]:
    """size, mtime and sha256 of each weight file the export is made from."""
    out = {}
    for name in SOURCE_FILES:
        p = source / name
        st = p.stat()
        out[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(p)}
    return out


def _source_unchanged(source: Path, recorded: dict[str, dict[str, Any]]) -> bool:
    """True when the bundled weights are the ones the export was made from.

    Hashing 90 MB on every start would cost more than loading the model, so a file whose size
    and mtime are unchanged is trusted; any other is hashed.
    """
    for name in SOURCE_FILES:
        rec = recorded.get(name)
        p = source / name
        try:
            st = p.stat()
        except OSError:
            return False
        if rec is None:
            return False
        if (st.st_size, st.st_mtime_ns) == (rec["size"], rec["mtime_ns"]):
            continue
        if _sha256(p) != rec["sha256"]:
            return False
    return True


def read_meta(folder: Path) -> dict[str, Any]:
    """The export's meta.json (FileNotFoundError, OSError or ValueError when unusable)."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("meta.json is not an object")
    return meta


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Replace the export's meta.json atomically."""
    tmp = folder / ".meta.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(folder / "meta.json")


def check_export(folder: Path, source: Path, variant: str) -> str | None:
    """Why the export in `folder` cannot serve `variant` (None when it can)."""
    try:
        meta = read_meta(folder)
    except FileNotFoundError:
        return "not exported yet"
    except (OSError, ValueError) as exc:
        return f"unreadable meta.json ({exc})"
    if meta.get("version") != EXPORT_VERSION:
        return f"exported by version {meta.get('version')}, this is {EXPORT_VERSION}"
    if not _source_unchanged(source, meta.get("source", {})):
        return "the bundled weights changed since the export"
    for name in (FILES[variant], "tokenizer.json"):
        p = folder / name
        if not p.is_file():
            return f"{name} is missing"
        if _sha256(p) != meta.get("files", {}).get(name):
            return f"{name} does not match its recorded sha256"
    return None


def export_onnx(source: Path, out: Path, attention: str | None = None) -> None:
    """Export the weights in `source` to `out` as fp32 ONNX with pooling and normalisation.

    The graph computes exactly what sentence-transformers' pipeline for this model does:
    BertModel, mean of the token vectors weighted by the attention mask, L2 normalisation.
    `attention` picks transformers' attention implementation (None: its default, sdpa);
    "eager" traces to the plain pattern onnxruntime's optimiser knows how to fuse.
    """
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs = {} if attention is None else {"attn_implementation": attention}
    bert = AutoModel.from_pretrained(str(source), **kwargs).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            # BertModel must be called with keywords: positional order differs across versions.
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches
        torch.onnx.export(
            Pooled(bert),
            (ids, torch.ones_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,  # the dynamo exporter needs onnxscript and mis-traces this model
        )


def fuse(source: Path, eager: Path, out: Path) -> dict[str, int]:
    """`eager` (an fp32 export with eager attention) with its operators fused, saved as `out`.

    onnxruntime's transformer optimiser (offline, so every host loads the fused graph) turns
    each layer's attention into one Attention node, embeddings plus their layer norm into
    EmbedLayerNormalization, residual adds plus layer norms into SkipLayerNormalization and
    bias plus GELU into BiasGelu. The arithmetic stays fp32: vectors equal the plain export's
    to 1e-6 and `qa eval` gives identical figures. Returns the count of each fused operator.
    """
    import logging

    from onnxruntime.transformers import optimizer

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    logging.disable(logging.WARNING)  # the optimiser reports every pass
    try:
        model = optimizer.optimize_model(
            str(eager),
            model_type="bert",
            num_heads=int(config["num_attention_heads"]),
            hidden_size=int(config["hidden_size"]),
            opt_level=0,  # only the fusions; onnxruntime applies its own passes when loading
        )
        fused = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    finally:
        logging.disable(logging.NOTSET)
    model.save_model_to_file(str(out), use_external_data_format=False)
    return fused


def quantize(fp32: Path, out: Path) -> None:
    """8-bit weights in blocks of INT8_BLOCK along the input axis, each with its own scale.

    Weight-only: every MatMul becomes a MatMulNBits whose activations are quantised per block
    of each row at run time (accuracy level 4, int8 dot products), so a text's vector does
    not depend on the other texts of its batch. A question reads a quarter of the weight
    bytes: with VNNI it takes ~55% of the fp32 time, on an AVX2-only CPU longer than fp32.
    Cosine to fp32 is >= 0.9995 and `qa eval` on the dev sets stays within 0.01 of fp32
    (qa.encoders.choice.QUALITY), so a host where it is fastest serves with it.
    onnxruntime's dynamic int8 (`quantize_dynamic`) is faster still but flips answerability
    decisions, per channel and with the sensitive layers kept in fp32 too (see the README).
    """
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(
        block_size=INT8_BLOCK, is_symmetric=True, accuracy_level=4, bits=8
    )
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(fp32)),
        bits=8,
        block_size=INT8_BLOCK,
        is_symmetric=True,
        accuracy_level=4,
        algo_config=config,
    )
    logging.disable(logging.INFO)  # one line per graph node otherwise
    try:
        quantizer.process()
    finally:
        logging.disable(logging.NOTSET)
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)


def export(
    source: Path, folder: Path, choose: Callable[[Path], dict[str, Any]] | None = None
) -> None:
    """Export every variant with the tokenizer into `folder` (replaced atomically).

    With `choose` (qa.encoders.choice), before the folder is published the variants that
    qualify are timed on this host and the fastest is recorded in meta.json as the default
    encoder of builds made here.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        # The quantiser may write scratch files into the working directory: keep them in tmp.
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            export_onnx(source, tmp / FILES["onnx"])
            export_onnx(source, tmp / "eager.onnx", attention="eager")
            fused = fuse(source, tmp / "eager.onnx", tmp / FILES["onnx-fused"])
            quantize(tmp / FILES["onnx"], tmp / FILES["onnx-int8"])
        finally:
            os.chdir(cwd)
        shutil.copy2(source / "tokenizer.json", tmp / "tokenizer.json")
        meta = {
            "version": EXPORT_VERSION,
            "model": MODEL_NAME,
            "source": _source_facts(source),
            "files": {name: _sha256(tmp / name) for name in (*FILES.values(), "tokenizer.json")},
            "fused_operators": fused,
        }
        for p in tmp.iterdir():
            if p.name not in meta["files"]:
                p.unlink() if p.is_file() else shutil.rmtree(p)
        if choose is not None:
            meta["choice"] = choose(tmp)
        write_meta(tmp, meta)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_exported(
    variant: str = "onnx",
    root: Path | None = None,
    choose: Callable[[Path], dict[str, Any]] | None = None,
) -> Path:
    """The folder holding a verified export for `variant`, exporting it first if needed (and
    then recording the host's choice of variant with `choose`, when given)."""
    if variant not in FILES:
        raise EncoderUnavailable(f"unknown ONNX variant {variant!r}; use one of {sorted(FILES)}")
    source = Path(bundled_model_path())
    folder = model_dir(root)
    if check_export(folder, source, variant) is None:
        return folder
    with locked(folder.parent / ".export.lock"):
        problem = check_export(folder, source, variant)  # another process may have done it
        if problem is None:
            return folder
        try:
            export(source, folder, choose)
        except ImportError as exc:
            raise EncoderUnavailable(
                f"the ONNX model in {folder} is unusable ({problem}) and exporting it needs "
                f"torch, transformers and onnx: {exc}"
            ) from exc
        problem = check_export(folder, source, variant)
        if problem is not None:
            raise EncoderUnavailable(f"exported the ONNX model to {folder}, but {problem}")
    return folder


def open_session(path: Path, threads: int, *, spin: bool = True) -> Any:
    """An onnxruntime CPU session on `threads` intra-op threads.

    `spin=False` puts the intra-op threads to sleep as soon as a run ends, instead of
    spinning for more work: right for a session that runs now and then beside others.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_tokenizer(folder: Path, max_tokens: int = MAX_TOKENS) -> Any:
    """The tokenizer in `folder`, padding to the longest text and truncating at `max_tokens`.

    The export's bundled tokenizer.json pads everything to 128 and truncates there; the model
    was trained and is run by sentence-transformers with padding to the longest text and
    truncation at 256 (MAX_TOKENS).
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def model_inputs(
    tokenizer: Any, texts: Sequence[str] | Sequence[tuple[str, str]], *, type_ids: bool = False
) -> dict[str, np.ndarray]:
    """Token ids and attention mask of `texts` (or of text pairs), padded to the longest;
    with `type_ids`, also which text of its pair each token comes from."""
    encodings = tokenizer.encode_batch(list(texts))
    width = max(len(e.ids) for e in encodings)
    names = ("input_ids", "attention_mask", "token_type_ids")[: 3 if type_ids else 2]
    inputs = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in names}
    for i, e in enumerate(encodings):
        inputs["input_ids"][i, : len(e.ids)] = e.ids
        inputs["attention_mask"][i, : len(e.ids)] = 1
        if type_ids:
            inputs["token_type_ids"][i, : len(e.ids)] = e.type_ids
    return inputs


class OnnxEmbedder:
    """all-MiniLM-L6-v2 through onnxruntime; vectors match sentence-transformers' fp32 ones.

    A single text (a question) runs on one thread: with two threads on two cores, one other
    busy process multiplies the tail latency, and the web server already runs one question per
    thread. (A question embedded alone on both cores cut `QAService.ask` p50 by a quarter, but
    then one client already used both cores and 8 clients served 0.95 times its requests/s:
    bar 2b wants 1.3.) Batches (index builds) use every core.
    """

    dim = DIM

    def __init__(self, variant: str = "onnx", root: Path | None = None) -> None:
        folder = ensure_exported(variant, root)
        self.variant = variant
        self.name = f"{MODEL_NAME}/{variant}"
        self.path = folder / FILES[variant]
        self._query = open_session(self.path, 1)
        self._bulk: Any = None
        self._bulk_lock = threading.Lock()
        self._tokenizer = load_tokenizer(folder)

    def _bulk_session(self) -> Any:
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = open_session(self.path, os.cpu_count() or 1)
            return self._bulk

    def _run(self, session: Any, texts: Sequence[str]) -> np.ndarray:
        out = session.run(None, model_inputs(self._tokenizer, texts))[0]
        return np.asarray(out, dtype=np.float32)

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed `texts` (L2-normalised rows), calling `progress(n)` after each batch."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 1:
            out[0] = self._run(self._query, texts)[0]
            if progress:
                progress(1)
            return out
        session = self._bulk_session() if texts else None
        # Batches of similar length waste no work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for a in range(0, len(order), BATCH_SIZE):
            rows = order[a : a + BATCH_SIZE]
            out[rows] = self._run(session, [texts[i] for i in rows])
            if progress:
                progress(len(rows))
        return out
