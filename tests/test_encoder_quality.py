"""The quality table behind the choice of encoder (qa.encoders.choice.QUALITY), measured again.

Each ONNX variant indexes the corpus with the real bundled model and answers every dev
question and conversation turn; its `qa eval` metrics are compared with the plain fp32
export's. A variant the table lets a host choose must stay within QUALITY_LIMIT on every
metric, and the table's recorded figure must be what is measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.ask.service import QAService
from qa.encoders import make_embedder
from qa.encoders.choice import QUALITY, QUALITY_LIMIT
from qa.eval.evaluate import evaluate
from qa.eval.metrics import METRICS, compute_metrics
from qa.index.build import build_index
from qa.settings import Settings
from tests.paths import QUESTIONS, SEEDS

# Every metric of `qa eval` but the timings.
COMPARED = tuple(m for m in METRICS if not m.endswith("_ms"))
# The recorded figure is rounded; another CPU's kernels may move one more question or one less.
RECORD_SLACK = 0.003


def _dev_files() -> list[Path]:
    return sorted((QUESTIONS / "dev").glob("*.jsonl")) + sorted(
        (QUESTIONS / "conversations" / "dev").glob("*.jsonl")
    )


def _metrics(variant: str, root: Path) -> dict[str, float | None]:
    embedder = make_embedder(variant)
    settings = Settings.from_env({}, seeds_dir=SEEDS, index_dir=root / variant)
    build_index(SEEDS, settings.index_dir, embedder)
    service = QAService(settings, embedder)
    try:
        ev = evaluate(settings, _dev_files(), service=service)
    finally:
        service.close()
    return compute_metrics(ev.system)  # single questions and turns pooled


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float | None]]:
    root = tmp_path_factory.mktemp("quality")
    return {v: _metrics(v, root) for v in QUALITY}


def _worst(a: dict[str, float | None], b: dict[str, float | None]) -> float:
    return max(abs((a[m] or 0.0) - (b[m] or 0.0)) for m in COMPARED)


def test_the_dev_material_is_large_enough_to_resolve_001(
    measured: dict[str, dict[str, float | None]],
) -> None:
    # If one moved question already exceeded the limit, "qualifies" would mean "bit-exact".
    files = _dev_files()
    assert any("conversations" in str(f) for f in files) and len(files) >= 3
    fp32 = measured["onnx"]
    assert fp32["hit@1"] is not None and fp32["no_answer_recall"] is not None


@pytest.mark.parametrize("variant", sorted(QUALITY))
def test_each_variant_measures_as_the_table_says(
    variant: str, measured: dict[str, dict[str, float | None]]
) -> None:
    worst = _worst(measured[variant], measured["onnx"])
    recorded = QUALITY[variant]
    assert worst <= QUALITY_LIMIT if recorded.qualifies else worst > QUALITY_LIMIT
    assert abs(worst - recorded.worst_delta) <= RECORD_SLACK, (variant, worst, measured[variant])
