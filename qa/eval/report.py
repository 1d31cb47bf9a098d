"""An Evaluation rendered for people: a Markdown report (printed and saved) and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qa.eval.judging import Judged
from qa.eval.metrics import METRICS, STANDALONE, Evaluation, answerability_calibration
from qa.eval.questions import split_of

RATE_METRICS = tuple(m for m in METRICS if not m.endswith("_ms"))
SNIPPET_CHARS = 80


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if name.endswith("_ms") else f"{value:.3f}"


def metrics_table(ev: Evaluation) -> str:
    """Metrics per set and overall, the baseline's beside the system's when it was run."""
    system = ev.metrics()
    base = ev.metrics(ev.baseline) if ev.baseline is not None else None
    columns: list[tuple[str, dict[str, Any]]] = []
    splits = list(system.get("splits", {}))
    for name in [*ev.sets, *splits, "overall"]:
        for label, result in (("", system), (" (baseline)", base)):
            if result is None:
                continue
            group = "splits" if name in splits else "sets"
            values = result["metrics"] if name == "overall" else result[group][name]
            columns.append((f"{name}{label}", values))
    lines = [
        "| metric | " + " | ".join(c for c, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for m in METRICS:
        lines.append(f"| {m} | " + " | ".join(_fmt(m, v[m]) for _, v in columns) + " |")
    return "\n".join(lines)


def _cited_line(j: Judged) -> str:
    if not j.outcome.cited:
        return "nothing cited"
    c = j.outcome.cited[0]
    text = " ".join(c.highlight_text.split())
    if len(text) > SNIPPET_CHARS:
        text = text[: SNIPPET_CHARS - 1] + "…"
    return f"cited first: {c.doc_id} § {c.section[:60]}: “{text}”"


def failures_section(ev: Evaluation) -> str:
    """Every failed question, its diagnosis and what was cited first instead."""
    fails = ev.failures()
    lines = [f"## Failed questions ({len(fails)} of {len(ev.system)})", ""]
    # Heldout failures are counted, never shown: reading them would be tuning on them.
    hidden = sum(1 for j, _ in fails if split_of(j.question.set) == "heldout")
    if hidden:
        lines += [f"{hidden} heldout failures are not listed (heldout is scored, not read).", ""]
    for j, why in fails:
        q = j.question
        if split_of(q.set) == "heldout":
            continue
        lines.append(f"- `{q.id}` ({q.set}) {q.question}")
        lines.append(f"  - {why}")
        lines.append(f"  - {_cited_line(j)}")
    if not fails:
        lines.append("None.")
    return "\n".join(lines)


def calibration_section(ev: Evaluation) -> str:
    """The threshold sweep (every 0.05, the best and the current threshold)."""
    cal = ev.calibration
    if cal is None:
        return ""
    b = cal.best
    current = min(cal.points, key=lambda p: abs(p.threshold - ev.min_score))
    tied = f"{cal.tied[0]:.2f}–{cal.tied[-1]:.2f}" if len(cal.tied) > 1 else f"{b.threshold:.2f}"
    lines = [
        "## Calibration of the answerability threshold (on `Answer.support`)",
        "",
        f"Best no-answer F1 {b.f1:.3f} at threshold **{b.threshold:.2f}** "
        f"(precision {b.precision:.3f}, recall {b.recall:.3f}, {b.declared} declared unanswerable; "
        f"thresholds reaching it: {tied}). Current min_score {ev.min_score:.2f}: "
        f"precision {current.precision:.3f}, recall {current.recall:.3f}, F1 {current.f1:.3f}.",
        "",
        "| threshold | precision | recall | F1 | declared |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in cal.points:
        mark = {b.threshold: " (best)", current.threshold: " (current)"}.get(p.threshold, "")
        if round(p.threshold * 100) % 5 == 0 or mark:
            lines.append(
                f"| {p.threshold:.2f}{mark} | {p.precision:.3f} | {p.recall:.3f} | "
                f"{p.f1:.3f} | {p.declared} |"
            )
    return "\n".join(lines)


def answers_section(ev: Evaluation) -> str:
    """Short answers on factoid questions and evidence in the answer text, per group."""
    figures = ev.answers()
    keys = ("factoid", "short_answer_em", "short_answer_f1", "short_answer_given",
            "short_answer_f1_when_given", "answer_has_evidence")  # fmt: skip
    lines = [
        "## Answers: short answers (factoid questions) and evidence in the answer text",
        "",
        "| group | " + " | ".join(keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for name, values in figures.items():
        cells = [str(values[k]) if k == "factoid" else _fmt(k, values[k]) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conversations_section(ev: Evaluation) -> str:
    """Conversation turns: all, follow-ups, and each kind, per split."""
    conv = ev.conversations()
    if not conv:
        return ""
    shown = ("hit@1", "hit@5", "mrr", "sentence@1", "no_answer_precision", "no_answer_recall")
    lines = [
        "## Conversations (every turn asked after the earlier ones, with the system's answers)",
        "",
        "| split | turns | group | " + " | ".join(shown) + " |",
        "|---|---:|---|" + "---:|" * len(shown),
    ]
    for split, block in conv.items():
        rows = [("all turns", block["turns"], block["metrics"])]
        n_follow = sum(v["turns"] for k, v in block["kinds"].items() if k not in STANDALONE)
        rows.append(("follow-ups", n_follow, block["followup"]))
        rows += [(f"kind {k}", v["turns"], v) for k, v in block["kinds"].items()]
        for label, n, m in rows:
            lines.append(
                f"| {split} | {n} | {label} | " + " | ".join(_fmt(k, m[k]) for k in shown) + " |"
            )
    return "\n".join(lines)


def markdown(ev: Evaluation) -> str:
    """The whole report."""
    counts = ev.counts()
    sets = ", ".join(
        f"{s} ({counts[s]['questions']}, {counts[s]['answerable']} answerable)" for s in ev.sets
    )
    head = [
        "# qa eval",
        "",
        f"{counts['overall']['questions']} questions in {len(ev.sets)} set(s): {sets}. "
        f"top_k {ev.top_k}, min_score {ev.min_score:.2f}"
        + (f", build {ev.extra['build']}" if ev.extra.get("build") else "")
        + (f", ranking weights: {ev.extra['weights']}" if ev.extra.get("weights") else "")
        + ".",
        "",
        metrics_table(ev),
    ]
    gate = ev.extra.get("gate")
    if gate is not None:
        verdict = "pass" if not gate["regressions"] else "FAIL: " + "; ".join(gate["regressions"])
        head += ["", f"Regression gate against {gate['accepted']}: {verdict}."]
    parts = ["\n".join(head), answers_section(ev)]
    conversations = conversations_section(ev)
    if conversations:
        parts.append(conversations)
    parts.append(reliability_section(ev))
    parts.append(failures_section(ev))
    if ev.calibration is not None:
        parts.append(calibration_section(ev))
    return "\n\n".join(parts) + "\n"


def plot(ev: Evaluation, path: Path) -> None:
    """Bars per metric, system beside baseline (overall), and the latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    system = ev.metrics()["metrics"]
    base = ev.metrics(ev.baseline)["metrics"] if ev.baseline is not None else None
    fig, (ax, lat) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [4, 1]}, layout="constrained"
    )
    xs = range(len(RATE_METRICS))
    width = 0.4 if base is not None else 0.7
    runs = [("system", system, "#1f6feb")]
    if base is not None:
        runs.append(("baseline", base, "#bbbbbb"))
    for i, (label, values, colour) in enumerate(runs):
        offset = (i - (len(runs) - 1) / 2) * width
        ys = [values[m] or 0.0 for m in RATE_METRICS]
        bars = ax.bar([x + offset for x in xs], ys, width, label=label, color=colour)
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=1)
        lat_ys = [values["p50_ms"] or 0.0, values["p95_ms"] or 0.0]
        lat_bars = lat.bar([x + offset for x in range(2)], lat_ys, width, color=colour)
        lat.bar_label(lat_bars, labels=[f"{y:.0f}" for y in lat_ys], fontsize=7, padding=1)
    ax.set_xticks(list(xs), [m.replace("no_answer_", "no-ans ") for m in RATE_METRICS])
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_title(f"qa eval: {len(ev.system)} questions, top_k {ev.top_k}")
    ax.legend(loc="upper right")
    lat.set_xticks([0, 1], ["p50", "p95"])
    lat.set_ylabel("ms per question")
    lat.set_title("latency")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def reliability_section(ev: Evaluation) -> str:
    """The answerable probability's calibration: Brier score and the reliability table."""
    cal = answerability_calibration(ev.system)
    lines = [
        "## Answerability calibration",
        "",
        f"Brier score {cal['brier']} (0 is perfect; always saying 0.5 scores 0.25). Per bin of the",
        "predicted probability that the articles answer, the share they really do:",
        "",
        "| predicted | questions | mean predicted | observed |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {b['from']:.1f}–{b['to']:.1f} | {b['questions']} | {b['predicted']:.2f} | "
        f"{b['observed']:.2f} |"
        for b in cal["bins"]
    ]
    return "\n".join(lines)


def plot_reliability(ev: Evaluation, path: Path) -> None:
    """The reliability diagram: predicted answerable probability against the observed rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cal = answerability_calibration(ev.system)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    ax.plot([0, 1], [0, 1], color="#bbbbbb", linestyle="--", label="perfectly calibrated")
    xs = [b["predicted"] for b in cal["bins"]]
    ys = [b["observed"] for b in cal["bins"]]
    ax.plot(xs, ys, marker="o", color="#1f6feb", label="qa")
    for b in cal["bins"]:
        ax.annotate(str(b["questions"]), (b["predicted"], b["observed"]), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability that the articles answer")
    ax.set_ylabel("observed share")
    ax.set_title(f"reliability (Brier {cal['brier']})")
    ax.legend(loc="upper left", fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(ev: Evaluation, out_dir: Path) -> list[Path]:
    """report.json, report.md, report.png and reliability.png in `out_dir` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ("report.json", "report.md", "report.png", "reliability.png")
    paths = [out_dir / name for name in names]
    paths[0].write_text(json.dumps(ev.to_dict(), indent=1, ensure_ascii=False) + "\n", "utf-8")
    paths[1].write_text(markdown(ev), encoding="utf-8")
    plot(ev, paths[2])
    plot_reliability(ev, paths[3])
    return paths
