"""Settings: one name per knob, every knob documented, bad values refused with their name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from qa.settings import Settings
from tests.paths import ROOT


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f.name for f in fields(Settings) if f"`QA_{f.name.upper()}`" not in readme]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_environment_then_overrides() -> None:
    s = Settings.from_env(env={"QA_TOP_K": "7", "QA_INDEX_DIR": "/tmp/x"}, top_k=None)
    assert s.top_k == 7 and s.index_dir == Path("/tmp/x")
    assert s.feedback_db == Path("/tmp/x/feedback.sqlite3")  # follows the index
    assert Settings.from_env(env={"QA_TOP_K": "7"}, top_k=3).top_k == 3


def test_paths_are_relative_to_the_working_directory_not_the_package() -> None:
    s = Settings.from_env(env={})
    assert not s.seeds_dir.is_absolute() and s.seeds_dir == Path("seeds")
    assert s.questions_dir == Path("tests") / "questions"


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(ValueError, match="QA_TOP_K"):
        Settings.from_env(env={"QA_TOP_K": "many"})
