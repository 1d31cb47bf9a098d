"""`qa train`: the weights come from a command, deterministically, and the shipped file is one."""

from __future__ import annotations

import json

from qa.ask.features import PASSAGE_FEATURES, SENTENCE_FEATURES
from qa.ask.ranking import ANSWER_FEATURES, Weights, shipped_weights, weights_path
from qa.ask.service import QAService
from qa.eval.train import MAX_REREAD_SHARE, REREAD_MARGINS, train
from tests.paths import QUESTIONS


def test_training_is_deterministic_and_loads(service: QAService) -> None:
    files = [QUESTIONS / "dev" / "handwritten.jsonl"]
    first = train(service.settings, files, service=service)
    second = train(service.settings, files, service=service)
    assert json.dumps(first) == json.dumps(second)
    w = Weights.from_dict(first)
    assert w.sentence.features == SENTENCE_FEATURES and w.passage.features == PASSAGE_FEATURES
    assert w.answerable.features == ANSWER_FEATURES and 0 < w.threshold < 1
    assert w.top.features == ANSWER_FEATURES
    # Right sentences are the similar ones; a lead-in or a header row is never the answer.
    sentence = dict(zip(w.sentence.features, w.sentence.coef, strict=True))
    assert sentence["similarity"] > 0 and sentence["muted"] < 0
    # A question whose words the corpus never uses is less likely to be answered by it.
    answerable = dict(zip(w.answerable.features, w.answerable.coef, strict=True))
    assert answerable["unknown"] < 0
    # Re-reading is chosen on dev among the margins tried, and never makes dev worse.
    r = first["rerank"]
    assert r["margin"] in (0.0, *REREAD_MARGINS) and r["after"] >= r["before"]
    assert r["share"] <= MAX_REREAD_SHARE and w.rerank.margin == r["margin"]


def test_training_starts_from_no_weights() -> None:
    blank = Weights.blank()
    for model in (blank.sentence, blank.passage, blank.answerable, blank.top):
        assert not model.coef.any() and model.intercept == 0


def test_the_shipped_weights_come_from_qa_train_on_dev() -> None:
    data = json.loads(weights_path().read_text(encoding="utf-8"))
    assert data["source"].startswith("qa train on") and data["trained_on"]
    assert all("/dev/" in path for path in data["trained_on"])
    assert shipped_weights().threshold == data["threshold"]
