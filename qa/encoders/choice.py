"""Which ONNX variant this host's builds use by default: the fastest here of those that qualify.

Two facts decide it, kept apart because they differ in kind:

- Quality is a property of a variant's arithmetic, not of the host, and measuring it takes an
  index build and a `qa eval` per variant (about 30 s each) on the dev question sets, which
  are test data rather than part of an installed package. So it was measured once and is
  kept here as a table (`QUALITY`, checked again by tests/test_encoder_quality.py): a variant
  qualifies when every `qa eval` metric over the dev questions and turns is within 0.01 of
  fp32's (with 380 answerable ones, four questions' worth).
- Speed depends on the host (an AVX2-only CPU has no fast int8 dot products; AVX-512 and VNNI
  change the ranking again), and timing a question is cheap. So when the export is made (by
  `make`, or by the first `qa index`) the qualifying variants are timed on this host, one
  question at a time on one thread as a question is served, in blocks alternating between
  the variants, and the fastest is recorded in the export's meta.json. Before it is timed,
  each one's vectors are checked against the plain fp32 export's.

`QA_ENCODER` still overrides the choice; a build stays queried with the encoder that made it.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.filelock import locked
from qa.model import ENCODERS, FALLBACK_ENCODER

QUALITY_LIMIT = 0.01


@dataclass(frozen=True)
class Quality:
    """How far a variant's `qa eval` figures are from fp32's, as measured."""

    worst_delta: float  # the largest |metric - fp32's| over every `qa eval` metric
    measured: str

    @property
    def qualifies(self) -> bool:
        return self.worst_delta <= QUALITY_LIMIT


# Measured with `QA_ENCODER=<variant> qa index` and `qa eval` on every dev set (390 questions
# and 194 conversation turns, pooled: 457 answerable) against the plain fp32 export (`onnx`), on
# 2026-12-07 with the learned ranking; tests/test_encoder_quality.py measures it again. On
# fewer questions one moved question is already more than 0.01 (the 94 turns alone: 0.012),
# which would refuse any variant whose arithmetic is not fp32's, so the dev sets are pooled.
# Variants measured and not shipped are in the README's performance section.
QUALITY = {
    "onnx": Quality(0.0, "the fp32 export itself"),
    "onnx-fused": Quality(0.0, "every metric identical to fp32; vectors equal to 1e-6"),
    "onnx-int8": Quality(
        0.0079,
        "of 584 dev questions and turns, one unanswerable one answered: no-answer recall -0.0079, "
        "precision -0.0008, answer F1 +0.0011; every ranking metric identical",
    ),
}

# Timed at export: short and long questions, as the service embeds them.
SAMPLE_QUESTIONS = (
    "Where did they meet?",
    "Who won the election?",
    "When was the treaty signed?",
    "What did the foreign minister say about the sanctions?",
    "How many people were evacuated after the flood?",
    "Why did the talks between the two delegations break down last week?",
    "Which companies were named in the report on the data breach?",
    "What is the population of the capital?",
    "How long did the negotiations last, and who chaired them?",
    "What are the main points of the agreement reached at the summit in Kuala Lumpur?",
    "Did the central bank raise interest rates?",
    "Who is the new chief executive?",
    "What caused the power outage that hit the region on Tuesday evening?",
    "How much will the new stadium cost and when will it open?",
    "Which countries voted against the resolution?",
    "What happened to the ship?",
)
# Rounds of the whole sample per variant (alternating order): a few seconds in all.
ROUNDS = 6
# Vectors of a variant that claims fp32's arithmetic may differ from fp32's by this much.
EXACT_ATOL = 1e-4


def qualifying() -> tuple[str, ...]:
    """The ONNX variants whose `qa eval` stays within QUALITY_LIMIT of fp32, as measured."""
    return tuple(v for v, q in QUALITY.items() if q.qualifies and v in ENCODERS)


def cpu_features(cpuinfo: str | None = None) -> dict[str, bool]:
    """AVX2, AVX-512 and VNNI (int8 dot products) of this CPU, from /proc/cpuinfo's flags."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and ":" in line:
            flags.update(line.split(":", 1)[1].split())
            break
    return {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "vnni": bool({"avx512_vnni", "avx_vnni", "avx_vnni_int8"} & flags),
    }


def describe_cpu(features: dict[str, bool] | None) -> str:
    """Say which features are present: "AVX2 yes, AVX-512 no, VNNI no"."""
    if not features:
        return "CPU features unknown"
    names = (("avx2", "AVX2"), ("avx512", "AVX-512"), ("vnni", "VNNI"))
    return ", ".join(f"{label} {'yes' if features.get(k) else 'no'}" for k, label in names)


def fastest(timings_ms: dict[str, float]) -> str:
    """The variant with the lowest time; ties go to the first listed."""
    return min(timings_ms, key=lambda v: timings_ms[v])


def time_variants(folder: Path, variants: tuple[str, ...], rounds: int = ROUNDS) -> dict[str, Any]:
    """Median ms per question of each variant in `folder`, one thread, alternating blocks.

    Each variant runs the whole sample as one block, so its weights are as warm as they are
    when it serves alone; the order of the blocks alternates so a busy spell on the machine
    does not land on one variant only. Variants whose vectors differ from the plain fp32
    export's by more than EXACT_ATOL are left out (`refused`).
    """
    from qa.encoders.onnx import FILES, load_tokenizer, model_inputs, open_session

    tokenizer = load_tokenizer(folder)
    singles = [model_inputs(tokenizer, [q]) for q in SAMPLE_QUESTIONS]
    batch = model_inputs(tokenizer, SAMPLE_QUESTIONS)
    sessions = {v: open_session(folder / FILES[v], 1) for v in (*variants, "onnx")}
    expected = sessions["onnx"].run(None, batch)[0]
    refused: dict[str, str] = {}
    for v in variants:
        diff = float(np.abs(sessions[v].run(None, batch)[0] - expected).max())
        if diff > EXACT_ATOL and QUALITY[v].worst_delta == 0.0:
            refused[v] = f"vectors differ from fp32's by {diff:.2g}"
    timed = [v for v in variants if v not in refused]
    samples: dict[str, list[float]] = {v: [] for v in timed}
    for r in range(rounds):
        for v in timed if r % 2 == 0 else timed[::-1]:
            session = sessions[v]
            session.run(None, singles[0])  # warm after the other variant's block
            for feed in singles:
                t = time.perf_counter()
                session.run(None, feed)
                samples[v].append(time.perf_counter() - t)
    return {
        "ms_p50": {v: round(1000 * statistics.median(s), 3) for v, s in samples.items()},
        "refused": refused,
    }


def choose(folder: Path) -> dict[str, Any]:
    """Time the qualifying variants in `folder` on this host; the facts to record in meta.json."""
    candidates = qualifying()
    try:
        timed = time_variants(folder, candidates)
    except Exception as exc:  # timing must never break an export; fp32 is always right
        return {
            "encoder": FALLBACK_ENCODER,
            "candidates": list(candidates),
            "why": f"timing failed ({type(exc).__name__}: {exc}); fp32 by default",
            "cpu": cpu_features(),
        }
    ms = timed["ms_p50"]
    encoder = fastest(ms) if ms else FALLBACK_ENCODER
    return {
        "encoder": encoder,
        "candidates": list(candidates),
        "why": "fastest on this host of the variants within "
        f"{QUALITY_LIMIT} of fp32 on every qa eval metric",
        "ms_p50": ms,
        "refused": timed["refused"],
        "not_qualifying": {v: q.measured for v, q in QUALITY.items() if not q.qualifies},
        "cpu": cpu_features(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def describe_choice(choice: dict[str, Any] | None, cpu: bool = True) -> str:
    """One line: the chosen variant, the timings behind it and (`cpu`) the CPU's features."""
    if not choice:
        return f"default encoder: {FALLBACK_ENCODER} (no measured choice recorded)"
    times = ", ".join(f"{v} {ms:.2f} ms" for v, ms in (choice.get("ms_p50") or {}).items())
    facts = [times or str(choice.get("why", ""))]
    if cpu:
        facts.append(describe_cpu(choice.get("cpu")))
    return f"default encoder: {choice.get('encoder')} ({'; '.join(facts)})"


def recorded_choice(root: Path | None = None) -> dict[str, Any] | None:
    """The choice in the current export's meta.json: exporting first if there is no export,
    measuring and recording it if the export was made without one (an encoder loaded first)
    or among other candidates than today's QUALITY table lets qualify (a newer release)."""
    from qa.encoders.onnx import EXPORT_VERSION, ensure_exported, model_dir, read_meta, write_meta

    folder = model_dir(root)
    try:
        meta = read_meta(folder)
    except (OSError, ValueError):
        meta = None
    if meta is None or meta.get("version") != EXPORT_VERSION:
        meta = read_meta(ensure_exported(FALLBACK_ENCODER, root, choose))
    if _stale(meta.get("choice")):
        with locked(folder.parent / ".export.lock"):
            meta = read_meta(folder)
            if _stale(meta.get("choice")):
                meta["choice"] = choose(folder)
                write_meta(folder, meta)
    choice = meta.get("choice")
    return choice if isinstance(choice, dict) else None


def _stale(choice: Any) -> bool:
    """Whether a recorded choice must be measured again: none, or made among other variants."""
    return not isinstance(choice, dict) or choice.get("candidates") != list(qualifying())


def host_encoder(root: Path | None = None) -> str:
    """The default encoder of builds made on this host (the measured choice, else fp32)."""
    encoder = (recorded_choice(root) or {}).get("encoder")
    return encoder if encoder in ENCODERS else FALLBACK_ENCODER


def main(argv: list[str] | None = None) -> int:
    """`python -m qa.encoders.choice`: export (if needed) and verify the ONNX models, and say
    which variant this host's builds use by default."""
    import argparse

    from qa.encoders.onnx import (
        FILES,
        bundled_model_path,
        cache_root,
        ensure_exported,
        export,
        model_dir,
        read_meta,
        write_meta,
    )

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--force", action="store_true", help="export again even if the cache is good")
    p.add_argument(
        "--choose", action="store_true", help="time the variants again and record the fastest"
    )
    args = p.parse_args(argv)
    if args.force:
        with locked(cache_root() / ".export.lock"):
            export(Path(bundled_model_path()), model_dir(), choose)
    for variant in FILES:
        print(f"{variant}: {ensure_exported(variant, None, choose) / FILES[variant]}")
    folder = model_dir()
    if args.choose:
        with locked(folder.parent / ".export.lock"):
            meta = read_meta(folder)
            meta["choice"] = choose(folder)
            write_meta(folder, meta)
    print(describe_choice(recorded_choice()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
