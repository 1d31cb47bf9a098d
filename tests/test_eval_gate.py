"""The regression gate: the shipped question sets may not lose ground against the accepted metrics.

One test, on a real index of the seeds built with the real model (the session fixtures): it runs
the whole `qa eval` and compares with tests/questions/baseline.json. After an intended change,
`qa eval --write-baseline` records the new accepted metrics.
"""

from __future__ import annotations

from qa.ask.service import QAService
from qa.eval.evaluate import evaluate
from qa.eval.gate import GATED, TOLERANCE, read_accepted, regressions
from qa.eval.report import failures_section
from qa.settings import Settings


def test_shipped_sets_do_not_regress(built_index: Settings, service: QAService) -> None:
    accepted = read_accepted()
    ev = evaluate(built_index, service=service)
    assert ev.top_k == accepted["top_k"]
    assert ev.counts() == accepted["counts"], "the shipped sets changed: re-run --write-baseline"
    current = ev.metrics()
    fell = regressions(current, accepted)
    summary = ", ".join(
        f"{m} {current['metrics'][m]} (accepted {accepted['metrics'][m]})" for m in GATED
    )
    assert not fell, f"{'; '.join(fell)}; tolerance {TOLERANCE}\n{summary}\n{failures_section(ev)}"
