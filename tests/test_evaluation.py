"""The evaluation instrument without a model: metric math, the format validator, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.corpus import read_corpus
from qa.errors import QuestionSetError
from qa.eval.gate import regressions
from qa.eval.judging import Cited, Judged, Outcome, judge, token_f1
from qa.eval.metrics import (
    METRICS,
    Evaluation,
    calibrate_threshold,
    compute_metrics,
    diagnose,
    ndcg,
    no_answer_scores,
    percentile,
)
from qa.eval.pipelines import OVERLAP_CHARS, WINDOW_CHARS, windows
from qa.eval.questions import (
    QUESTION_SCHEMA,
    EvidenceFinder,
    Question,
    corpus_texts,
    fold_with_offsets,
    load_question_sets,
)
from qa.eval.report import markdown, write_reports
from qa.text import fold
from tests.paths import ROOT as PROJECT_ROOT

DOCS = {
    "war": "The war.  Russia launched a full-scale invasion in February 2022.\nIt is Russia’s war.",
    "talks": "Rubio met Lavrov in Malaysia. The details remain confidential.",
}


def q(
    id: str = "q1", answer: str | None = "February 2022", evidence=("February 2022",)
) -> Question:
    docs = ("war",) if answer is not None else ()
    return Question(id, f"question {id}?", answer, docs, tuple(evidence) if answer else (), "s", 1)


def cite(doc_id: str, text: str, highlight: tuple[int, int] | None = None) -> Cited:
    start = DOCS[doc_id].index(text)
    end = start + len(text)
    return Cited(doc_id, "sec", start, end, (text,), highlight or (start, end))


WAR_SENTENCE = "Russia launched a full-scale invasion in February 2022."
FINDER = EvidenceFinder(DOCS)


# --- matching -------------------------------------------------------------------------------


def test_fold_with_offsets_matches_fold_and_maps_back() -> None:
    text = "  It is  Russia’s\n war.  "
    folded, origin = fold_with_offsets(text)
    assert folded == fold(text) == "it is russia's war."
    assert [text[i] for i in origin][:5] == ["I", "t", " ", "i", "s"]


def test_fold_with_offsets_agrees_with_fold_on_the_corpus() -> None:
    docs, _ = read_corpus(PROJECT_ROOT / "seeds")
    for doc in docs:
        assert fold_with_offsets(doc.raw)[0] == fold(doc.raw), doc.id


def test_occurrences_are_raw_offsets_even_across_folded_space_and_quotes() -> None:
    (span,) = FINDER.occurrences("war", "IT IS RUSSIA'S war")
    assert DOCS["war"][span[0] : span[1]] == "It is Russia’s war"
    assert FINDER.occurrences("war", "February 2022") == [
        (DOCS["war"].index("February"), DOCS["war"].index("February") + 13)
    ]
    assert FINDER.docs_containing("the  details remain") == ["talks"]


# --- one question ---------------------------------------------------------------------------


def test_rank_is_the_first_supporting_citation() -> None:
    out = Outcome(True, "x [1]", (cite("talks", "Rubio met Lavrov"), cite("war", WAR_SENTENCE)))
    j = judge(q(), out, FINDER)
    assert j.supporting == (False, True)
    assert j.rank == 2


def test_merged_duplicate_locations_count_as_the_citation() -> None:
    c = cite("talks", "Rubio met Lavrov")
    merged = Cited(c.doc_id, c.section, c.start, c.end, (c.texts[0], WAR_SENTENCE), c.highlight)
    assert judge(q(), Outcome(True, "", (merged,)), FINDER).rank == 1


def test_sentence_hit_needs_the_first_highlight_on_the_evidence() -> None:
    raw = DOCS["war"]
    whole = cite("war", DOCS["war"])
    on = (raw.index("Russia launched"), raw.index("2022.") + 5)
    off = (0, raw.index("war.") + 4)
    hit = Cited("war", "s", 0, len(raw), (raw,), on)
    miss = Cited("war", "s", 0, len(raw), (raw,), off)
    assert judge(q(), Outcome(True, "", (hit,)), FINDER).sentence_hit
    assert not judge(q(), Outcome(True, "", (miss,)), FINDER).sentence_hit
    # The evidence in the second citation does not help the first highlight.
    assert not judge(q(), Outcome(True, "", (miss, whole)), FINDER).sentence_hit
    assert not judge(q(answer=None), Outcome(True, "", (hit,)), FINDER).sentence_hit


def test_answer_f1_strips_markers_and_needs_a_declared_answer() -> None:
    c = (cite("war", WAR_SENTENCE),)
    j = judge(q(), Outcome(True, "In February 2022 [1].", c), FINDER)
    assert j.answer_f1 == pytest.approx(token_f1("In February 2022", "February 2022"))
    assert judge(q(), Outcome(False, "February 2022", c), FINDER).answer_f1 == 0.0


# --- metric math ----------------------------------------------------------------------------


def test_token_f1_is_squad_style() -> None:
    assert token_f1("The February, 2022!", "february 2022") == 1.0
    assert token_f1("in February 2022", "February 2022") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0
    assert token_f1("x", "") == 0.0
    assert token_f1("Russia’s war", "russia's war") == 1.0


def test_ndcg_binary_gains_against_the_ideal_ranking() -> None:
    assert ndcg([True, False], relevant=1) == 1.0
    assert ndcg([False, True], relevant=1) == pytest.approx(1 / 1.5849625)
    assert ndcg([True, False, True], relevant=2) == pytest.approx((1 + 0.5) / (1 + 1 / 1.5849625))
    assert ndcg([False] * 5, relevant=0) == 0.0
    assert ndcg([False] * 5 + [True], relevant=1) == 0.0  # beyond k


def test_no_answer_zero_denominators() -> None:
    # Nothing unanswerable, nothing declared: perfect.
    assert no_answer_scores([(False, False)]) == (1.0, 1.0)
    # Something unanswerable, nothing declared: the silence is the failure.
    assert no_answer_scores([(True, False), (False, False)]) == (0.0, 0.0)
    # Nothing unanswerable, but a false no-answer: precision carries it.
    assert no_answer_scores([(False, True)]) == (0.0, 1.0)
    assert no_answer_scores([(True, True), (False, True), (True, False)]) == (0.5, 0.5)


def _judged_set() -> list[Judged]:
    good = cite("war", WAR_SENTENCE)
    other = cite("talks", "Rubio met Lavrov in Malaysia.")
    return [
        judge(q("a"), Outcome(True, "February 2022 [1]", (good, other)), FINDER, 10.0, 1),
        judge(q("b"), Outcome(True, "Malaysia [1]", (other, good)), FINDER, 20.0, 1),
        judge(q("c"), Outcome(False, "none", (other,) * 5), FINDER, 30.0, 1),
        judge(q("d", None), Outcome(False, "none", (other,)), FINDER, 40.0),
        judge(q("e", None), Outcome(True, "Malaysia [1]", (other,)), FINDER, 50.0),
    ]


def test_compute_metrics_on_hand_made_answers() -> None:
    m = compute_metrics(_judged_set())
    assert list(m) == list(METRICS)
    assert m["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["hit@3"] == m["hit@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["mrr"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / 1.5849625) / 3, abs=1e-4)
    assert m["sentence@1"] == pytest.approx(1 / 3, abs=1e-4)
    # Declared unanswerable: c (wrongly) and d (rightly); truly unanswerable: d and e.
    assert m["no_answer_precision"] == 0.5
    assert m["no_answer_recall"] == 0.5
    assert m["answer_f1"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["p50_ms"] == 30.0
    assert m["p95_ms"] == pytest.approx(48.0)


def test_percentile_interpolates_linearly_and_is_zero_for_no_values() -> None:
    assert percentile([40.0, 10.0, 30.0, 20.0, 50.0], 95) == pytest.approx(48.0)
    assert percentile([10.0, 20.0], 50) == 15.0
    assert percentile([], 95) == 0.0


def test_metrics_of_a_set_without_answerable_questions_are_null() -> None:
    m = compute_metrics(_judged_set()[3:])
    assert m["hit@1"] is None and m["answer_f1"] is None
    assert m["no_answer_recall"] == 0.5


def test_calibration_rethresholds_recorded_support() -> None:
    c = (cite("war", WAR_SENTENCE),)
    js = [
        judge(q("a"), Outcome(True, "", c, support=0.70), FINDER),
        judge(q("b"), Outcome(True, "", c, support=0.55), FINDER),
        judge(q("x", None), Outcome(True, "", c, support=0.40), FINDER),
        judge(q("y", None), Outcome(False, "", (), support=0.60), FINDER),  # nothing cited
    ]
    cal = calibrate_threshold(js, [0.3, 0.4, 0.41, 0.5, 0.55, 0.6])
    by_t = {p.threshold: p for p in cal.points}
    assert (by_t[0.3].precision, by_t[0.3].recall) == (1.0, 0.5)
    assert (by_t[0.41].f1, by_t[0.5].f1, by_t[0.6].f1) == (1.0, 1.0, pytest.approx(0.8))
    assert cal.tied == (0.41, 0.5, 0.55)
    assert cal.best.threshold == 0.5  # the middle of the tie


def test_diagnosis_names_the_failure() -> None:
    js = {j.question.id: j for j in _judged_set()}
    assert diagnose(js["a"], 0.5) is None
    assert diagnose(js["b"], 0.5) == "evidence ranked 2, not first"
    assert diagnose(js["c"], 0.5).startswith("false no-answer (support 0.000 < 0.50); wrong doc")
    assert diagnose(js["c"], 0.5, deep_rank=7).endswith("(evidence at rank 7 of 20)")
    assert diagnose(js["d"], 0.5) is None
    assert diagnose(js["e"], 0.5).startswith("false answer")
    unreachable = judge(q("u"), Outcome(True, "", (cite("war", "The war."),)), FINDER)
    assert diagnose(unreachable, 0.5).startswith("unreachable")


def test_regression_gate_tolerance() -> None:
    accepted = {"metrics": {"hit@5": 0.90, "mrr": 0.80, "no_answer_recall": 0.50}}
    ok = {"metrics": {"hit@5": 0.885, "mrr": 0.95, "no_answer_recall": 0.50}}
    assert regressions(ok, accepted) == []
    bad = {"metrics": {"hit@5": 0.87, "mrr": 0.80, "no_answer_recall": 0.40}}
    assert [r.split()[0] for r in regressions(bad, accepted)] == ["hit@5", "no_answer_recall"]


def test_report_json_markdown_and_png(tmp_path: Path) -> None:
    js = _judged_set()
    e = Evaluation(["s"], js, top_k=5, min_score=0.5, baseline=js[:3])
    e.calibration = calibrate_threshold(js)
    d = e.to_dict()
    assert set(d["metrics"]) == set(METRICS) == set(d["sets"]["s"])
    assert set(d["baseline"]) == {"metrics", "sets"}
    assert set(d["questions"][0]) == {
        "id",
        "set",
        "rank",
        "answerable_predicted",
        "sentence_hit",
        "ms",
    }
    assert [f["id"] for f in d["failures"]] == ["b", "c", "e"]
    text = markdown(e)
    assert "| hit@1 | 0.333 | 0.333 | 0.333 | 0.333 |" in text
    assert "`c` (s)" in text and "Calibration" in text
    paths = write_reports(e, tmp_path / "out")
    assert json.loads(paths[0].read_text())["metrics"] == d["metrics"]
    assert paths[2].read_bytes().startswith(b"\x89PNG")


# --- the tutorial baseline ------------------------------------------------------------------


def test_baseline_windows_are_fixed_and_overlapping() -> None:
    raw = "x" * 2500
    assert windows(raw) == [(0, 1000), (800, 1800), (1600, 2500)]
    assert windows("short") == [(0, 5)]
    assert windows("") == []
    assert (WINDOW_CHARS, OVERLAP_CHARS) == (1000, 200)


# --- the format validator -------------------------------------------------------------------

GOOD = {
    "id": "q1",
    "question": "When did the invasion start?",
    "answer": "February 2022",
    "docs": ["war"],
    "evidence": ["full-scale INVASION in february 2022"],
}


def _write(tmp_path: Path, lines: list[str], name: str = "set.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _line(**changes: object) -> str:
    obj = {**GOOD, **changes}
    for k in [k for k, v in changes.items() if v is ...]:
        del obj[k]
    return json.dumps(obj)


def _problems(tmp_path: Path, lines: list[str]) -> list[str]:
    path = _write(tmp_path, lines)
    with pytest.raises(QuestionSetError) as info:
        load_question_sets([path], DOCS)
    return info.value.problems


def test_a_valid_file_loads() -> None:
    path = PROJECT_ROOT / "tests" / "questions" / "dev" / "handwritten.jsonl"
    docs = corpus_texts(PROJECT_ROOT / "seeds")
    (s,) = load_question_sets([path], docs)
    assert s.name == "dev/handwritten" and len(s.questions) == 94


def test_valid_lines_with_blank_lines_and_unanswerable(tmp_path: Path) -> None:
    none = _line(id="q2", answer=None, docs=[], evidence=[])
    (s,) = load_question_sets([_write(tmp_path, [_line(), "", none])], DOCS)
    assert [(x.id, x.line, x.answerable) for x in s.questions] == [
        ("q1", 1, True),
        ("q2", 3, False),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"id": "q1", "question": ', "not valid JSON"),
        ("[1, 2]", "is not of type 'object'"),
        (_line(evidence=...), "'evidence' is a required property"),
        (_line(answer=5), "answer: 5 is not of type 'string', 'null'"),
        (_line(docs="war"), "docs: 'war' is not of type 'array'"),
        (_line(id=""), "id: '' is empty"),
        (_line(answer=None), "answer is null, so docs and evidence must be empty"),
        (_line(evidence=[]), "needs at least one doc and one evidence string"),
        (
            _line(evidence=["invaded in March 2023"]),
            "evidence 'invaded in March 2023' occurs in no",
        ),
        (_line(docs=["nope"]), "docs: unknown document 'nope'"),
        (_line(docs=["talks"]), "occurs in war, none of which is in docs"),
        (_line(docs=["war", "talks"]), "docs: talks contains none of the evidence"),
    ],
)
def test_bad_lines_are_refused_with_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    problems = _problems(tmp_path, [_line(id="ok"), line])
    assert any(p.startswith(f"{tmp_path / 'set.jsonl'}:2: ") for p in problems), problems
    assert any(reason in p for p in problems), problems


def test_duplicate_ids_and_every_problem_reported(tmp_path: Path) -> None:
    problems = _problems(tmp_path, [_line(), _line(), "nonsense"])
    assert problems == [
        f"{tmp_path / 'set.jsonl'}:2: duplicate id 'q1' (first on line 1)",
        f"{tmp_path / 'set.jsonl'}:3: not valid JSON (Expecting value at column 1)",
    ]


def test_empty_and_missing_files_are_refused(tmp_path: Path) -> None:
    empty = _write(tmp_path, [""], "empty.jsonl")
    with pytest.raises(QuestionSetError, match=r"empty\.jsonl: no questions"):
        load_question_sets([empty], DOCS)
    with pytest.raises(QuestionSetError, match="no such file"):
        load_question_sets([tmp_path / "missing.jsonl"], DOCS)
    with pytest.raises(QuestionSetError, match="'overall' is reserved"):
        load_question_sets([_write(tmp_path, [_line()], "overall.jsonl")], DOCS)
    (tmp_path / "other").mkdir()
    twins = [_write(tmp_path, [_line()]), _write(tmp_path / "other", [_line()])]
    with pytest.raises(QuestionSetError, match="already loaded"):
        load_question_sets(twins, DOCS)


def test_question_length_limit_is_the_services() -> None:
    from qa.ask.query import MAX_QUESTION_CHARS

    assert QUESTION_SCHEMA["properties"]["question"]["maxLength"] == MAX_QUESTION_CHARS


def test_answerability_calibration_brier_and_reliability_bins() -> None:
    from qa.eval.metrics import answerability_calibration

    c = (cite("war", WAR_SENTENCE),)
    js = [
        judge(q("a"), Outcome(True, "", c, support=0.9), FINDER),  # top answers: 1
        judge(q("b"), Outcome(True, "", c, support=0.7), FINDER),  # 1
        judge(q("x", None), Outcome(True, "", c, support=0.2), FINDER),  # unanswerable: 0
        judge(q("y", None), Outcome(False, "", c, support=0.05), FINDER),  # 0
    ]
    cal = answerability_calibration(js)
    want = ((0.9 - 1) ** 2 + (0.7 - 1) ** 2 + 0.2**2 + 0.05**2) / 4
    assert cal["brier"] == pytest.approx(want, abs=1e-4)
    assert sum(b["questions"] for b in cal["bins"]) == 4
    top = cal["bins"][-1]
    assert (top["from"], top["observed"], top["predicted"]) == (0.9, 1.0, 0.9)
    assert answerability_calibration([]) == {"brier": None, "bins": []}
