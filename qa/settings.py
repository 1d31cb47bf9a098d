"""Runtime settings: one frozen dataclass, filled from defaults < environment (QA_*) < CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _setting(default: Any, help: str, kind: type | None = None) -> Any:
    return field(default=default, metadata={"help": help, "kind": kind or type(default)})


@dataclass(frozen=True)
class Settings:
    """Every knob has one name: env `QA_TOP_K`, CLI `--top-k`, code `top_k`."""

    seeds_dir: Path = _setting(Path("seeds"), "folder of the corpus's .txt articles")
    index_dir: Path = _setting(Path("index"), "folder holding the built indexes")
    questions_dir: Path = _setting(
        Path("tests") / "questions", "folder of the question sets `qa eval` runs by default"
    )
    top_k: int = _setting(5, "how many citations an answer carries")
    # None: the threshold `qa train` chose, stored with the weights (QAService.min_score).
    min_score: float | None = _setting(
        None,
        "answerability threshold: the probability that the articles answer (qa train)",
        float,
    )
    host: str = _setting("127.0.0.1", "address the web server listens on")
    port: int = _setting(8000, "port the web server listens on")
    # Two per core: the GIL holds the Python half of each question, and more threads only queue
    # on it (two cores, 8 clients: 8 threads served 214-259 requests/s, 4 served 275-320).
    threads: int = _setting(
        max(4, 2 * (os.cpu_count() or 2)), "worker threads of the web server (2 per core, >= 4)"
    )
    rate_limit: int = _setting(120, "requests per minute per client on /api (0 disables)")
    feedback_db: Path = _setting(
        Path("index") / "feedback.sqlite3", "SQLite file that stores user feedback"
    )
    chroma_url: str = _setting("", "a Chroma server URL; empty means the embedded store")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `QA_<NAME>` variables, then explicit (non-None) overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw, f.metadata["kind"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("seeds_dir", "index_dir", "feedback_db", "questions_dir"):
            if name in values:
                values[name] = Path(values[name]).expanduser()
        if "index_dir" in values and "feedback_db" not in values:
            values["feedback_db"] = values["index_dir"] / "feedback.sqlite3"
        return replace(cls(), **values)


def _coerce(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if issubclass(kind, Path):
            return Path(raw)
        return kind(raw)
    except ValueError as exc:
        raise ValueError(f"QA_{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
