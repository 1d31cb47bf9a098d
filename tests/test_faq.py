"""The FAQ question set: generated from the articles' own FAQ sections, byte for byte stable."""

from __future__ import annotations

import json
from pathlib import Path

from qa.cli import main
from qa.faq import faq_jsonl
from tests.paths import ROOT as PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "tests" / "questions" / "dev" / "faq.jsonl"


def test_shipped_faq_set_is_what_qa_faq_generates(seeds_copy: Path, tmp_path: Path) -> None:
    first = faq_jsonl(seeds_copy)
    assert faq_jsonl(seeds_copy) == first
    out = tmp_path / "faq.jsonl"
    assert main(["faq", "--seeds", str(seeds_copy), "--out", str(out)]) == 0
    assert out.read_bytes() == SHIPPED.read_bytes() == first.encode("utf-8")


def test_faq_set_is_deduplicated_with_stable_ids() -> None:
    records = [json.loads(line) for line in SHIPPED.read_text(encoding="utf-8").splitlines()]
    # 5 + 3 + 3: the article that repeats its three FAQs counts them once.
    assert len(records) == 11
    assert len({r["question"] for r in records}) == 11
    assert records[5]["id"] == "faq_001_287f83b8eb0089ba_1"
    assert all(r["id"] == f"faq_{r['docs'][0]}_{r['id'].rsplit('_', 1)[1]}" for r in records)
    # "Question:" prefixes are dropped; the evidence is the answer's first sentence.
    assert not any(r["question"].startswith("Question") for r in records)
    two = next(r for r in records if r["question"].startswith("How does President Trump"))
    assert two["evidence"] == [two["answer"].split(" His approach")[0]]
