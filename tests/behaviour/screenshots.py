"""Five conversations as the chat page shows them, from a real browser (headless Chromium).

Run `python tests/behaviour/screenshots.py` from the project root (after `make run` or
`qa index` has built index/): it starts `qa serve` on a free port, types each conversation into
the page turn by turn, as a person would, and writes one PNG per conversation, plus what each
turn was answered with (`conversations.md`), into `screenshots/` beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = HERE / "screenshots"
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 60_000

# Each one shows a kind of follow-up: a pronoun, ellipsis, a bare question word, an opener,
# a change of topic, and a follow-up the articles do not answer.
CONVERSATIONS: list[tuple[str, list[str]]] = [
    (
        "pronoun-then-switch",
        [
            "Where did Rubio and Lavrov meet?",
            "What did Trump think about it?",
            "who is the special envoy for ukraine and russia",
        ],
    ),
    ("short-follow-ups", ["When did Russia annex Crimea?", "why?", "and what did the US do?"]),
    (
        "ellipsis",
        ["Which countries have offered to send troops to Ukraine?", "what about Germany?"],
    ),
    (
        "byline-pronoun",
        ["Who wrote the article on US-Russia relations and Ukraine?", "what else does she cover"],
    ),
    (
        "unanswerable-follow-up",
        ["Who is Sergey Lavrov?", "how old is he?", "What sanctions did the US put on Russia?"],
    ),
]


def main() -> int:
    from playwright.sync_api import expect, sync_playwright

    sys.path.insert(0, str(ROOT))
    from tests.live import QAServe

    OUT.mkdir(exist_ok=True)
    server = QAServe(
        ["--index", str(ROOT / "index"), "--seeds", str(ROOT / "seeds")], OUT / "serve.log"
    )
    lines = ["# Five conversations as the page shows them", ""]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for name, turns in CONVERSATIONS:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(server.url + "/")
                lines += [f"## {name}", ""]
                for i, question in enumerate(turns):
                    page.fill("#question", question)
                    page.keyboard.press("Enter")
                    answer = page.locator(".msg-answer").nth(i)
                    answer.wait_for()
                    expect(answer.locator(".answer-text")).not_to_be_empty()
                    text = " ".join(answer.inner_text().split())
                    lines.append(f"- **{question}** → {text[:400]}")
                # The conversation scrolls inside the page: grow the window to show it all.
                tall = page.evaluate(
                    "Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))"
                )
                page.set_viewport_size({"width": 1280, "height": min(int(tall) + 200, 8000)})
                page.wait_for_timeout(300)
                path = OUT / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                lines += ["", f"![{name}]({path.name})", ""]
                print(f"wrote {path.relative_to(ROOT)}")
                page.close()
            browser.close()
    finally:
        server.stop()
    (OUT / "conversations.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (OUT / "serve.log").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
