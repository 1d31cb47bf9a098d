"""`qa eval` at the command line: a broken question file is refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.cli import main


def test_bad_question_file_is_refused_with_file_and_line(
    seeds_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = {"id": "a", "question": "When?", "answer": "1991", "docs": [], "evidence": []}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(good) + "\n{oops\n", encoding="utf-8")
    # An index folder with no index: the refusal must come before the service is needed.
    code = main(
        ["eval", "--questions", str(bad), "--seeds", str(seeds_copy), "--index", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"qa: {bad}:1: docs: [] should be non-empty" in err
    assert f"qa: {bad}:2: not valid JSON" in err
    assert "no question was run" in err
    assert "no index" not in err


def test_write_baseline_refuses_custom_sets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--questions", "x.jsonl", "--write-baseline"]) == 2
    assert "--write-baseline records the shipped sets" in capsys.readouterr().err
