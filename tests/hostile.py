"""A corpus article whose text is markup, to prove the API and the page treat text as text."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.paths import ROOT as PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
HOSTILE_ID = "900_hostile_markup"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
QUESTION = "Where is the Zorblat lantern festival held?"
HOSTILE_TEXT = "\n".join(
    [
        "Zorblat Lantern Festival Notes",
        "By Quentin Marlowe",
        "",
        f"The Zorblat lantern festival, whose banners read {SCRIPT} as a joke about web security, "
        "is held every spring in the harbour town of Quillmouth. "
        f"A poster beside the main stage showed {IMG} in large letters, "
        "and the mayor of Quillmouth called it harmless text.",
        "",
        "Organisers of the Zorblat lantern festival expect eleven thousand visitors this year.",
        "",
    ]
)


def hostile_corpus(dst: Path, seeds: Path = SEEDS) -> Path:
    """`dst` filled with a copy of the seeds plus the hostile article."""
    dst.mkdir(parents=True, exist_ok=True)
    for p in seeds.glob("*.txt"):
        shutil.copy2(p, dst / p.name)
    (dst / f"{HOSTILE_ID}.txt").write_text(HOSTILE_TEXT, encoding="utf-8")
    return dst
