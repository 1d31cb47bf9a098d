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
from tests.figures import record
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


# --- what one request may store (issue 14, item 15) -------------------------------------------


def _feedback_app(built_index: Settings, service: QAService, db: Path, **store: int):  # type: ignore[no-untyped-def]
    s = replace(built_index, rate_limit=0, feedback_db=db)
    return create_app(s, service, FeedbackStore(db, **store)).test_client()


def _cited(client, question: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return client.post("/api/ask", json={"question": question}).get_json()["citations"]


def test_feedback_accepts_only_spans_the_index_cites(
    built_index: Settings, service: QAService, tmp_path: Path
) -> None:
    client = _feedback_app(built_index, service, tmp_path / "fb.sqlite3")
    question = "Where did Rubio and Lavrov meet?"
    c = _cited(client, question)[0]
    body = {"question": question, "doc_id": c["doc_id"], "helpful": True}
    one_char = client.post(
        "/api/feedback", json={**body, "start": c["start"], "end": c["start"] + 1}
    )
    assert one_char.status_code == 422
    assert "not a span the index cites" in one_char.get_json()["error"]["message"]
    across = {"start": c["start"] + 5, "end": c["end"]}  # not at a sentence start
    assert client.post("/api/feedback", json={**body, **across}).status_code == 422
    passage = {"start": c["start"], "end": c["end"]}
    assert client.post("/api/feedback", json={**body, **passage}).status_code == 201
    a, b = c["highlights"][0]
    assert client.post("/api/feedback", json={**body, "start": a, "end": b}).status_code == 201
    # The export's evidence is never a fragment like "R".
    rows = FeedbackStore(tmp_path / "fb.sqlite3").all()
    assert [(r.start, r.end) for r in rows] == [(c["start"], c["end"]), (a, b)]


def test_a_row_keeps_a_bounded_excerpt_not_a_copy(
    built_index: Settings, service: QAService, tmp_path: Path
) -> None:
    from qa.feedback import MAX_EXCERPT_CHARS

    db = tmp_path / "fb.sqlite3"
    client = _feedback_app(built_index, service, db)
    question = "Where did Rubio and Lavrov meet?"
    cites = _cited(client, question)
    for c in cites:
        body = {k: c[k] for k in ("doc_id", "start", "end")}
        resp = client.post("/api/feedback", json={"question": question, "helpful": True, **body})
        assert resp.status_code == 201
    rows = FeedbackStore(db).all()
    longest = max(c["end"] - c["start"] for c in cites)
    kept = max(len(r.passage) for r in rows)
    record("feedback_row_excerpt", {"longest_span": longest, "longest_kept": kept})
    assert longest > MAX_EXCERPT_CHARS  # a passage longer than what a row keeps
    assert kept <= MAX_EXCERPT_CHARS
    docs = service.index().documents
    for r in rows:
        assert docs[r.doc_id].raw[r.start : r.end].startswith(r.passage)
    # The excerpt still finds its span in an edited document.
    first = rows[0]
    moved = "A new opening line.\n" + docs[first.doc_id].raw
    out, summary = export_questions([first], {first.doc_id: moved})
    assert summary.dropped_stale == 0 and out[0]["evidence"][0] in moved


def test_one_vote_per_client_question_and_span_and_a_daily_cap(
    built_index: Settings, service: QAService, tmp_path: Path
) -> None:
    db = tmp_path / "fb.sqlite3"
    client = _feedback_app(built_index, service, db, max_rows_per_client=3)
    question = "Where did Rubio and Lavrov meet?"
    cites = _cited(client, question)
    spans = [{k: c[k] for k in ("doc_id", "start", "end")} for c in cites]
    for helpful in (True, True, True, True, False):  # one client voting again and again
        body = {"question": question.upper(), "helpful": helpful, **spans[0]}
        assert client.post("/api/feedback", json=body).status_code == 201
    rows = FeedbackStore(db).all()
    assert [(r.helpful, r.client) for r in rows] == [(False, "127.0.0.1")]  # the last vote
    for span in spans[1:3]:
        body = {"question": question, "helpful": True, **span}
        assert client.post("/api/feedback", json=body).status_code == 201
    capped = client.post("/api/feedback", json={"question": question, "helpful": True, **spans[3]})
    assert capped.status_code == 429 and int(capped.headers["Retry-After"]) > 0
    assert capped.get_json()["error"]["code"] == "rate_limited"
    # A changed vote is not a new row, and another client has its own allowance.
    again = {"question": question, "helpful": False, **spans[1]}
    assert client.post("/api/feedback", json=again).status_code == 201
    other = client.post(
        "/api/feedback",
        json={"question": question, "helpful": True, **spans[3]},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert other.status_code == 201
    assert len(FeedbackStore(db).all()) == 4
    record("feedback_one_client", {"rows_after_5_votes_on_one_span": 1, "cap": 3})


def test_evidence_passes_over_the_heading_a_passage_opens_with() -> None:
    from qa.feedback import heading_starts

    raw = "A Title Line\nBy Someone\nThe Section Heading\nThe body says this. And more.\n"
    start = raw.index("The Section")
    heads = heading_starts("doc", raw)
    assert start in heads
    assert evidence_text(raw, start, len(raw), headings=heads) == "The body says this. And more."
    assert evidence_text(raw, start, len(raw)) == "The Section Heading"  # without: the line
