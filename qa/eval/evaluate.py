"""One whole `qa eval` run: question sets -> pipelines -> judged questions -> an Evaluation.

Orchestration only. The parts it puts together each have their module: the question-set format
(`qa.eval.questions`), judging one answer (`qa.eval.judging`), the pipelines questions run
through (`qa.eval.pipelines`), metrics and diagnosis (`qa.eval.metrics`), the regression gate
(`qa.eval.gate`); `qa.eval.report` renders the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qa.ask.followup import Turn
from qa.ask.service import QAService
from qa.errors import QuestionSetError
from qa.eval.conversations import (
    ConversationSet,
    JudgedTurn,
    is_conversation_file,
    load_conversation_sets,
    run_conversations,
    shipped_conversation_files,
)
from qa.eval.gate import gate_verdict
from qa.eval.judging import Judged, judge
from qa.eval.metrics import DEEP_K, Evaluation, calibrate_threshold
from qa.eval.pipelines import Pipeline, ServicePipeline, TutorialPipeline
from qa.eval.questions import (
    EvidenceFinder,
    QuestionSet,
    corpus_texts,
    load_question_sets,
    shipped_question_files,
)
from qa.settings import Settings
from qa.text import fold

# `progress(name, total)` may return a bar with `update()` and `close()` (tqdm's interface).
Progress = Callable[[str, int], Any]


def evaluate(
    settings: Settings,
    question_files: Sequence[Path] | None = None,
    *,
    baseline: bool = False,
    calibrate: bool = False,
    service: QAService | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Validate the question files (the shipped sets by default), then run every question
    through the service (and the tutorial baseline), once each.

    Raises QuestionSetError before any question runs when a file breaks the format.
    """
    shipped = question_files is None
    if question_files is None:
        paths, conv_paths = shipped_question_files(), shipped_conversation_files()
    else:
        conv_paths = [p for p in question_files if is_conversation_file(p)]
        paths = [p for p in question_files if p not in conv_paths]
    finder = EvidenceFinder(corpus_texts(settings.seeds_dir))
    # Validated before the service is even built: a broken file costs no index load.
    problems: list[str] = []
    sets: list[QuestionSet] = []
    conversations: list[ConversationSet] = []
    try:
        sets = load_question_sets(paths, finder.documents)
    except QuestionSetError as exc:
        problems += exc.problems
    try:
        conversations = load_conversation_sets(conv_paths, finder.documents)
    except QuestionSetError as exc:
        problems += exc.problems
    if problems:
        raise QuestionSetError(problems)
    if service is None:
        service = QAService(settings)
    service.ready()
    service.ask("What is this corpus about?", settings.top_k)  # warm-up, so p95 is not the first
    system = ServicePipeline(service)
    turns = _converse_with_progress(system, conversations, finder, settings.top_k, progress)
    ev = Evaluation(
        sets=[s.name for s in sets] + [c.name for c in conversations],
        system=_run_with_progress(system, sets, finder, settings.top_k, progress)
        + [t.judged for t in turns],
        top_k=settings.top_k,
        min_score=service.min_score,
        extra={"build": service.index().build_id, "weights": service.ranker().weights.source},
        conversation_sets=[c.name for c in conversations],
        turn_kinds={(t.judged.question.set, t.judged.question.id): t.kind for t in turns},
    )
    histories = {(t.judged.question.set, t.judged.question.id): t.history for t in turns}
    ev.deep_ranks = deep_ranks(ev.system, system, finder, histories)
    if baseline:
        tutorial = TutorialPipeline(finder.documents, service.embedder)
        ev.baseline = _run_with_progress(tutorial, sets, finder, settings.top_k, progress) + [
            t.judged
            for t in _converse_with_progress(
                tutorial, conversations, finder, settings.top_k, progress
            )
        ]
    if calibrate:
        ev.calibration = calibrate_threshold(ev.system)
    # Only the shipped sets have accepted metrics to be held against.
    verdict = gate_verdict(ev) if shipped else None
    if verdict is not None:
        ev.extra["gate"] = verdict
    return ev


def run(
    pipeline: Pipeline,
    sets: Sequence[QuestionSet],
    finder: EvidenceFinder,
    top_k: int,
    progress: Callable[[], None] | None = None,
) -> list[Judged]:
    """Ask every question of every set, once, and judge each outcome."""
    # Folded once: every question counts the units holding its evidence (ndcg's ideal).
    units = [tuple(fold(t) for t in u) for u in pipeline.units()]
    judged = []
    for qs in sets:
        for q in qs.questions:
            t0 = time.perf_counter()
            outcome = pipeline.ask(q.question, top_k)
            ms = (time.perf_counter() - t0) * 1000
            keys = [fold(e) for e in q.evidence]
            relevant = sum(1 for u in units if any(k in t for t in u for k in keys))
            judged.append(judge(q, outcome, finder, ms, relevant))
            if progress:
                progress()
    return judged


def _run_with_progress(
    pipeline: Pipeline,
    sets: Sequence[QuestionSet],
    finder: EvidenceFinder,
    top_k: int,
    progress: Progress | None,
) -> list[Judged]:
    total = sum(len(s.questions) for s in sets)
    bar = progress(pipeline.name, total) if progress else None
    try:
        return run(pipeline, sets, finder, top_k, bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()


def deep_ranks(
    judged: Sequence[Judged],
    pipeline: Pipeline,
    finder: EvidenceFinder,
    histories: dict[tuple[str, str], tuple[Turn, ...]] | None = None,
) -> dict[tuple[str, str], int | None]:
    """(set, id) -> the evidence's rank among DEEP_K citations, for every answerable question
    whose citations miss reachable evidence: how far off the ranking was, for the diagnosis.
    A conversation turn is asked again after the same history."""
    out: dict[tuple[str, str], int | None] = {}
    for j in judged:
        if j.question.answerable and j.rank is None and j.relevant:
            key = (j.question.set, j.question.id)
            history = (histories or {}).get(key, ())
            deep = judge(j.question, pipeline.ask(j.question.question, DEEP_K, history), finder)
            out[key] = deep.rank
    return out


def _converse_with_progress(
    pipeline: Pipeline,
    sets: Sequence[ConversationSet],
    finder: EvidenceFinder,
    top_k: int,
    progress: Progress | None,
) -> list[JudgedTurn]:
    total = sum(len(c.turns) for s in sets for c in s.conversations)
    if not total:
        return []
    bar = progress(f"{pipeline.name} (conversations)", total) if progress else None
    try:
        return run_conversations(pipeline, sets, finder, top_k, bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
