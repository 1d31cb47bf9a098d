"""How much `qa bench` measures (the plans) and how it judges the numbers (the bar).

The bar is issue 5's: every line is a ratio of two numbers taken in the same run, because
absolute numbers on a shared two-core machine say little and ratios measured side by side do.
This module only does arithmetic on a result object; it measures nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCALE_FULL = (1_000, 10_000, 100_000)
SCALE_QUICK = (1_000, 10_000)
SCALE_SMOKE = (200, 500)


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, --quick (under 3 minutes) or the CI smoke test."""

    name: str
    rounds: int  # passes over the question set for ask and the HTTP ask
    index_rounds: int  # warm builds (and encodes) of seeds/
    cold_rounds: int  # fresh `qa ask` / `import sentence_transformers` processes
    scale: tuple[int, ...]
    http_requests: int  # requests in each throughput run (concurrency 1 and 8)
    soak_requests: int  # requests between the two memory readings
    questions: int = 0  # 0: every shipped question


PLANS = {
    "full": Plan("full", 3, 3, 3, SCALE_FULL, 800, 10_000),
    "quick": Plan("quick", 2, 2, 2, SCALE_QUICK, 300, 1_000),
    "smoke": Plan("smoke", 1, 1, 1, SCALE_SMOKE, 40, 100, questions=20),
}


@dataclass(frozen=True)
class BarCheck:
    """One line of the bar: a measured ratio against its limit."""

    name: str
    value: float | None
    limit: float
    holds: bool | None  # None: not measured in this run
    detail: str


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def check_bar(r: dict[str, Any]) -> list[BarCheck]:
    """Issue 5's bar, each line a ratio of two numbers from the same run (value <= limit)."""
    checks = []

    def add(name: str, value: float | None, limit: float, detail: str, ge: bool = False) -> None:
        holds = None if value is None else (value >= limit if ge else value <= limit)
        checks.append(
            BarCheck(name, None if value is None else round(value, 3), limit, holds, detail)
        )

    ask = r.get("ask_ms", {}).get("p50")
    add(
        "1 ask vs one reference embedding",
        _ratio(ask, r.get("embed_reference_ms")),
        0.5,
        "ask_ms.p50 / embed_reference_ms",
    )
    http_ask = (r.get("http_ask_ms") or {}).get("p50")
    health = (r.get("http_health_ms") or {}).get("p50")
    # The in-process ask timed alongside the HTTP requests, when there is one: same load.
    local = (r.get("ask_ms_alongside_http") or {}).get("p50", ask)
    add(
        "2a HTTP ask overhead",
        None if None in (http_ask, local, health) else http_ask / (local + 2 * health),
        1.0,
        "http_ask_ms.p50 / (in-process ask p50 + 2 x http_health_ms.p50)",
    )
    add(
        "2b HTTP throughput at concurrency 8",
        _ratio(r.get("http_rps"), r.get("http_rps_c1")),
        1.3,
        "http_rps (8 clients) / requests/s with 1 client",
        ge=True,
    )
    add("3 index vs encode", _ratio(r.get("index_s"), r.get("encode_s")), 1.2, "index_s / encode_s")
    add(
        "4 cold ask vs importing sentence-transformers",
        _ratio(r.get("cold_ask_s"), r.get("import_st_s")),
        0.5,
        "cold_ask_s / import_st_s",
    )
    scale = r.get("scale") or []
    if len(scale) >= 2:
        small, large = scale[0], scale[-1]
        add(
            f"5a ask at {large['passages_target']:,} vs {small['passages_target']:,} passages",
            _ratio(large["ask_ms"]["p50"], small["ask_ms"]["p50"]),
            2.0,
            "ask p50, largest corpus / smallest",
        )
    if scale:
        add(
            "5b recall@10 of the dense search (worst size)",
            min(s["recall_at_10"] for s in scale),
            0.98,
            "dense top 10 vs exact brute force, same vectors",
            ge=True,
        )
    growth = r.get("rss_growth_mb")
    add(
        "6 server memory growth over the soak",
        growth,
        max(5.0, 0.05 * (r.get("rss_mb") or 0)),
        f"RSS after minus before {r.get('soak_requests', 0):,} requests, MB",
    )
    add(
        "7 ask with a 3-turn history vs alone",
        _ratio(
            (r.get("ask_with_history_ms") or {}).get("p50"),
            (r.get("ask_alone_ms") or {}).get("p50"),
        ),
        1.5,
        "ask_with_history_ms.p50 / ask_alone_ms.p50 (the same questions, alternating)",
    )
    return checks
