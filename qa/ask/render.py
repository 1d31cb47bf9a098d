"""Answer -> text for the terminal: what was searched (when a follow-up was resolved), the short
answer in bold, the answer with [n] markers, then the numbered citations."""

from __future__ import annotations

import textwrap

from qa.ask.answering import Answer, Citation

_BOLD, _RESET = "\033[1;4m", "\033[0m"


def marked_passage(c: Citation, color: bool) -> str:
    """The passage with its highlighted sentences marked (ANSI, or »…« without colour)."""
    out, pos = [], c.start
    open_, close = (_BOLD, _RESET) if color else ("»", "«")
    for a, b in c.highlights:
        out.append(c.text[pos - c.start : a - c.start])
        out.append(open_ + c.text[a - c.start : b - c.start] + close)
        pos = b
    out.append(c.text[pos - c.start :])
    return "".join(out)


def answer_to_text(answer: Answer, color: bool = False, width: int = 100) -> str:
    """A readable rendering of an answer and its sources."""
    lines = []
    if answer.searched and " ".join(answer.searched.split()) != " ".join(answer.question.split()):
        lines += [textwrap.fill(f"Searched for: {answer.searched}", width), ""]
    if answer.answerable:
        if answer.short_answer is not None:
            short = answer.short_answer.text
            lines += [f"{_BOLD}{short}{_RESET}" if color else f"**{short}**", ""]
        lines.append(textwrap.fill(answer.answer, width))
        heading = "Sources"
    else:
        lines.append(answer.answer)
        heading = "Closest passages (not sufficient to answer)"
    if answer.citations:
        lines += ["", heading + ":"]
    for c in answer.citations:
        by = f", by {c.byline}" if c.byline else ""
        lines.append(f"[{c.n}] {c.title}{by}")
        lines.append(f"    section: {c.section}")
        lines.append(f"    {c.doc_id}, characters {c.start}-{c.end}, relevance {c.score:.2f}")
        for para in marked_passage(c, color).splitlines():
            lines.append(
                textwrap.fill(para, width, initial_indent="    ", subsequent_indent="    ")
            )
        lines.append("")
    t = answer.timing_ms
    if t:
        lines.append(f"({t.get('total', 0):.0f} ms)")
    return "\n".join(lines).rstrip() + "\n"
