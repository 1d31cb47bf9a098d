"""`qa train`: learn the ranking policy's four models on the dev question sets.

For every dev question and dev conversation turn (a follow-up resolved against the earlier
turns, and favouring the article the last one cited, as at query time), its candidates are
described exactly as at query time (qa.ask.ranking) and labelled from the question's evidence:
a sentence is right when it overlaps an evidence occurrence, a passage when it holds the
evidence, the question "is answerable" when the articles answer it, and the top passage
"answers" when it also holds the evidence. Four logistic regressions (scikit-learn, features
standardised, the regularisation chosen by cross-validation grouped by question) are learned in
turn, since each model's output is a feature of the next, and written to weights.json with what
they were trained on. The same dev files and index give the same file, byte for byte."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.ask.features import PASSAGE_FEATURES, SENTENCE_FEATURES
from qa.ask.followup import MAX_TURNS, Resolved, Turn, resolve
from qa.ask.query import Query
from qa.ask.ranking import (
    ANSWER_FEATURES,
    LinearModel,
    Ranker,
    Rerank,
    Scored,
    Weights,
)
from qa.ask.service import QAService
from qa.eval.conversations import (
    ConversationSet,
    load_conversation_sets,
    shipped_conversation_files,
)
from qa.eval.questions import (
    SPLITS,
    EvidenceFinder,
    Question,
    corpus_texts,
    holds_evidence,
    load_question_sets,
    shipped_question_files,
)
from qa.settings import Settings

# Regularisation strengths tried by cross-validation (inverse: smaller is simpler).
C_GRID = (0.01, 0.1, 1.0, 10.0)
FOLDS = 5
TOP_K = 5
# Re-reading by the cross-encoder: the margins and weights tried, and the largest share of
# questions it may re-read (under half, so the median question never waits for it).
REREAD_MARGINS = (0.5, 1.0, 2.0, 3.0, 5.0)
REREAD_WEIGHTS = (0.5, 1.0, 2.0, 3.0)
# At most a quarter re-read: the median of the rest is then far from the slow ones. (With
# 39% re-read, `qa bench`'s ask p50 rose to 0.58 of one reference embedding, over its 0.5 bar;
# with 20%, 0.49.)
MAX_REREAD_SHARE = 0.25


@dataclass(frozen=True)
class Example:
    """One dev question or conversation turn, read and embedded once."""

    question: Question
    query: Query
    qvec: np.ndarray
    prior_docs: tuple[str, ...] = ()  # a follow-up's: the documents the last turn cited


def dev_files(settings: Settings) -> list[Path]:
    """The shipped dev sets (never heldout: it is scored, not learned from)."""
    return [p for p in shipped_question_files() if p.parent.name == SPLITS[0]]


def dev_conversation_files() -> list[Path]:
    """The shipped dev conversation sets."""
    return [p for p in shipped_conversation_files() if p.parent.name == SPLITS[0]]


def conversation_turns(
    sets: Sequence[ConversationSet], finder: EvidenceFinder
) -> list[tuple[Question, Resolved]]:
    """Every turn of the conversations, resolved against the earlier turns as if each had been
    answered right: its evidence as the answer, the evidence's first places as the citations.
    (At run time the history holds the system's own answers, which are sometimes wrong.)"""
    out = []
    for cs in sets:
        for conv in cs.conversations:
            history: list[Turn] = []
            for q in conv.turns:
                out.append((q, resolve(q.question, history[-MAX_TURNS:])))
                cited = []
                for ev in q.evidence:
                    places = [(d, *sp) for d in q.docs for sp in finder.occurrences(d, ev)]
                    cited += places[:1]
                history.append(Turn(q.question, " ".join(q.evidence), tuple(cited)))
    return out


def train(
    settings: Settings,
    files: Sequence[Path] | None = None,
    service: QAService | None = None,
    say: Callable[[str], None] = lambda _m: None,
    conversations: Sequence[Path] | None = None,
) -> dict[str, Any]:
    """Learn the four models on `files` (the dev sets) and the turns of `conversations` (the
    dev conversation sets) and return the weights' JSON form."""
    files = list(files) if files is not None else dev_files(settings)
    conversations = list(conversations) if conversations is not None else dev_conversation_files()
    finder = EvidenceFinder(corpus_texts(settings.seeds_dir))
    sets = load_question_sets(files, finder.documents)
    turns = conversation_turns(load_conversation_sets(conversations, finder.documents), finder)
    questions = [q for s in sets for q in s.questions]
    # A service of its own answers with blank weights: the committed file may name features
    # the code no longer computes, which is what training is about to fix.
    service = service or QAService(settings, weights=Weights.blank())
    # Sentence features do not depend on any weights, so training starts from none at all.
    base = Ranker(service.index(), Weights.blank())
    texts = [q.question for q in questions] + [r.text for _, r in turns]
    priors = [()] * len(questions) + [r.docs for _, r in turns]
    asked = questions + [q for q, _ in turns]
    queries = [base.parse_query(t) for t in texts]
    vectors = service.embedder.encode([q.embed for q in queries])
    examples = [
        Example(q, qu, v, p) for q, qu, v, p in zip(asked, queries, vectors, priors, strict=True)
    ]
    say(
        f"{len(questions)} dev questions from {', '.join(str(p) for p in files)}; "
        f"{len(turns)} conversation turns from {', '.join(str(p) for p in conversations)}"
    )

    x, y, g = _sentence_data(base, examples, finder)
    sentence, s_cv = _fit_ranking(x, y, g, SENTENCE_FEATURES)
    say(f"sentence model: {len(y)} sentences, {int(y.sum())} right, C={s_cv['C']}")
    ranker = Ranker(base.build, _with(base.weights, sentence=sentence))
    x, y, g = _passage_data(ranker, examples, finder)
    passage, p_cv = _fit_ranking(x, y, g, PASSAGE_FEATURES)
    say(f"passage model: {len(y)} candidates, {int(y.sum())} right, C={p_cv['C']}")
    ranker = Ranker(base.build, _with(ranker.weights, passage=passage))
    rerank, r_cv = _choose_rerank(ranker, examples, finder)
    say(
        f"re-reading: weight {rerank.weight}, margin {rerank.margin}: {r_cv['share']:.0%} of dev "
        f"questions re-read, top passage right {r_cv['before']} -> {r_cv['after']} of {r_cv['n']}"
    )
    ranker = Ranker(base.build, _with(ranker.weights, rerank=rerank))
    x, y, answerable = _answer_data(ranker, examples, finder)
    # "Not in the articles" says the articles do not answer: learnt as that, so a question
    # they answer is not declined for a retrieval miss; which passage answers is the top model's.
    answer, a_cv = _fit(x, answerable.astype(float), np.arange(len(y)), ANSWER_FEATURES)
    threshold = _threshold(a_cv["held_out_probability"], y, answerable)
    top, t_cv = _fit(
        x[answerable], y[answerable], np.arange(int(answerable.sum())), ANSWER_FEATURES
    )
    say(
        f"answerability model: {len(y)} questions, {int(answerable.sum())} answerable, "
        f"threshold {threshold}; top model: {int(y.sum())} answered by the top passage"
    )
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files + conversations)).hexdigest()
    return {
        "source": f"qa train on {len(questions)} dev questions and {len(turns)} conversation "
        f"turns ({digest[:12]})",
        "trained_on": [str(p) for p in files + conversations],
        "build": base.build.build_id,
        "threshold": threshold,
        "sentence": _model_json(sentence, s_cv),
        "passage": _model_json(passage, p_cv),
        "answerable": _model_json(answer, a_cv),
        "top": _model_json(top, t_cv),
        "rerank": {**rerank.to_dict(), **r_cv},
    }


def write_weights(weights: dict[str, Any], path: Path) -> None:
    """Write the weights file (stable key order and rounding: the same input, the same bytes)."""
    path.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")


def _with(w: Weights, **parts: Any) -> Weights:
    return replace(w, **parts, source="training")


def _choose_rerank(
    ranker: Ranker, examples: Sequence[Example], finder: EvidenceFinder
) -> tuple[Rerank, dict[str, Any]]:
    """The re-reading (weight, margin) under which the most dev questions get a right top
    passage (then the best mean reciprocal rank, then the fewest re-read), among margins that
    re-read at most MAX_REREAD_SHARE of the questions, so that the median question never
    waits for the cross-encoder. Each is tried through `Ranker.order`, as at query time (the
    cross-encoder keeps its scores, so each pair is read once)."""
    leads, cases = [], []
    for ex in examples:
        scored = ranker.score(ex.query, ex.qvec, prior_docs=ex.prior_docs)
        if scored is None:
            continue
        s, _ = scored
        top2 = np.sort(s.passage_scores)[::-1][:2]
        leads.append(float(top2[0] - top2[1]) if len(top2) > 1 else np.inf)
        if ex.question.answerable:
            texts = [_texts(ranker, int(r), finder) for r in s.rows.tolist()]
            right = np.array([holds_evidence(t, ex.question.evidence) for t in texts])
            if right.any():  # else no order helps
                cases.append((ex.query, s, right))
    lead = np.array(leads)

    def value(r: Rerank) -> tuple[int, float, float]:
        ranks = [int(np.flatnonzero(right[ranker.order(q, s, r)])[0]) for q, s, right in cases]
        share = float(np.mean(lead < r.margin)) if len(lead) else 0.0
        return sum(k == 0 for k in ranks), float(np.mean([1 / (1 + k) for k in ranks])), -share

    base = value(Rerank())
    best, best_value = Rerank(), base
    for margin in REREAD_MARGINS:
        if len(lead) and np.mean(lead < margin) > MAX_REREAD_SHARE:
            continue
        for weight in REREAD_WEIGHTS:
            v = value(Rerank(weight, margin))
            if v > best_value:
                best, best_value = Rerank(weight, margin), v
    share = round(-best_value[2], 3)
    return best, {"n": len(cases), "before": base[0], "after": best_value[0], "share": share}


def _sentence_data(
    ranker: Ranker, examples: Sequence[Example], finder: EvidenceFinder
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate sentence of every answerable question, labelled: does it overlap an
    occurrence of the evidence?"""

    def labels(s: Scored, ex: Example) -> list[bool]:
        out = []
        for r in s.rows.tolist():
            p = ranker.build.passages[r]
            spans = [sp for ev in ex.question.evidence for sp in finder.occurrences(p.doc_id, ev)]
            out += [any(a < e and s0 < b for s0, e in spans) for a, b in p.sentences]
        return out

    return _candidate_data(ranker, examples, labels, lambda s: s.sentence_features)


def _passage_data(
    ranker: Ranker, examples: Sequence[Example], finder: EvidenceFinder
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every candidate passage of every answerable question, labelled: does it hold the
    evidence?"""

    def labels(s: Scored, ex: Example) -> list[bool]:
        texts = [_texts(ranker, r, finder) for r in s.rows.tolist()]
        return [holds_evidence(t, ex.question.evidence) for t in texts]

    return _candidate_data(ranker, examples, labels, lambda s: s.passage_features)


def _candidate_data(
    ranker: Ranker,
    examples: Sequence[Example],
    labels: Callable[[Scored, Example], list[bool]],
    features: Callable[[Scored], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and question numbers (for grouped folds) of every answerable question's
    candidates, as the ranker describes them."""
    xs, ys, gs = [], [], []
    for n, ex in enumerate(examples):
        if not ex.question.answerable:
            continue
        scored = ranker.score(ex.query, ex.qvec, prior_docs=ex.prior_docs)
        if scored is None:
            continue
        s, _ = scored
        y = labels(s, ex)
        xs.append(features(s))
        ys.append(np.array(y, dtype=float))
        gs.append(np.full(len(y), n))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs)


def _answer_data(
    ranker: Ranker, examples: Sequence[Example], finder: EvidenceFinder
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each question's top passage, labelled: does it answer the question?"""
    xs, ys, answerable = [], [], []
    for ex in examples:
        candidates = ranker.retrieve(ex.query, ex.qvec, TOP_K, prior_docs=ex.prior_docs)
        xs.append(ranker.answer_features(ex.query, candidates))
        right = bool(candidates) and ex.question.answerable
        right = right and holds_evidence(
            _texts(ranker, candidates[0].row, finder), ex.question.evidence
        )
        ys.append(float(right))
        answerable.append(ex.question.answerable)
    return np.vstack(xs), np.array(ys), np.array(answerable, dtype=bool)


def _texts(ranker: Ranker, row: int, finder: EvidenceFinder) -> tuple[str, ...]:
    """A passage's text and the text at each location it was merged from."""
    p = ranker.build.passages[row]
    return (p.text, *(finder.documents[loc.doc_id][loc.start : loc.end] for loc in p.also_at))


def _fit(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: tuple[str, ...]
) -> tuple[LinearModel, dict[str, Any]]:
    """A standardised logistic regression with C chosen by grouped cross-validation (log loss),
    folded back into one weight per raw feature; and the cross-validation's figures."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    folds = list(GroupKFold(n_splits=min(FOLDS, len(set(groups.tolist())))).split(z, y, groups))
    losses: dict[float, float] = {}
    held = {}
    for c in C_GRID:
        pred = np.zeros(len(y))
        for train_i, test_i in folds:
            m = LogisticRegression(C=c, max_iter=2000).fit(z[train_i], y[train_i])
            pred[test_i] = m.predict_proba(z[test_i])[:, 1]
        losses[c] = log_loss(y, pred, labels=[0.0, 1.0])
        held[c] = pred
    best = min(C_GRID, key=lambda c: (round(losses[c], 6), c))
    m = LogisticRegression(C=best, max_iter=2000).fit(z, y)
    coef = m.coef_[0] / scale
    intercept = float(m.intercept_[0] - np.sum(m.coef_[0] * mean / scale))
    model = LinearModel(names, np.round(coef, 6), round(intercept, 6))
    return model, {
        "C": best,
        "log_loss": round(losses[best], 4),
        "held_out_probability": held[best],
    }


def _fit_ranking(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, names: tuple[str, ...]
) -> tuple[LinearModel, dict[str, Any]]:
    """A ranking model learned from pairs (pairwise logistic regression): within a question,
    each right item against each wrong one, so it learns what puts the right one first rather
    than how rare right items are. C is chosen by grouped cross-validation on hit@1."""
    from sklearn.model_selection import GroupKFold

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    qs = np.unique(groups)
    folds = list(GroupKFold(n_splits=min(FOLDS, len(qs))).split(qs, groups=qs))
    hits: dict[float, float] = {}
    for c in C_GRID:
        right = 0
        for train_q, test_q in folds:
            w = _pairwise(z, y, groups, set(qs[train_q].tolist()), c)
            right += _hits_at_1(z @ w, y, groups, set(qs[test_q].tolist()))
        hits[c] = right / len(qs)
    best = max(C_GRID, key=lambda c: (round(hits[c], 6), -c))
    w = _pairwise(z, y, groups, set(qs.tolist()), best)
    model = LinearModel(names, np.round(w / scale, 6), 0.0)
    return model, {"C": best, "log_loss": round(hits[best], 4)}


def _pairwise(z: np.ndarray, y: np.ndarray, groups: np.ndarray, keep: set[int], c: float):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    diffs = []
    for g in sorted(keep):
        idx = np.flatnonzero(groups == g)
        pos, neg = idx[y[idx] > 0], idx[y[idx] == 0]
        if len(pos) and len(neg):
            diffs.append((z[pos][:, None, :] - z[neg][None, :, :]).reshape(-1, z.shape[1]))
    d = np.vstack(diffs)
    xd = np.vstack([d, -d])
    yd = np.concatenate([np.ones(len(d)), np.zeros(len(d))])
    m = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(xd, yd)
    return m.coef_[0]


def _hits_at_1(scores: np.ndarray, y: np.ndarray, groups: np.ndarray, keep: set[int]) -> int:
    right = 0
    for g in keep:
        idx = np.flatnonzero(groups == g)
        right += int(y[idx[np.argmax(scores[idx])]] > 0)
    return right


def _threshold(p: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> float:
    """The answerable probability that, on held-out predictions, best separates answers that
    are right (answer them) from questions the corpus does not answer (refuse them): the
    middle of the range of thresholds that do it best, as far from the questions that would
    flip at either end as it can be (its first value sits right against one)."""
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    values = np.array(
        [np.sum((p >= t) & (right > 0)) + np.sum((p < t) & ~answerable) for t in grid]
    )
    best = grid[values == values.max()]
    return float(best[(len(best) - 1) // 2])


def _model_json(model: LinearModel, cv: dict[str, Any]) -> dict[str, Any]:
    return {
        "features": list(model.features),
        "coef": [float(c) for c in model.coef],
        "intercept": model.intercept,
        "C": cv["C"],
        "cv_log_loss": cv["log_loss"],
    }
