"""Where the tests find the repository's own files: the seeds and the shipped question sets."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "tests" / "questions"
ARTIFACTS = ROOT / "test-artifacts"
