"""`javascript:` links and event handlers, in an article, its file name and a question, stay inert
in a real browser (Chromium via Playwright against `qa serve`).

tests/test_browser.py covers `<script>` and `<img onerror>` in an article; this adds the link and
handler forms, a hostile document id, and hostile markup typed as the question.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.index.build import build_index
from qa.model import Embedder
from qa.settings import Settings
from tests.live import QAServe
from tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser  # noqa: F401  (the fixture)

HOSTILE_DOC = "javascript:alert(7)"
LINK = "<a href=\"javascript:alert('link')\">the full timetable</a>"
MARKDOWN = "[the winter timetable](javascript:alert('markdown'))"
BARE = "javascript:alert('bare')"
SVG = "<svg onload=alert('svg')></svg>"
IFRAME = "<iframe src=\"javascript:alert('iframe')\"></iframe>"
HOVER = '<div onmouseover="alert(\'hover\')" style="position:fixed;inset:0">here</div>'
ARTICLE = "\n".join(
    [
        "Varnholt Ferry Timetable Notes",
        "By Odile Brastow",
        "",
        f"The Varnholt ferry, whose website once linked {LINK} by mistake, sails every morning "
        f"from the port of Kessendorf. A leaflet printed {MARKDOWN} and the words {BARE} beside "
        "the harbour map.",
        "",
        f"Passengers on the Varnholt ferry saw {SVG} and {IFRAME} on a broken screen, and the "
        f"captain said that {HOVER} was only text.",
        "",
    ]
)
QUESTION = (
    f"Where does the Varnholt ferry sail from? {LINK} <img src=x onerror=alert('q')> "
    f"{BARE} <a href=javascript:alert('q2')>x</a>"
)
INERT_JS = """() => {
  const all = [...document.querySelectorAll('*')];
  return {
    jsLinks: all.filter((el) => /^\\s*javascript:/i.test(el.getAttribute('href') || '')
                             || /^\\s*javascript:/i.test(el.getAttribute('src') || '')).length,
    handlers: all.filter((el) => [...el.attributes].some((a) => /^on/i.test(a.name))).length,
    frames: document.querySelectorAll('iframe, frame, object, embed').length,
    injected: document.querySelectorAll('main svg[onload], #source-panel svg:not([aria-hidden])')
      .length,
    images: document.querySelectorAll('img').length,
    inlineScripts: [...document.scripts].filter((s) => !s.src || s.textContent).length,
  };
}"""


@pytest.fixture(scope="module")
def server(
    built_index: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QAServe]:
    """`qa serve` over the seeds plus the hostile article, named by a hostile file name."""
    root = tmp_path_factory.mktemp("hostile-browser")
    seeds = Path(shutil.copytree(built_index.seeds_dir, root / "seeds"))
    (seeds / f"{HOSTILE_DOC}.txt").write_text(ARTICLE, encoding="utf-8")
    index = root / "index"
    shutil.copytree(built_index.index_dir, index, ignore=shutil.ignore_patterns("feedback*"))
    build_index(seeds, index, embedder)  # only the new article is embedded
    serve = QAServe(["--index", str(index), "--seeds", str(seeds)], root / "serve.log")
    yield serve
    assert serve.stop() == 0, serve.log.read_text()


def test_javascript_links_and_handlers_stay_text(server: QAServe, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(server.url + "/")

        # Hostile markup typed as the question: echoed as text, and answered.
        page.fill("#question", QUESTION)
        page.keyboard.press("Enter")
        expect(page.locator(".msg-question").last).to_contain_text(QUESTION)
        answer = page.locator(".msg-answer").last
        expect(answer.locator(".answer-text")).to_contain_text("Kessendorf")

        # The article's links and handlers: shown as the characters they are.
        card = answer.locator(f'.citation[data-doc-id="{HOSTILE_DOC}"]').first
        expect(card).to_contain_text(LINK)
        expect(card).to_contain_text(BARE)
        card.locator(".cite-passage").click()
        panel = page.locator("#source-panel")
        text = panel.locator(".doc-text")
        for markup in (LINK, MARKDOWN, BARE, SVG, IFRAME, HOVER):
            expect(text).to_contain_text(markup)
        assert "/doc/javascript%3Aalert(7)" in page.url or "/doc/javascript:alert(7)" in page.url

        # Give would-be handlers every chance: hover and click over the text, follow the links.
        for target in (text, answer.locator(".answer-text"), card):
            target.hover()
            target.click(position={"x": 5, "y": 5})
        for link in page.locator("main a, #source-panel a").all():
            href = link.get_attribute("href") or ""
            assert not href.strip().lower().startswith("javascript:"), href
        page.wait_for_timeout(500)
        found = page.evaluate(INERT_JS)
        page.screenshot(path=str(ARTIFACTS / "browser-javascript-links.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-javascript-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert dialogs == [], f"a dialog fired: {dialogs}"
    assert errors == [], errors
    assert found == {
        "jsLinks": 0,
        "handlers": 0,
        "frames": 0,
        "injected": 0,
        "images": 0,
        "inlineScripts": 0,
    }, found
