"""Question sets -> per-question judgements -> metrics: the measuring instrument behind `qa eval`.

A question set is JSON Lines, one question per line (the format is a contract; see the README's
Evaluation section). Each question runs through a pipeline (the real `QAService.ask`, or the
tutorial baseline of `qa.eval.pipelines`) and what comes back is judged against the question's
evidence strings: exact substrings of the corpus, compared after `qa.text.fold`.

Empty denominators: hit@k, mrr, ndcg@5, sentence@1 and answer_f1 are None (JSON null) for a set
without answerable questions. For the no-answer pair, a 0/0 is 1.0 when the system could make no
mistake of that kind and 0.0 when the emptiness is itself the failure: precision with nothing
declared unanswerable is 1.0 only if nothing was unanswerable; recall with nothing unanswerable
is 1.0 (a false no-answer shows up in precision instead).
"""

from __future__ import annotations

import json
import math
import re
import string
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qa.errors import QuestionSetError
from qa.settings import Settings
from qa.text import Span, fold

SHIPPED_DIR = Settings().questions_dir
# The last accepted metrics of the shipped sets (`qa eval --write-baseline`).
ACCEPTED_FILE = SHIPPED_DIR / "baseline.json"

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
# The regression gate: these may not drop by more than TOLERANCE below the accepted values.
GATED = ("hit@5", "mrr", "no_answer_recall")
TOLERANCE = 0.02
# The calibration sweep over `Answer.support`.
SWEEP = tuple(round(0.30 + i * 0.01, 2) for i in range(51))
# How deep a missed question is asked again to say where its evidence ranks (the service's max).
DEEP_K = 20

# The service refuses longer questions (qa.ask.service.MAX_QUESTION_CHARS; a test keeps them equal).
MAX_QUESTION_CHARS = 1000

QUESTION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "question", "answer", "docs", "evidence"],
    "properties": {
        "id": {"type": "string", "pattern": r"^\S+$"},
        "question": {"type": "string", "pattern": r"\S", "maxLength": MAX_QUESTION_CHARS},
        "answer": {"type": ["string", "null"], "pattern": r"\S"},
        "docs": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^\S+$"},
            "uniqueItems": True,
        },
        "evidence": {
            "type": "array",
            "items": {"type": "string", "pattern": r"\S"},
            "uniqueItems": True,
        },
    },
    "if": {"properties": {"answer": {"type": "null"}}},
    "then": {"properties": {"docs": {"maxItems": 0}, "evidence": {"maxItems": 0}}},
    "else": {"properties": {"docs": {"minItems": 1}, "evidence": {"minItems": 1}}},
}


# --- the question-set format ----------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One line of a question set. `answer` None means the corpus cannot answer it."""

    id: str
    question: str
    answer: str | None
    docs: tuple[str, ...]
    evidence: tuple[str, ...]
    set: str = ""
    line: int = 0

    @property
    def answerable(self) -> bool:
        """Whether the corpus answers the question."""
        return self.answer is not None


@dataclass(frozen=True)
class QuestionSet:
    """A loaded, validated question file; `name` is the file stem."""

    name: str
    path: Path
    questions: tuple[Question, ...]




def shipped_question_files() -> list[Path]:
    """The shipped question sets, in name order."""
    return sorted(SHIPPED_DIR.glob("*.jsonl"))


def load_question_sets(paths: Sequence[Path], documents: Mapping[str, str]) -> list[QuestionSet]:
    """Load and validate question files against the corpus (`documents`: id -> raw text).

    Every problem in every file is collected before anything is raised, so one run shows them
    all; nothing is returned unless all files are valid.
    """
    finder = EvidenceFinder(documents)
    problems: list[str] = []
    sets: list[QuestionSet] = []
    seen_names: dict[str, Path] = {}
    for path in paths:
        name = path.stem
        if name == "overall":
            problems.append(f"{path}: 'overall' is reserved for all sets together; rename the file")
            continue
        if name in seen_names:
            problems.append(
                f"{path}: a set named {name!r} is already loaded from {seen_names[name]}"
            )
            continue
        seen_names[name] = path
        questions, file_problems = _read_question_file(path, name, finder)
        problems += file_problems
        sets.append(QuestionSet(name, path, tuple(questions)))
    if problems:
        raise QuestionSetError(problems)
    return sets


def _read_question_file(
    path: Path, name: str, finder: EvidenceFinder
) -> tuple[list[Question], list[str]]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(QUESTION_SCHEMA)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], [f"{path}: no such file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot be read as UTF-8 text ({exc})"]
    questions: list[Question] = []
    problems: list[str] = []
    ids: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            problems += [f"{where}: {_schema_message(e)}" for e in errors]
            continue
        q = Question(
            id=obj["id"],
            question=obj["question"],
            answer=obj["answer"],
            docs=tuple(obj["docs"]),
            evidence=tuple(obj["evidence"]),
            set=name,
            line=n,
        )
        if q.id in ids:
            problems.append(f"{where}: duplicate id {q.id!r} (first on line {ids[q.id]})")
            continue
        ids[q.id] = n
        problems += [f"{where}: {p}" for p in _corpus_problems(q, finder)]
        questions.append(q)
    if not questions and not problems:
        problems.append(f"{path}: no questions")
    return questions, problems


def _schema_message(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    schema_path = list(error.absolute_schema_path)
    if "then" in schema_path:
        message += " (answer is null, so docs and evidence must be empty)"
    elif "else" in schema_path:
        message += " (an answerable question needs at least one doc and one evidence string)"
    elif error.validator == "pattern":
        message = f"{error.instance!r} is empty or contains white space where none is allowed"
    return f"{path}: {message}" if path else message


def _corpus_problems(q: Question, finder: EvidenceFinder) -> list[str]:
    problems = [f"docs: unknown document {d!r}" for d in q.docs if d not in finder.documents]
    known = [d for d in q.docs if d in finder.documents]
    found_in: dict[str, list[str]] = {}
    for e in q.evidence:
        where = finder.docs_containing(e)
        found_in[e] = where
        if not where:
            problems.append(f"evidence {_short(e)!r} occurs in no document")
        elif known and not set(where) & set(known):
            problems.append(
                f"evidence {_short(e)!r} occurs in {', '.join(where)}, none of which is in docs"
            )
    for d in known:
        if not any(d in where for where in found_in.values()):
            problems.append(f"docs: {d} contains none of the evidence strings")
    return problems


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- finding evidence -----------------------------------------------------------------------


def fold_with_offsets(text: str) -> tuple[str, list[int]]:
    """`fold(text)` and, for each of its characters, the index in `text` it comes from."""
    out: list[str] = []
    origin: list[int] = []
    space_at: int | None = None
    for i, ch in enumerate(text):
        if ch.isspace():
            if space_at is None:
                space_at = i
            continue
        folded = fold(ch)
        if not folded:
            continue
        if space_at is not None and out:
            out.append(" ")
            origin.append(space_at)
        space_at = None
        out.extend(folded)
        origin.extend([i] * len(folded))
    return "".join(out), origin


class EvidenceFinder:
    """Finds evidence strings in the corpus, folded for matching, with exact raw offsets."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        self.documents = dict(documents)
        self._folded: dict[str, tuple[str, list[int]]] = {}

    def _fold(self, doc_id: str) -> tuple[str, list[int]]:
        if doc_id not in self._folded:
            self._folded[doc_id] = fold_with_offsets(self.documents[doc_id])
        return self._folded[doc_id]

    def docs_containing(self, evidence: str) -> list[str]:
        """Ids of the documents in which `evidence` occurs (folded)."""
        key = fold(evidence)
        return [d for d in self.documents if key and key in self._fold(d)[0]]

    def occurrences(self, doc_id: str, evidence: str) -> list[Span]:
        """Raw (start, end) of every occurrence of `evidence` in the document."""
        key = fold(evidence)
        if not key or doc_id not in self.documents:
            return []
        folded, origin = self._fold(doc_id)
        spans = []
        i = folded.find(key)
        while i != -1:
            spans.append((origin[i], origin[i + len(key) - 1] + 1))
            i = folded.find(key, i + 1)
        return spans


def holds_evidence(texts: Iterable[str], evidence: Iterable[str]) -> bool:
    """True when one of `texts` contains one of the evidence strings (both folded)."""
    keys = [fold(e) for e in evidence]
    return any(k and k in fold(t) for t in texts for k in keys)


# --- what a pipeline returns, and how it is judged ------------------------------------------


@dataclass(frozen=True)
class Cited:
    """One citation as the judge sees it. `texts` holds the cited text first, then the text at
    each merged duplicate location (they all count as the same citation)."""

    doc_id: str
    section: str
    start: int
    end: int
    texts: tuple[str, ...]
    highlight: Span | None

    @property
    def highlight_text(self) -> str:
        """The first highlighted span's text (the whole citation when nothing is highlighted)."""
        if self.highlight is None:
            return self.texts[0]
        a, b = self.highlight
        return self.texts[0][a - self.start : b - self.start]


@dataclass(frozen=True)
class Outcome:
    """What a pipeline answered to one question."""

    answerable: bool
    answer: str
    cited: tuple[Cited, ...]
    support: float = 0.0


class Pipeline(Protocol):
    """Something that answers questions: the real service, or the tutorial baseline."""

    name: str

    def units(self) -> Sequence[tuple[str, ...]]:
        """The texts of every retrievable unit (a unit's merged duplicates in one tuple)."""
        ...

    def ask(self, question: str, top_k: int) -> Outcome:
        """Answer one question with up to `top_k` citations."""
        ...


@dataclass(frozen=True)
class Judged:
    """One question's outcome, judged against its evidence."""

    question: Question
    outcome: Outcome
    ms: float
    # For each citation in rank order, whether it holds the evidence.
    supporting: tuple[bool, ...]
    sentence_hit: bool
    answer_f1: float
    # How many of the pipeline's units hold the evidence: the ideal ranking for ndcg.
    relevant: int

    @property
    def rank(self) -> int | None:
        """1-based rank of the first supporting citation, or None."""
        return self.supporting.index(True) + 1 if True in self.supporting else None

    @property
    def predicted_unanswerable(self) -> bool:
        """Whether the pipeline declared the question unanswerable."""
        return not self.outcome.answerable


def judge(
    q: Question, outcome: Outcome, finder: EvidenceFinder, ms: float = 0.0, relevant: int = 0
) -> Judged:
    """Judge one outcome: which citations support, the first highlight, the answer's F1."""
    supporting = tuple(holds_evidence(c.texts, q.evidence) for c in outcome.cited)
    sentence_hit = False
    if q.answerable and outcome.cited and outcome.cited[0].highlight is not None:
        first = outcome.cited[0]
        a, b = first.highlight  # type: ignore[misc]
        sentence_hit = any(
            s < b and a < e for ev in q.evidence for s, e in finder.occurrences(first.doc_id, ev)
        )
    f1 = 0.0
    if q.answer is not None and outcome.answerable:
        f1 = token_f1(strip_markers(outcome.answer), q.answer)
    return Judged(q, outcome, ms, supporting, sentence_hit, f1, max(relevant, sum(supporting)))


def run(
    pipeline: Pipeline,
    sets: Sequence[QuestionSet],
    finder: EvidenceFinder,
    top_k: int,
    progress: Callable[[], None] | None = None,
) -> list[Judged]:
    """Ask every question of every set, once, and judge each outcome."""
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


# --- metrics --------------------------------------------------------------------------------

_MARKER = re.compile(r"\s*\[\d+\]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def strip_markers(answer: str) -> str:
    """An answer without its `[n]` citation markers."""
    return _MARKER.sub("", answer).strip()


def _squad_tokens(text: str) -> list[str]:
    text = fold(text)
    text = "".join(
        " " if ch in string.punctuation or unicodedata.category(ch).startswith("P") else ch
        for ch in text
    )
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 (lower case, no punctuation, no articles) of two answers."""
    pred, ref = _squad_tokens(prediction), _squad_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


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
    """The p-th percentile with linear interpolation (numpy's default)."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


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


# --- a whole evaluation ---------------------------------------------------------------------


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

    def metrics(self, judged: Sequence[Judged] | None = None) -> dict[str, Any]:
        """{"metrics": overall, "sets": {name: metrics}} of the system or the given list."""
        judged = self.system if judged is None else judged
        return {
            "metrics": compute_metrics(judged),
            "sets": {
                s: compute_metrics([j for j in judged if j.question.set == s]) for s in self.sets
            },
        }

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
        ]
        out["top_k"] = self.top_k
        out["min_score"] = self.min_score
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
        notes.append("retrieval and highlight right")
    return "; ".join(notes) or None


# --- the accepted metrics and the regression gate -------------------------------------------


def read_accepted(path: Path = ACCEPTED_FILE) -> dict[str, Any]:
    """The last accepted metrics of the shipped sets."""
    return json.loads(path.read_text(encoding="utf-8"))


def write_accepted(evaluation: Evaluation, path: Path = ACCEPTED_FILE) -> None:
    """Record the evaluation's metrics as the accepted ones."""
    data = evaluation.metrics()
    data["counts"] = evaluation.counts()
    data["top_k"] = evaluation.top_k
    data["min_score"] = evaluation.min_score
    data["gate"] = {"metrics": list(GATED), "tolerance": TOLERANCE}
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def regressions(
    current: Mapping[str, Any], accepted: Mapping[str, Any], tolerance: float = TOLERANCE
) -> list[str]:
    """Gated overall metrics that fell more than `tolerance` below the accepted ones."""
    out = []
    for name in GATED:
        now, then = current["metrics"].get(name), accepted["metrics"].get(name)
        if then is not None and (now is None or now < then - tolerance):
            out.append(f"{name} fell from {then:.4f} to {now} (tolerance {tolerance})")
    return out


# --- the system under test ------------------------------------------------------------------


class ServicePipeline:
    """The real thing: `QAService.ask`, the very call the API and the CLI make."""

    name = "system"

    def __init__(self, service: Any) -> None:
        self.service = service

    def _text(self, doc_id: str, start: int, end: int) -> str:
        return str(self.service.index().documents[doc_id]["text"][start:end])

    def units(self) -> list[tuple[str, ...]]:
        """Every passage of the serving build, with the text of its merged duplicates."""
        return [
            (p.text, *(self._text(loc.doc_id, loc.start, loc.end) for loc in p.also_at))
            for p in self.service.index().passages
        ]

    def ask(self, question: str, top_k: int) -> Outcome:
        """One `QAService.ask`, seen as an Outcome."""
        answer = self.service.ask(question, top_k)
        cited = tuple(
            Cited(
                doc_id=c.doc_id,
                section=c.section,
                start=c.start,
                end=c.end,
                texts=(c.text, *(self._text(loc.doc_id, loc.start, loc.end) for loc in c.also_at)),
                highlight=tuple(c.highlights[0]) if c.highlights else None,
            )
            for c in answer.citations
        )
        return Outcome(answer.answerable, answer.answer, cited, answer.support)


# --- one whole run --------------------------------------------------------------------------


def corpus_texts(seeds_dir: Path) -> dict[str, str]:
    """Raw text of every readable corpus file, by document id (unreadable files are left out,
    as `qa index` leaves them out)."""
    from qa.corpus import decode_article, iter_corpus_files
    from qa.errors import CorpusFileError

    texts = {}
    for p in iter_corpus_files(seeds_dir):
        try:
            texts[p.stem] = decode_article(p.read_bytes())
        except (OSError, CorpusFileError):
            continue
    return texts


def evaluate(
    settings: Any,
    question_files: Sequence[Path] | None = None,
    *,
    baseline: bool = False,
    calibrate: bool = False,
    service: Any = None,
    progress: Callable[[str, int], Any] | None = None,
) -> Evaluation:
    """Validate the question files (the shipped sets by default), then run every question
    through the service (and the tutorial baseline), once each.

    Raises QuestionSetError before any question runs when a file breaks the format.
    `progress(name, total)` may return a bar with `update()` and `close()`.
    """
    shipped = question_files is None
    paths = shipped_question_files() if question_files is None else list(question_files)
    finder = EvidenceFinder(corpus_texts(settings.seeds_dir))
    sets = load_question_sets(paths, finder.documents)
    if service is None:
        from qa.ask.service import QAService

        service = QAService(settings)
    service.ready()
    service.ask("What is this corpus about?", settings.top_k)  # warm-up, so p95 is not the first
    total = sum(len(s.questions) for s in sets)
    system = ServicePipeline(service)

    def timed_run(pipeline: Pipeline) -> list[Judged]:
        bar = progress(pipeline.name, total) if progress else None
        try:
            return run(pipeline, sets, finder, settings.top_k, bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()

    ev = Evaluation(
        sets=[s.name for s in sets],
        system=timed_run(system),
        top_k=settings.top_k,
        min_score=settings.min_score,
        extra={"build": service.index().build_id},
    )
    for j in ev.system:
        if j.question.answerable and j.rank is None and j.relevant:
            deep = judge(j.question, system.ask(j.question.question, DEEP_K), finder)
            ev.deep_ranks[(j.question.set, j.question.id)] = deep.rank
    if baseline:
        from qa.eval.pipelines import TutorialPipeline

        ev.baseline = timed_run(TutorialPipeline(finder.documents, service.embedder))
    if calibrate:
        ev.calibration = calibrate_threshold(ev.system)
    if shipped and ACCEPTED_FILE.exists():
        accepted = read_accepted()
        if accepted.get("top_k") == ev.top_k:
            ev.extra["gate"] = {
                "accepted": str(ACCEPTED_FILE),
                "regressions": regressions(ev.metrics(), accepted),
            }
    return ev
