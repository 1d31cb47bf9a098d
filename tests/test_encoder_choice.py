"""The default encoder is chosen by measurement on the host; repeated questions skip the model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.ask.service import QAService
from qa.bench import report
from qa.encoders import QueryCache, configured_encoder, default_embedder, query_cache_size
from qa.encoders import choice as encoder_choice
from qa.encoders.onnx import FILES, model_dir, read_meta
from qa.index.build import build_index
from qa.model import ENCODERS, FALLBACK_ENCODER
from qa.settings import Settings
from tests.conftest import SEEDS, FakeEmbedder

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 fma bmi2\n"
AVX512_VNNI = "flags\t\t: avx avx2 avx512f avx512bw avx512_vnni avx_vnni\n"


def test_cpu_features_come_from_the_flags_line() -> None:
    assert encoder_choice.cpu_features(AVX2_ONLY) == {"avx2": True, "avx512": False, "vnni": False}
    assert encoder_choice.cpu_features(AVX512_VNNI) == {"avx2": True, "avx512": True, "vnni": True}
    assert encoder_choice.cpu_features("") == {"avx2": False, "avx512": False, "vnni": False}
    described = encoder_choice.describe_cpu(encoder_choice.cpu_features(AVX2_ONLY))
    assert described == "AVX2 yes, AVX-512 no, VNNI no"


def test_only_variants_within_001_of_fp32_qualify() -> None:
    assert set(encoder_choice.QUALITY) == set(FILES)  # every exported variant was measured
    assert set(encoder_choice.qualifying()) == {"onnx", "onnx-fused", "onnx-int8"}
    # A variant measured off by more than the limit is never a host's choice.
    off = encoder_choice.Quality(0.02, "made up for the test")
    assert not off.qualifies and encoder_choice.Quality(0.01, "at the limit").qualifies
    assert FALLBACK_ENCODER in encoder_choice.qualifying()
    assert encoder_choice.fastest({"onnx": 5.0, "onnx-fused": 4.2}) == "onnx-fused"
    assert encoder_choice.fastest({"onnx": 4.0, "onnx-fused": 4.2}) == "onnx"


def test_the_export_records_the_fastest_qualifying_variant_of_this_host(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("QA_ENCODER")  # the host's own choice, not the tests' fp32
    default_embedder()  # makes the export if there is none
    meta = read_meta(model_dir())
    chosen = meta["choice"]
    assert chosen["encoder"] in encoder_choice.qualifying()
    assert set(chosen["ms_p50"]) <= set(encoder_choice.qualifying())
    assert chosen["encoder"] == encoder_choice.fastest(chosen["ms_p50"])
    assert chosen["cpu"] == encoder_choice.cpu_features()
    assert meta["fused_operators"].get("Attention") == 6  # one per layer: the fusion happened
    assert configured_encoder({}) == chosen["encoder"] == encoder_choice.host_encoder()
    assert default_embedder().name == f"all-MiniLM-L6-v2/{chosen['encoder']}"
    assert configured_encoder({"QA_ENCODER": "onnx-int8"}) == "onnx-int8"  # still overrides
    assert "default encoder: " in encoder_choice.describe_choice(chosen)


def test_timing_compares_the_variants_on_this_host() -> None:
    timed = encoder_choice.time_variants(model_dir(), ("onnx", "onnx-fused"), rounds=1)
    assert set(timed["ms_p50"]) == {"onnx", "onnx-fused"} and not timed["refused"]
    assert all(0 < ms < 1000 for ms in timed["ms_p50"].values())


def test_a_choice_made_among_other_candidates_is_measured_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    default_embedder()
    meta = read_meta(model_dir())
    assert meta["choice"]["candidates"] == list(encoder_choice.qualifying())
    assert not encoder_choice._stale(meta["choice"])
    older = {k: v for k, v in meta["choice"].items() if k != "candidates"}
    assert encoder_choice._stale(older)  # recorded before this release's table
    assert encoder_choice._stale({**older, "candidates": ["onnx", "onnx-fused"]})
    assert encoder_choice._stale(None)


def test_a_build_keeps_the_encoder_that_made_it_when_none_is_named(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from qa.encoders import shared_embedder
    from qa.errors import IndexUnavailable

    monkeypatch.delenv("QA_ENCODER", raising=False)
    other = next(v for v in FILES if v != configured_encoder({}))  # not this host's choice
    settings = Settings.from_env({}, seeds_dir=SEEDS, index_dir=tmp_path / "index")
    build_index(SEEDS, settings.index_dir, shared_embedder(other))
    service = QAService(settings)
    try:
        answer = service.ask("Where did Rubio and Lavrov meet?")
        assert answer.citations and service.embedder.name == f"all-MiniLM-L6-v2/{other}"
    finally:
        service.close()
    # Named explicitly, by the caller or by QA_ENCODER, the encoder must match the build.
    named = QAService(settings, default_embedder())
    with pytest.raises(IndexUnavailable, match="run `qa index` to rebuild"):
        named.ask("Where did Rubio and Lavrov meet?")
    monkeypatch.setenv("QA_ENCODER", configured_encoder({}))
    with pytest.raises(IndexUnavailable, match="run `qa index` to rebuild"):
        QAService(settings).ask("Where did Rubio and Lavrov meet?")


def test_a_missing_choice_falls_back_to_fp32(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(encoder_choice, "recorded_choice", lambda root=None: None)
    assert encoder_choice.host_encoder() == FALLBACK_ENCODER == "onnx"
    monkeypatch.setattr(encoder_choice, "recorded_choice", lambda root=None: {"encoder": "x"})
    assert encoder_choice.host_encoder() == "onnx"
    assert "no measured choice" in encoder_choice.describe_choice(None)
    assert set(ENCODERS) >= set(FILES)


def test_bench_report_states_the_cpu_features_and_the_choice() -> None:
    result = {
        "cpu_features": {"avx2": True, "avx512": False, "vnni": False},
        "encoder": "all-MiniLM-L6-v2/onnx-fused",
        "encoder_choice": {"encoder": "onnx-fused", "ms_p50": {"onnx": 9.3, "onnx-fused": 7.1}},
        "ask_new_question_ms": {"p50": 8.0, "p95": 9.0, "n": 4},
        "ask_repeated_question_ms": {"p50": 2.0, "p95": 3.0, "n": 4},
    }
    text = report.render_markdown(result)
    assert "AVX2 yes, AVX-512 no, VNNI no" in text
    assert "onnx-fused 7.10 ms" in text
    assert "p50 2.00" in text


# --- the query cache ------------------------------------------------------------------------


class Counting:
    """FakeEmbedder that counts the texts it embeds, optionally slowly."""

    def __init__(self) -> None:
        self.fake = FakeEmbedder()
        self.name, self.dim = "counting", self.fake.dim
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        with self._lock:
            self.texts += list(texts)
        return self.fake.encode(texts, progress)


def test_cache_hit_and_miss() -> None:
    inner = Counting()
    cache = QueryCache(inner, size=4)
    a = cache.encode(["Where did they meet?"])
    b = cache.encode(["Where did they meet?"])
    assert inner.texts == ["Where did they meet?"]  # the second came from the cache
    assert np.array_equal(a, b) and b.shape == (1, inner.dim) and b.dtype == np.float32
    b[0, 0] = 99.0  # the caller's copy, not the cached vector
    assert cache.encode(["Where did they meet?"])[0, 0] != 99.0
    cache.encode(["where did they meet?"])  # keyed by the exact text: another miss
    assert (cache.hits, cache.misses) == (2, 2) and len(inner.texts) == 2
    done: list[int] = []
    cache.encode(["Where did they meet?"], done.append)
    assert done == [1]  # progress is reported on a hit too


def test_batches_pass_through_uncached() -> None:
    inner = Counting()
    cache = QueryCache(inner, size=4)
    texts = ["one", "two", "three"]
    assert np.array_equal(cache.encode(texts), inner.fake.encode(texts))
    cache.encode(texts)
    assert len(cache) == 0 and inner.texts == texts * 2
    assert cache.name == "counting" and cache.dim == inner.dim


def test_cache_is_bounded_least_recently_used_first() -> None:
    inner = Counting()
    cache = QueryCache(inner, size=3)
    for t in ("a", "b", "c"):
        cache.encode([t])
    cache.encode(["a"])  # a is now the most recent
    cache.encode(["d"])  # evicts b
    assert len(cache) == 3
    inner.texts.clear()
    for t in ("a", "c", "d"):
        cache.encode([t])
    assert inner.texts == []
    cache.encode(["b"])
    assert inner.texts == ["b"]
    off = QueryCache(inner, size=0)
    off.encode(["a"])
    off.encode(["a"])
    assert len(off) == 0 and inner.texts == ["b", "a", "a"]


def test_clear_forgets_every_vector() -> None:
    inner = Counting()
    cache = QueryCache(inner)
    cache.encode(["a"])
    cache.clear_query_cache()
    assert len(cache) == 0
    cache.encode(["a"])
    assert inner.texts == ["a", "a"]


def test_cache_is_thread_safe() -> None:
    inner = Counting()
    cache = QueryCache(inner, size=16)
    texts = [f"question {i}" for i in range(40)]
    expected = {t: inner.fake.encode([t])[0] for t in texts}
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(300):
            t = texts[int(rng.integers(len(texts)))]
            if not np.array_equal(cache.encode([t])[0], expected[t]):
                errors.append(t)
            if rng.random() < 0.01:
                cache.clear_query_cache()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(cache) <= 16
    assert cache.hits + cache.misses == 8 * 300


def test_cache_size_setting() -> None:
    assert query_cache_size({}) == 1024
    assert query_cache_size({"QA_QUERY_CACHE": "0"}) == 0
    with pytest.raises(ValueError, match="QA_QUERY_CACHE"):
        query_cache_size({"QA_QUERY_CACHE": "-1"})
    with pytest.raises(ValueError, match="QA_QUERY_CACHE"):
        query_cache_size({"QA_QUERY_CACHE": "many"})


def test_the_process_wide_embedder_caches_questions() -> None:
    embedder = default_embedder()
    assert isinstance(embedder, QueryCache) and embedder.size == query_cache_size()
    before = embedder.hits
    q = "What did the ministers agree on in the cache test?"
    assert np.array_equal(embedder.encode([q]), embedder.encode([q]))
    assert embedder.hits == before + 1


def test_a_new_build_empties_the_query_cache(tmp_path: Path) -> None:
    index = tmp_path / "index"
    cache = QueryCache(FakeEmbedder())
    build_index(SEEDS, index, cache)
    service = QAService(Settings.from_env(env={}, seeds_dir=SEEDS, index_dir=index), cache)
    q = "Where did Rubio and Lavrov meet?"
    service.ask(q)
    service.ask(q)
    assert (cache.hits, cache.misses) == (1, 1)
    first = service.index().build_id
    build_index(SEEDS, index, cache)  # publishes a new build
    service.ask(q)
    assert service.index().build_id != first
    assert (cache.hits, cache.misses) == (1, 2) and len(cache) == 1
