"""`qa bench`: its arithmetic, its synthetic corpora, its verdicts, and a smoke run end to end."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa.bench import corpora, plan, report, stats
from qa.chunking import chunk_document, merge_duplicates
from qa.corpus import parse_document
from qa.encoders.choice import cpu_features, host_encoder
from tests.conftest import SEEDS, FakeEmbedder
from tests.paths import ROOT as PROJECT_ROOT


def test_summary_percentiles_interpolate_between_closest_ranks() -> None:
    assert stats.summary_ms([0.004]) == {"p50": 4.0, "p95": 4.0, "n": 1}
    two = stats.summary_ms([0.002, 0.001])  # order does not matter
    assert two == {"p50": 1.5, "p95": pytest.approx(1.95), "n": 2}
    with pytest.raises(ValueError):
        stats.summary_ms([])


def test_summary_is_in_milliseconds() -> None:
    s = stats.summary_ms([0.001, 0.002, 0.003, 0.004, 0.100])
    assert s == {"p50": 3.0, "p95": pytest.approx(80.8), "n": 5}


def test_recall_counts_true_neighbours_and_tolerates_ties() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    assert stats.recall_at_k([0, 1, 2], scores, k=3) == 1.0
    assert stats.recall_at_k([2, 1, 0], scores, k=3) == 1.0  # order does not matter
    assert stats.recall_at_k([0, 1, 5], scores, k=3) == pytest.approx(2 / 3)
    assert stats.recall_at_k([], scores, k=3) == 0.0
    tied = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    assert stats.recall_at_k([0, 3], tied, k=2) == 1.0  # any of the tied rows is exact
    assert stats.recall_at_k([0, 1], scores[:1], k=10) == 1.0  # k larger than the corpus


def test_synthetic_corpus_is_deterministic_and_one_passage_per_section() -> None:
    sentences, headings = corpora.corpus_pieces(SEEDS)
    assert len(sentences) > 100 and len(headings) > 10
    assert not any(s.endswith("?") or "|" in s for s in sentences)
    a = corpora.synthetic_corpus(sentences, headings, 1_200)
    assert a == corpora.synthetic_corpus(sentences, headings, 1_200)
    assert a != corpora.synthetic_corpus(sentences, headings, 1_200, seed=1)
    assert [name for name, _ in a] == [f"syn_{i:05d}.txt" for i in range(30)]  # 40 sections each
    passages = []
    for name, text in a:
        doc = parse_document(name[:-4], text)
        passages += chunk_document(doc)
        assert doc.byline == "Bench Writer"
    merged = [p for p in merge_duplicates(passages) if p.kind != "meta"]  # not the byline's
    assert abs(len(merged) - 1_200) <= 12  # the chunker makes one passage of each section


class CountingEncoder:
    """A fake inner encoder that records every text it embeds."""

    def __init__(self) -> None:
        self.inner = FakeEmbedder()
        self.name, self.dim = "fake", self.inner.dim
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str], progress: Callable[[int], None] | None = None):  # type: ignore[no-untyped-def]
        self.seen += list(texts)
        return self.inner.encode(texts)


def test_sentence_mean_embedder_embeds_each_distinct_sentence_once() -> None:
    inner = CountingEncoder()
    mean = corpora.SentenceMeanEmbedder(inner)
    one, two = "Rubio met Lavrov in Malaysia.", "Talks went on for hours."
    vecs = mean.encode([f"{one} {two}", one, f"Heading\n{two} {one}"])
    assert sorted(inner.seen) == sorted(["Heading", one, two])
    expected = inner.inner.encode([one, two]).mean(axis=0)
    assert np.allclose(vecs[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert np.allclose(vecs[1], inner.inner.encode([one])[0], atol=1e-6)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    mean.encode([two, one])
    assert len(inner.seen) == 3  # cached
    assert mean.name == "fake"  # vectors live in the real encoder's space


def _result(**over: object) -> dict:
    r: dict = {
        "embed_reference_ms": 14.0,
        "ask_ms": {"p50": 5.0, "p95": 9.0, "n": 10},
        "http_ask_ms": {"p50": 6.0, "p95": 9.0, "n": 10},
        "http_health_ms": {"p50": 0.8, "p95": 1.0, "n": 10},
        "http_rps": 260.0,
        "http_rps_c1": 180.0,
        "index_s": 2.2,
        "encode_s": 2.0,
        "cold_ask_s": 1.5,
        "import_st_s": 7.0,
        "scale": [
            {"passages_target": 1000, "ask_ms": {"p50": 5.0}, "recall_at_10": 1.0},
            {"passages_target": 100000, "ask_ms": {"p50": 9.0}, "recall_at_10": 0.985},
        ],
        "rss_mb": 400.0,
        "rss_growth_mb": 1.0,
        "ask_alone_ms": {"p50": 5.0, "p95": 9.0, "n": 10},
        "ask_with_history_ms": {"p50": 6.0, "p95": 9.5, "n": 10},
    }
    r.update(over)
    return r


def test_the_bar_holds_on_good_numbers_and_fails_on_bad_ones() -> None:
    good = plan.check_bar(_result())
    assert [c.holds for c in good] == [True] * 9, good
    assert good[0].value == pytest.approx(5 / 14, abs=1e-3)
    assert good[1].value == pytest.approx(6 / (5 + 1.6), abs=1e-3)

    bad = {
        c.name[:2]: c.holds
        for c in plan.check_bar(
            _result(
                embed_reference_ms=9.0,
                http_rps=200.0,
                index_s=3.0,
                cold_ask_s=4.0,
                scale=[
                    {"passages_target": 1000, "ask_ms": {"p50": 4.0}, "recall_at_10": 1.0},
                    {"passages_target": 100000, "ask_ms": {"p50": 9.0}, "recall_at_10": 0.97},
                ],
                rss_growth_mb=50.0,
                ask_with_history_ms={"p50": 8.0, "p95": 12.0, "n": 10},
            )
        )
    }
    assert bad == {
        "1 ": False,
        "2a": True,
        "2b": False,
        "3 ": False,
        "4 ": False,
        "5a": False,
        "5b": False,
        "6 ": False,
        "7 ": False,
    }


def test_a_missing_measurement_is_not_judged() -> None:
    checks = plan.check_bar({"ask_ms": {"p50": 3.0}})
    assert all(c.holds is None for c in checks)
    assert "not measured" in report.render_markdown({"ask_ms": {"p50": 3.0}})


def test_readme_block_is_replaced_between_the_markers() -> None:
    text = f"# x\n## Performance\n{report.START_MARK}\nold\n{report.END_MARK}\ntail\n"
    out = report.replace_between_markers(text, "new table\n")
    assert out == f"# x\n## Performance\n{report.START_MARK}\nnew table\n{report.END_MARK}\ntail\n"
    with pytest.raises(ValueError):
        report.replace_between_markers("no markers", "x")
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index(report.START_MARK) < readme.index(report.END_MARK)


def test_write_readme_replaces_the_block_of_the_readme_in_the_working_directory(
    tmp_path: Path,
) -> None:
    assert str(report.README) == "README.md"  # relative: the README of where `qa bench` runs
    text = f"# x\n{report.START_MARK}\nold\n{report.END_MARK}\ntail\n"
    readme = tmp_path / "README.md"
    readme.write_text(text, encoding="utf-8")
    result = {"ask_ms": {"p50": 3.0}}
    report.write_readme(result, readme)
    expected = report.replace_between_markers(text, report.render_markdown(result))
    assert readme.read_text(encoding="utf-8") == expected


def test_bench_reaches_chroma_only_through_the_store() -> None:
    """qa/index/store.py is the only module that imports chromadb; bench uses its public face."""
    for path in (PROJECT_ROOT / "qa" / "bench").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "chromadb" for a in node.names), path.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "chromadb", path.name
                if node.module == "qa.index.store":
                    assert not any(a.name.startswith("_") for a in node.names), path.name


def test_smoke_run_of_qa_bench_json(tmp_path: Path) -> None:
    """The whole bench at its smallest: every measurement runs and lands in the JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "qa", "bench", "--smoke", "--json", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        # The bench times the product: the host's measured choice, not the tests' fp32.
        env={**{k: v for k, v in os.environ.items() if k != "QA_ENCODER"}, "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    for key in (
        "embed_reference_ms",
        "ask_ms",
        "http_ask_ms",
        "http_health_ms",
        "http_rps",
        "index_s",
        "encode_s",
        "cold_ask_s",
        "import_st_s",
        "scale",
        "rss_mb",
        "ask_new_question_ms",
        "ask_repeated_question_ms",
    ):
        assert r.get(key) is not None, key
    assert r["encoder"] == f"all-MiniLM-L6-v2/{host_encoder()}"
    assert r["cpu_features"] == cpu_features() and r["encoder_choice"]["encoder"] == host_encoder()
    assert r["ask_ms"]["p50"] > 0 and r["ask_ms"]["p95"] >= r["ask_ms"]["p50"]
    assert r["http_rps"] > 0 and r["rss_mb"] > 50
    assert [s["passages_target"] for s in r["scale"]] == [200, 500]
    assert all(s["passages"] > 150 and 0.98 <= s["recall_at_10"] <= 1.0 for s in r["scale"])
    assert r["hnsw_config"]["ef_search"] == 200 and r["hnsw_config"]["max_neighbors"] == 32
    # The contrast collection at Chroma's default HNSW settings is built and searched too.
    assert r["default_hnsw_size"] == 500 and 0 < r["default_hnsw_recall_at_10"] <= 1.0
    assert len(r["bar"]) == 9 and all(c["value"] is not None for c in r["bar"])
    assert not list(tmp_path.glob("qa-bench-*"))  # the work folder is removed
