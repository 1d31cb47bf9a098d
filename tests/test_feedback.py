"""Feedback export: judgements become question-set lines whose evidence is in the corpus."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.ask.service import QAService
from qa.cli import main
from qa.feedback import (
    MAX_EVIDENCE_CHARS,
    Feedback,
    FeedbackStore,
    evidence_text,
    export_questions,
)
from qa.settings import Settings
from qa.web.app import create_app
from tests.paths import ROOT as PROJECT_ROOT

RAW = (
    "Title\n\nFirst sentence here. Second one follows! Third? "
    + "A very long sentence "
    + "word " * 60
    + "ends.\nNext line."
)
SEED_TEXTS = [p.read_text(encoding="utf-8") for p in sorted((PROJECT_ROOT / "seeds").glob("*.txt"))]


def fb(question: str, start: int, end: int, helpful: bool, doc: str = "d") -> Feedback:
    return Feedback(question, doc, start, end, helpful, "b", "sha", RAW[start:end])


def test_evidence_is_whole_sentences_within_the_limit() -> None:
    start = RAW.index("First")
    assert evidence_text(RAW, start, len(RAW)) == "First sentence here. Second one follows! Third?"
    assert evidence_text(RAW, start, start + 20) == "First sentence here."
    long_start = RAW.index("A very")
    cut = evidence_text(RAW, long_start, len(RAW))
    assert len(cut) <= MAX_EVIDENCE_CHARS and RAW[long_start:].startswith(cut)
    assert cut.endswith("word")  # at a word boundary
    # A line break ends the evidence: it never spans two paragraphs.
    assert evidence_text(RAW, RAW.index("ends."), len(RAW)) == "ends."


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_evidence_is_an_exact_trimmed_substring(data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(SEED_TEXTS))
    start = data.draw(st.integers(0, len(raw) - 1))
    end = data.draw(st.integers(start + 1, min(len(raw), start + 1500)))
    text = evidence_text(raw, start, end)
    assert len(text) <= MAX_EVIDENCE_CHARS
    assert text == text.strip()
    assert text in raw[start:end]


def test_export_pools_votes_and_skips_unhelpful_questions() -> None:
    a, b = RAW.index("First"), RAW.index("Second")
    judgements = [
        fb("What is first?", a, b, True),
        fb("what is  FIRST?", a, b, True),  # the same question, spelled differently
        fb("What is first?", b, len(RAW), False),
        fb("Only bad?", a, b, False),
        fb("Disputed?", a, b, True),
        fb("Disputed?", a, b, False),  # as many against as for: not evidence
        fb("Gone?", a, b, True, doc="deleted"),
    ]
    out, summary = export_questions(judgements, {"d": RAW})
    assert [q["question"] for q in out] == ["What is first?"]
    q = out[0]
    assert set(q) == {"id", "question", "answer", "docs", "evidence"}
    assert q["docs"] == ["d"] and q["evidence"] == ["First sentence here."]
    assert q["answer"] == "First sentence here." and q["id"].startswith("fb-")
    assert summary.judgements == 7 and summary.questions == 4 and summary.exported == 1
    assert summary.skipped_unhelpful == 2 and summary.dropped_stale == 1


def test_export_follows_text_that_moved_and_drops_text_that_changed() -> None:
    a, b = RAW.index("Second"), RAW.index("Third")
    moved = "Prefix added.\n" + RAW
    out, summary = export_questions([fb("Q?", a, b, True)], {"d": moved})
    assert out[0]["evidence"] == ["Second one follows!"]
    out, summary = export_questions([fb("Q?", a, b, True)], {"d": "Completely rewritten."})
    assert out == [] and summary.dropped_stale == 1


def test_store_round_trip(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "sub" / "fb.sqlite3")
    assert store.all() == []
    one = fb("Q?", 0, 5, True)
    store.add(one)
    store.add(replace(one, helpful=False))
    assert [f.helpful for f in store.all()] == [True, False]
    assert store.all()[0] == one


def test_qa_feedback_export_writes_question_set_lines(
    built_index: Settings,
    service: QAService,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "feedback.sqlite3"
    client = create_app(replace(built_index, rate_limit=0, feedback_db=db), service).test_client()
    asked = {
        "Where did Rubio and Lavrov meet?": [True, False],
        "What did Trump say about Putin?": [False, False],
    }
    for question, verdicts in asked.items():
        cites = client.post("/api/ask", json={"question": question}).get_json()["citations"]
        for c, helpful in zip(cites, verdicts, strict=False):
            body = {k: c[k] for k in ("doc_id", "start", "end")}
            resp = client.post(
                "/api/feedback", json={"question": question, "helpful": helpful, **body}
            )
            assert resp.status_code == 201
    monkeypatch.setenv("QA_FEEDBACK_DB", str(db))
    out = tmp_path / "from_feedback.jsonl"
    assert (
        main(["feedback", "export", "--index", str(built_index.index_dir), "--out", str(out)]) == 0
    )
    assert "1 questions exported" in capsys.readouterr().err
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1
    q = lines[0]
    assert q["question"] == "Where did Rubio and Lavrov meet?"
    docs = service.index().documents
    for doc_id in q["docs"]:
        assert doc_id in docs
    for ev in q["evidence"]:
        assert len(ev) <= MAX_EVIDENCE_CHARS
        assert any(ev in docs[d].raw for d in q["docs"])
    # To standard output without --out; an unavailable index is a clear error.
    assert main(["feedback", "export", "--index", str(built_index.index_dir)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == q
    assert main(["feedback", "export", "--index", str(tmp_path / "none")]) == 3
    assert "qa index" in capsys.readouterr().err
