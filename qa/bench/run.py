"""`qa bench`: how fast the system is, measured in one run and judged by ratios within that run.

Absolute numbers on a shared two-core machine say little; ratios measured side by side do. The
run builds an index of seeds/ into a temporary folder (and times only encoding the very texts
the build encoded), times `QAService.ask` on the shipped questions against the price of one
sentence-transformers embedding, starts fresh processes, builds synthetic corpora of up to
100,000 passages, and finally serves the index over HTTP on loopback.

This module only orders the work: the plans and the bar live in `plan`, the synthetic corpora
in `corpora`, the measurements in `measure` and `http`, and the Markdown in `report`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from qa.bench.http import measure_http
from qa.bench.measure import (
    measure_ask,
    measure_cold,
    measure_history,
    measure_index,
    measure_query_cache,
    measure_scale,
)
from qa.bench.plan import Plan, check_bar
from qa.settings import Settings


def run(
    plan: Plan, seeds_dir: Path | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every measurement, in the order that keeps each one honest; returns the result object."""
    from qa.ask.service import QAService
    from qa.encoders import configured_encoder, default_embedder
    from qa.encoders.choice import cpu_features, recorded_choice

    say = progress or (lambda _msg: None)
    seeds_dir = seeds_dir or Settings.from_env().seeds_dir
    questions = shipped_questions(seeds_dir)
    if plan.questions:
        questions = questions[: plan.questions]
    result: dict[str, Any] = {
        "plan": plan.name,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine(),
        "cpu_features": cpu_features(),
        "encoder": configured_encoder(),
        # What the export measured on this host; QA_ENCODER, when set, overrides it.
        "encoder_choice": recorded_choice(),
        "encoder_overridden": bool(os.environ.get("QA_ENCODER", "").strip()),
        "questions": len(questions),
    }
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        say("loading the encoder")
        # The encoder itself, not its query cache: the shipped questions are asked in several
        # rounds, and every ratio below is about embedding a question, not remembering it.
        cached = default_embedder()
        embedder = getattr(cached, "inner", cached)
        embedder.encode(["warm-up", "warm up twice"])
        result["encoder"] = embedder.name
        # First, before anything imports chromadb: the first build pays every import.
        say("index and encode seeds/")
        facts, index_dir = measure_index(seeds_dir, embedder, work, plan.index_rounds)
        result.update(facts)
        say("ask vs the reference embedding")
        settings = Settings.from_env(env={}, seeds_dir=seeds_dir, index_dir=index_dir)
        result.update(measure_ask(settings, embedder, questions, plan.rounds))
        say("a question with a conversation before it")
        result.update(measure_history(settings, embedder, questions, plan.rounds))
        say("a question asked again")
        result.update(measure_query_cache(settings, embedder, questions, plan.rounds))
        say("fresh processes")
        result.update(measure_cold(index_dir, questions[0], plan.cold_rounds))
        result.update(
            measure_scale(seeds_dir, embedder, questions, plan.scale, work, plan.rounds, say)
        )
        say("HTTP")
        local = QAService(settings, embedder)
        local.ready()
        result.update(measure_http(index_dir, seeds_dir, questions, plan, local.ask))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["bar"] = [asdict(c) for c in check_bar(result)]
    return result


def shipped_questions(seeds_dir: Path) -> list[str]:
    """The questions of the shipped sets, through the evaluation's loader when it exists."""
    try:
        from qa.eval.questions import corpus_texts, load_question_sets, shipped_question_files

        sets = load_question_sets(shipped_question_files(), corpus_texts(seeds_dir))
        return [q.question for s in sets for q in s.questions]
    except ImportError:
        # The same files, read as they are: both ways read `Settings().questions_dir`.
        files = sorted(Settings().questions_dir.glob("*.jsonl"))
        return [
            json.loads(line)["question"]
            for f in files
            for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]


def machine() -> dict[str, Any]:
    """What the run ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "-"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "onnxruntime": ort_version,
    }
