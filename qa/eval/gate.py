"""The regression gate: the shipped sets' accepted metrics, and what fell below them.

`qa eval --write-baseline` records an evaluation's metrics in `baseline.json` beside the shipped
sets; later runs of the shipped sets are compared with it, and a gated metric may not drop more
than TOLERANCE below its accepted value. Kept apart from the metrics: this is the one part of the
evaluation with a file of its own and a policy (which metrics, how much slack).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qa.eval.metrics import Evaluation
from qa.eval.questions import SHIPPED_DIR

# The last accepted metrics of the shipped sets (`qa eval --write-baseline`).
ACCEPTED_FILE = SHIPPED_DIR / "baseline.json"
# These may not drop by more than TOLERANCE below the accepted values.
GATED = ("hit@5", "mrr", "no_answer_recall")
TOLERANCE = 0.02


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


def gate_verdict(evaluation: Evaluation, path: Path = ACCEPTED_FILE) -> dict[str, Any] | None:
    """The gate's verdict on a run of the shipped sets, or None when there is nothing to hold
    it against: no accepted file, or one accepted at another top_k (not comparable)."""
    if not path.exists():
        return None
    accepted = read_accepted(path)
    if accepted.get("top_k") != evaluation.top_k:
        return None
    return {"accepted": str(path), "regressions": regressions(evaluation.metrics(), accepted)}
