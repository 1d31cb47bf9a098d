"""`qa bench`'s results as Markdown: the README's performance section and its writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qa.bench.plan import check_bar
from qa.encoders.choice import describe_choice, describe_cpu

# Relative to the working directory, as every path of the command line is.
README = Path("README.md")
START_MARK = "<!-- bench:start -->"
END_MARK = "<!-- bench:end -->"


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _pp(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"p50 {_fmt(d.get('p50'))}, p95 {_fmt(d.get('p95'))} (n={d.get('n', '?')})"


def render_markdown(r: dict[str, Any]) -> str:
    """The results as the README's performance section (Markdown)."""
    return "\n".join(_measures(r) + _scale(r) + _bar(r)) + "\n"


def _measures(r: dict[str, Any]) -> list[str]:
    """Where the run ran, then the table of its single measurements."""
    m = r.get("machine", {})
    out = [
        f"Measured by `qa bench{' --quick' if r.get('plan') == 'quick' else ''}` on "
        f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, Python {m.get('python', '?')}, "
        f"onnxruntime {m.get('onnxruntime', '?')}, {r.get('date', '?')}; CPU features: "
        f"{describe_cpu(r.get('cpu_features'))}; encoder `{r.get('encoder', '?')}`"
        f"{' (set by QA_ENCODER)' if r.get('encoder_overridden') else ''}, the export's "
        f"{describe_choice(r.get('encoder_choice'), cpu=False)}. Other work ran on the machine "
        "at the same time, so absolute numbers wander; the bar is judged on ratios within the "
        "one run.",
        "",
        "| measure | value |",
        "|---|---|",
    ]

    def row(name: str, value: Any) -> None:
        out.append(f"| {name} | {value} |")

    per_threads = ", ".join(
        f"{k.split('_')[0]} thread{'' if k.startswith('1_') else 's'}: p50 {_fmt(v.get('p50'))}"
        for k, v in (r.get("embed_reference") or {}).items()
    )
    row(
        "one question embedded by sentence-transformers fp32, torch's default threads, ms "
        "(`embed_reference_ms`)",
        f"{_fmt(r.get('embed_reference_ms'))} ({per_threads or '–'})",
    )
    one = (r.get("embed_reference") or {}).get("1_threads", {}).get("p50")
    ask = (r.get("ask_ms") or {}).get("p50")
    if one and ask:
        row("`ask_ms.p50` / the one-thread reference (stricter than bar 1)", _fmt(ask / one, 3))
    row("`QAService.ask` on the shipped questions, ms (`ask_ms`)", _pp(r.get("ask_ms")))
    row(
        "`QAService.ask`, a question new to the query cache / the same asked again, ms",
        f"{_pp(r.get('ask_new_question_ms'))} / {_pp(r.get('ask_repeated_question_ms'))}",
    )
    row("HTTP `/api/ask`, 1 client, ms (`http_ask_ms`)", _pp(r.get("http_ask_ms")))
    row("`QAService.ask` timed alongside those requests, ms", _pp(r.get("ask_ms_alongside_http")))
    row("HTTP `/api/health`, 1 client, ms (`http_health_ms`)", _pp(r.get("http_health_ms")))
    row(
        "HTTP `/api/ask` requests/s, 1 client / 8 clients",
        f"{_fmt(r.get('http_rps_c1'))} / {_fmt(r.get('http_rps'))}",
    )
    row(
        "index seeds/, model loaded (`index_s`; first build in a process)",
        f"{_fmt(r.get('index_s'))} s ({_fmt(r.get('index_cold_s'))} s)",
    )
    row(
        f"encode the same {r.get('encoded_texts', '?')} texts (`encode_s`)",
        f"{_fmt(r.get('encode_s'))} s",
    )
    row("fresh `qa ask` process (`cold_ask_s`)", f"{_fmt(r.get('cold_ask_s'))} s")
    row("fresh `import sentence_transformers` (`import_st_s`)", f"{_fmt(r.get('import_st_s'))} s")
    row(
        "server memory after the run (`rss_mb`), growth over the soak",
        f"{_fmt(r.get('rss_mb'))} MB, {_fmt(r.get('rss_growth_mb'))} MB over "
        f"{r.get('soak_requests', 0):,} requests",
    )
    return out


def _scale(r: dict[str, Any]) -> list[str]:
    """The table of the synthetic corpus sizes, then what Chroma says of its HNSW settings."""
    out = [
        "",
        "| passages (built) | index s | ask p50 ms | ask p95 ms | on disk MB | search "
        "| recall@10 | HNSW recall@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in r.get("scale", []):
        out.append(
            f"| {s['passages_target']:,} ({s['passages']:,}) | {_fmt(s['index_s'])} | "
            f"{_fmt(s['ask_ms']['p50'])} | {_fmt(s['ask_ms']['p95'])} | {_fmt(s['disk_mb'])} | "
            f"{s['search']} | {_fmt(s['recall_at_10'], 4)} | {_fmt(s['hnsw_recall_at_10'], 4)} |"
        )
    if r.get("hnsw_config"):
        out += [
            "",
            f"Chroma reports the HNSW configuration back as `{json.dumps(r['hnsw_config'])}`.",
        ]
    if r.get("default_hnsw_recall_at_10") is not None:
        # Continues the paragraph above: the contrast reads as one sentence after the other.
        out[-1] += (
            " The same vectors in a collection with Chroma's default HNSW settings: recall@10 "
            f"{_fmt(r['default_hnsw_recall_at_10'], 4)} at "
            f"{r.get('default_hnsw_size', 0):,} passages."
        )
    return out


def _bar(r: dict[str, Any]) -> list[str]:
    """The bar's verdicts, one line each."""
    out = ["", "| bar | ratio | limit | holds |", "|---|---|---|---|"]
    for c in check_bar(r):
        sign = "≥" if c.name.startswith(("2b", "5b")) else "≤"
        verdict = {True: "yes", False: "**no**", None: "not measured"}[c.holds]
        out.append(
            f"| {c.name} ({c.detail}) | {_fmt(c.value, 3)} | {sign} {c.limit:g} | {verdict} |"
        )
    return out


def replace_between_markers(text: str, block: str) -> str:
    """`text` with what stands between the bench markers replaced by `block`."""
    a, b = text.find(START_MARK), text.find(END_MARK)
    if a < 0 or b < a:
        raise ValueError(f"the README has no {START_MARK} ... {END_MARK} section")
    return text[: a + len(START_MARK)] + "\n" + block.rstrip("\n") + "\n" + text[b:]


def write_readme(result: dict[str, Any], path: Path = README) -> None:
    """Replace the README's performance block with this run's table."""
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_between_markers(text, render_markdown(result)), encoding="utf-8")
