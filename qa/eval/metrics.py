"""Judged questions -> numbers: metrics per set and overall, diagnosis, the threshold sweep.

`Evaluation` holds the judged questions of one run and is what the reports, the regression
gate and `qa eval --json` read; it lives here, beside the aggregation it performs, so none of
them needs the orchestration (which imports the service) to read a result.

Empty denominators: hit@k, mrr, ndcg@5, sentence@1 and answer_f1 are None (JSON null) for a set
without answerable questions. For the no-answer pair, a 0/0 is 1.0 when the system could make no
mistake of that kind and 0.0 when the emptiness is itself the failure: precision with nothing
declared unanswerable is 1.0 only if nothing was unanswerable; recall with nothing unanswerable
is 1.0 (a false no-answer shows up in precision instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qa.eval.judging import Judged
from qa.eval.questions import split_of

METRICS = (
    "hit@1",
    "hit@3",
    "hit@5",
    "mrr",
    "ndcg@5",
    "sentence@1",
    "no_answer_precision",
    "no_answer_recall",
    "answer_f1",
    "p50_ms",
    "p95_ms",
)
# The calibration sweep over `Answer.support` (the probability that the articles answer).
SWEEP = tuple(round(0.05 + i * 0.01, 2) for i in range(91))
# Bins of the reliability diagram.
RELIABILITY_BINS = 10
# How deep a missed question is asked again to say where its evidence ranks (the service's max).
DEEP_K = 20


# --- metric math ----------------------------------------------------------------------------


def ndcg(supporting: Sequence[bool], relevant: int, k: int = 5) -> float:
    """Binary-gain nDCG@k; the ideal ranking puts min(k, relevant) supporting units first."""
    dcg = sum(1 / math.log2(i + 2) for i, s in enumerate(supporting[:k]) if s)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, relevant)))
    return dcg / ideal if ideal else 0.0


def no_answer_scores(pairs: Iterable[tuple[bool, bool]]) -> tuple[float, float]:
    """Precision and recall of "unanswerable" from (truly unanswerable, declared unanswerable)
    pairs; 0/0 as the module docstring says."""
    pairs = list(pairs)
    truly = sum(1 for t, _ in pairs if t)
    declared = sum(1 for _, d in pairs if d)
    both = sum(1 for t, d in pairs if t and d)
    precision = both / declared if declared else (1.0 if truly == 0 else 0.0)
    recall = both / truly if truly else 1.0
    return precision, recall


def f1_of(precision: float, recall: float) -> float:
    """Harmonic mean, 0 when both are 0."""
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile, linearly interpolated (numpy's default); 0.0 for no values, so a
    latency over no questions reads 0 ms instead of failing the whole report."""
    return float(np.percentile(values, p)) if len(values) else 0.0


def compute_metrics(judged: Sequence[Judged]) -> dict[str, float | None]:
    """The metrics of `METRICS` over some judged questions."""
    answerable = [j for j in judged if j.question.answerable]

    def mean(values: Iterable[float]) -> float | None:
        vals = list(values)
        return sum(vals) / len(vals) if vals else None

    def hit(k: int) -> float | None:
        return mean(1.0 if j.rank is not None and j.rank <= k else 0.0 for j in answerable)

    precision, recall = no_answer_scores(
        (not j.question.answerable, j.predicted_unanswerable) for j in judged
    )
    ms = [j.ms for j in judged]
    values: dict[str, float | None] = {
        "hit@1": hit(1),
        "hit@3": hit(3),
        "hit@5": hit(5),
        "mrr": mean(1 / j.rank if j.rank else 0.0 for j in answerable),
        "ndcg@5": mean(ndcg(j.supporting, j.relevant, 5) for j in answerable),
        "sentence@1": mean(1.0 if j.sentence_hit else 0.0 for j in answerable),
        "no_answer_precision": precision,
        "no_answer_recall": recall,
        "answer_f1": mean(j.answer_f1 for j in answerable),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
    }
    return {k: (round(v, 4) if v is not None else None) for k, v in values.items()}


def answerability_calibration(judged: Sequence[Judged]) -> dict[str, Any]:
    """How well `support`, the probability that the articles answer the question, is
    calibrated: the Brier score and a reliability diagram (per bin of predicted probability,
    the share of questions the articles really answer)."""
    if not judged:
        return {"brier": None, "bins": []}
    p = np.array([j.outcome.support for j in judged], dtype=np.float64)
    y = np.array([float(j.question.answerable) for j in judged])
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, RELIABILITY_BINS - 1)
    bins = [
        {
            "from": round(float(edges[b]), 2),
            "to": round(float(edges[b + 1]), 2),
            "questions": int(np.sum(which == b)),
            "predicted": round(float(p[which == b].mean()), 4),
            "observed": round(float(y[which == b].mean()), 4),
        }
        for b in range(RELIABILITY_BINS)
        if np.any(which == b)
    ]
    return {"brier": round(float(np.mean((p - y) ** 2)), 4), "bins": bins}


# Turn kinds that stand alone; every other kind leans on the conversation.
STANDALONE = frozenset({"standalone", "switch", "first"})


def answer_figures(judged: Sequence[Judged]) -> dict[str, Any]:
    """Short-answer exact match and token F1 on factoid questions (a missing short answer
    scores 0), and how often the answer text itself holds the evidence (answerable ones)."""
    factoid = [j for j in judged if j.short_f1 is not None]
    given = [j for j in factoid if j.outcome.short_answer]
    with_evidence = [j for j in judged if j.answer_has_evidence is not None]

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    return {
        "factoid": len(factoid),
        "short_answer_em": mean([j.short_em or 0.0 for j in factoid]),
        "short_answer_f1": mean([j.short_f1 or 0.0 for j in factoid]),
        "short_answer_given": mean([1.0 if j.outcome.short_answer else 0.0 for j in factoid]),
        "short_answer_f1_when_given": mean([j.short_f1 or 0.0 for j in given]),
        "answer_has_evidence": mean([1.0 if j.answer_has_evidence else 0.0 for j in with_evidence]),
    }


# --- the calibration sweep ------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationPoint:
    """No-answer quality if the answerability threshold were `threshold`."""

    threshold: float
    precision: float
    recall: float
    f1: float
    declared: int


@dataclass(frozen=True)
class Calibration:
    """A threshold sweep over recorded support scores, and the threshold it recommends."""

    points: tuple[CalibrationPoint, ...]
    best: CalibrationPoint
    # Every threshold reaching the best F1 (the recommendation is the middle one).
    tied: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "best": _point_dict(self.best),
            "tied": list(self.tied),
            "points": [_point_dict(p) for p in self.points],
        }


def _point_dict(p: CalibrationPoint) -> dict[str, Any]:
    return {
        "threshold": p.threshold,
        "precision": round(p.precision, 4),
        "recall": round(p.recall, 4),
        "f1": round(p.f1, 4),
        "declared": p.declared,
    }


def calibrate_threshold(
    judged: Sequence[Judged], thresholds: Sequence[float] = SWEEP
) -> Calibration:
    """Re-threshold the recorded support scores (no question is asked again).

    At threshold t a question is declared unanswerable when it has no citation or its support
    is below t, exactly as `compose` decides. Among thresholds tied on the best no-answer F1, the
    middle one is recommended, for the widest margin on both sides.
    """
    points = []
    for t in thresholds:
        pairs = [
            (not j.question.answerable, not j.outcome.cited or j.outcome.support < t)
            for j in judged
        ]
        p, r = no_answer_scores(pairs)
        points.append(CalibrationPoint(t, p, r, f1_of(p, r), sum(1 for _, d in pairs if d)))
    top = max(p.f1 for p in points)
    tied = [p for p in points if math.isclose(p.f1, top)]
    best = tied[(len(tied) - 1) // 2]
    return Calibration(tuple(points), best, tuple(p.threshold for p in tied))


# --- diagnosis ------------------------------------------------------------------------------


def diagnose(j: Judged, min_score: float, deep_rank: int | None = None) -> str | None:
    """What went wrong with one question, in a line; None when nothing did.

    `deep_rank` is where the evidence ranked when the question was asked again for DEEP_K
    citations (only done for questions whose top_k citations miss it).

    An answerable question fails when it is declared unanswerable, when no citation holds the
    evidence, when the evidence is not first, or when the first highlight misses it; an
    unanswerable one fails when it is answered.
    """
    q, o = j.question, j.outcome
    s = f"support {o.support:.3f}"
    if not q.answerable:
        return None if not o.answerable else f"false answer ({s} >= {min_score:.2f})"
    notes = []
    if o.answerable is False:
        notes.append(f"false no-answer ({s} < {min_score:.2f})")
    deeper = (
        f"evidence at rank {deep_rank} of {DEEP_K}"
        if deep_rank
        else f"evidence not in the top {DEEP_K}"
    )
    if j.relevant == 0:
        notes.append("unreachable: no indexed passage contains the evidence")
    elif j.rank is None:
        first = o.cited[0].doc_id if o.cited else None
        if first is None:
            notes.append("nothing cited")
        elif any(c.doc_id in q.docs for c in o.cited):
            notes.append(f"right doc, wrong passage ({deeper})")
        else:
            notes.append(f"wrong doc: no citation from {', '.join(q.docs)} ({deeper})")
    elif j.rank > 1:
        notes.append(f"evidence ranked {j.rank}, not first")
    elif not j.sentence_hit:
        notes.append("right passage (first), wrong sentence highlighted")
    elif notes:
        # Only a false no-answer is wrong: say that retrieval itself was fine.
        notes.append("retrieval and highlight right")
    return "; ".join(notes) or None


# --- one run's result -----------------------------------------------------------------------


@dataclass
class Evaluation:
    """The judged questions of the system (and optionally the baseline) over some sets."""

    sets: list[str]
    system: list[Judged]
    top_k: int
    min_score: float
    baseline: list[Judged] | None = None
    calibration: Calibration | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # (set, id) -> rank of the evidence among DEEP_K citations, for the questions whose top_k
    # citations miss it (None: not there either).
    deep_ranks: dict[tuple[str, str], int | None] = field(default_factory=dict)
    # The conversation sets among `sets`, and each of their turns' kind ((set, id) -> kind).
    conversation_sets: list[str] = field(default_factory=list)
    turn_kinds: dict[tuple[str, str], str] = field(default_factory=dict)

    def metrics(self, judged: Sequence[Judged] | None = None) -> dict[str, Any]:
        """{"metrics": overall, "sets": {name: metrics}} of the system or the given list.

        Overall and per split, single questions only when there are any (conversation turns
        have their own figures, `conversations()`), so accepted metrics stay comparable.
        """
        judged = self.system if judged is None else judged
        single = [j for j in judged if j.question.set not in self.conversation_sets]
        pool = single or list(judged)
        out: dict[str, Any] = {
            "metrics": compute_metrics(pool),
            "sets": {
                s: compute_metrics([j for j in judged if j.question.set == s]) for s in self.sets
            },
        }
        # dev and heldout side by side: their gap measures overfitting to dev.
        splits = sorted({sp for s in self.sets if (sp := split_of(s))})
        if splits:
            out["splits"] = {
                sp: compute_metrics([j for j in pool if split_of(j.question.set) == sp])
                for sp in splits
            }
        return out

    def answers(self) -> dict[str, Any]:
        """Short-answer and answer-text figures, overall, per set and per split."""
        groups: dict[str, list[Judged]] = {"overall": list(self.system)}
        for s in self.sets:
            groups[s] = [j for j in self.system if j.question.set == s]
        for sp in sorted({sp for s in self.sets if (sp := split_of(s))}):
            groups[sp] = [j for j in self.system if split_of(j.question.set) == sp]
        return {name: answer_figures(js) for name, js in groups.items()}

    def conversations(self) -> dict[str, Any] | None:
        """Conversation turns: the same metrics over all turns, over follow-up turns and over
        each kind of turn, per split and overall; None when no conversation set ran."""
        if not self.conversation_sets:
            return None
        turns = [j for j in self.system if j.question.set in self.conversation_sets]

        def kind(j: Judged) -> str:
            return self.turn_kinds.get((j.question.set, j.question.id), "later")

        def block(js: list[Judged]) -> dict[str, Any]:
            followups = [j for j in js if kind(j) not in STANDALONE]
            return {
                "turns": len(js),
                "metrics": compute_metrics(js),
                "followup": compute_metrics(followups),
                "kinds": {
                    k: {**compute_metrics(g), "turns": len(g)}
                    for k in sorted({kind(j) for j in js})
                    if (g := [j for j in js if kind(j) == k])
                },
                "answers": answer_figures(js),
            }

        out: dict[str, Any] = {"overall": block(turns)}
        for sp in sorted({sp for s in self.conversation_sets if (sp := split_of(s))}):
            out[sp] = block([j for j in turns if split_of(j.question.set) == sp])
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """Questions and answerable questions per set and overall."""
        out = {}
        for name in [*self.sets, "overall"]:
            js = [j for j in self.system if name == "overall" or j.question.set == name]
            out[name] = {
                "questions": len(js),
                "answerable": sum(1 for j in js if j.question.answerable),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        """The `qa eval --json` object."""
        out = self.metrics()
        out["questions"] = [
            {
                "id": j.question.id,
                "set": j.question.set,
                "rank": j.rank,
                "answerable_predicted": j.outcome.answerable,
                "sentence_hit": j.sentence_hit,
                "ms": round(j.ms, 2),
            }
            for j in self.system
        ]
        out["baseline"] = self.metrics(self.baseline) if self.baseline is not None else None
        out["counts"] = self.counts()
        out["failures"] = [
            {"id": j.question.id, "set": j.question.set, "diagnosis": why}
            for j, why in self.failures()
            if split_of(j.question.set) != "heldout"  # counted in the metrics, never read
        ]
        out["answers"] = self.answers()
        conversations = self.conversations()
        if conversations is not None:
            out["conversations"] = conversations
        out["top_k"] = self.top_k
        out["min_score"] = self.min_score
        out["answerability"] = answerability_calibration(self.system)
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        out.update(self.extra)
        return out

    def failures(self) -> list[tuple[Judged, str]]:
        """Every question the system got wrong, with a one-line diagnosis."""
        out = []
        for j in self.system:
            why = diagnose(j, self.min_score, self.deep_ranks.get((j.question.set, j.question.id)))
            if why:
                out.append((j, why))
        return out
