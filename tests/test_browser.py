"""The chat page in a real browser: Chromium (headless, via Playwright) against `qa serve`.

Ask, see a cited answer, open the citation's source with its highlight, survive a reload, see an
API failure explained, and render an article made of markup as inert text. The source panel shows
the title, byline and section headings the document API gives, and the page (native ES modules,
web/static/main.js and its imports) loads and answers without a console error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from qa.index import builds
from qa.index.build import build_index
from qa.model import Embedder
from qa.settings import Settings
from tests.hostile import HOSTILE_ID, IMG, QUESTION, SCRIPT, hostile_corpus
from tests.live import QAServe, http
from tests.paths import ROOT as PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 60_000

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing but CI is set: .ci/run installs it", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is not installed (apt-get install chromium); CI is not set",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(
    built_index: Settings, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QAServe]:
    """`qa serve` over a temporary index of the seeds plus a hostile article."""
    root = tmp_path_factory.mktemp("browser")
    seeds = hostile_corpus(root / "seeds", built_index.seeds_dir)
    index = root / "index"
    # Start from a copy of the session index, so only the new article is embedded.
    shutil.copytree(built_index.index_dir, index, ignore=shutil.ignore_patterns("feedback*"))
    build_index(seeds, index, embedder)
    serve = QAServe(["--index", str(index), "--seeds", str(seeds)], root / "serve.log")
    yield serve
    assert serve.stop() == 0, serve.log.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_chat_page_end_to_end(server: QAServe, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    dialogs: list[str] = []
    problems: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        # The browser logs every non-2xx fetch; the 503 below is provoked on purpose.
        if message.type == "error" and "status of 503" not in message.text:
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", on_console)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(server.url + "/")
        # An empty chat offers the articles' own FAQ questions.
        expect(page.locator("#examples li").first).to_be_visible()

        # Ask; an answer with a numbered citation appears.
        page.fill("#question", "Where did Rubio and Lavrov meet?")
        page.keyboard.press("Enter")
        answer = page.locator(".msg-answer").last
        expect(answer.locator(".answer-text")).to_contain_text("Malaysia")
        expect(answer.locator(".cite-ref").first).to_be_visible()
        assert answer.locator(".citation").count() >= 1

        # The [1] marker leads to its source card; the card opens the article, highlighted.
        answer.locator(".cite-ref").first.click()
        card = answer.locator(".citation").first
        expect(card).to_be_focused()
        card.locator(".cite-passage").click()
        panel = page.locator("#source-panel")
        expect(panel).to_be_visible()
        expect(panel.locator(".passage-mark mark.hl").first).to_be_visible()
        highlighted = panel.locator(".passage-mark mark.hl").first.inner_text()
        assert highlighted.strip() and highlighted.strip()[:40] in answer.inner_text()
        assert "/doc/" in page.url and "#chars=" in page.url

        # An article whose text is markup: shown as text, never run or rendered.
        page.fill("#question", QUESTION)
        page.keyboard.press("Enter")
        hostile = page.locator(".msg-answer").nth(1)
        expect(hostile.locator(".answer-text")).to_contain_text("Quillmouth")
        card = hostile.locator(f'.citation[data-doc-id="{HOSTILE_ID}"]').first
        expect(card).to_contain_text(SCRIPT)
        card.locator(".cite-passage").click()
        expect(panel.locator(".doc-text")).to_contain_text(IMG)
        expect(panel.locator(".doc-text")).to_contain_text(SCRIPT)
        page.wait_for_timeout(500)  # give a would-be onerror handler its chance
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("[...document.scripts].every((s) => s.src && !s.textContent)")
        page.screenshot(path=str(ARTIFACTS / "browser-hostile.png"))

        # A reload keeps the conversation.
        page.reload()
        expect(page.locator(".msg-question")).to_have_count(2)
        expect(page.locator(".msg-answer").first.locator(".answer-text")).to_contain_text(
            "Malaysia"
        )
        expect(page.locator(".msg-answer").nth(1)).to_contain_text(SCRIPT)

        # A real failure, explained: the index breaks while the server runs (503).
        current = server_index(server) / builds.CURRENT
        good = current.read_text()
        current.write_text("not-a-build\n")
        try:
            page.fill("#question", "Who wrote the first article?")
            page.keyboard.press("Enter")
            error = page.locator(".msg-error").last
            expect(error.locator(".error-message")).to_contain_text("does not name a build")
            expect(error.locator(".error-message")).to_contain_text("qa index")
            error.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser-error.png"))
        finally:
            current.write_text(good)
        # Repaired: "Try again" now gets the answer.
        error.locator(".retry").click()
        expect(page.locator(".msg-answer")).to_have_count(3)
        page.locator(".msg-answer").last.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert dialogs == [], f"a dialog fired: {dialogs}"
    assert problems == [], problems


def _watch(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Every page error and console error `page` logs, as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    return problems


def _headed(doc: dict) -> list[str]:
    return [s["heading"] for s in doc["sections"] if s["heading"]]


def test_page_loads_and_answers_without_console_errors(server: QAServe, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    problems = _watch(page)
    try:
        page.goto(server.url + "/")
        expect(page.locator("#examples li").first).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.NewsQA.cpToUtf16") == "function"
        assert problems == [], f"on load: {problems}"

        page.locator("#examples .example").first.click()
        answer = page.locator(".msg-answer").last
        expect(answer.locator(".citation").first).to_be_visible()
        answer.locator(".citation").first.locator(".cite-passage").click()
        expect(page.locator("#source-panel .passage-mark")).to_be_visible()
        page.wait_for_load_state("networkidle")
        assert problems == [], f"after an answer: {problems}"
    finally:
        context.close()


def test_source_panel_shows_what_the_document_api_gives(server: QAServe, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    problems = _watch(page)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(server.url + "/")
        page.fill("#question", "Where did Rubio and Lavrov meet?")
        page.keyboard.press("Enter")
        cards = page.locator(".msg-answer").last.locator(".citation")
        expect(cards.first).to_be_visible()
        # A cited article with a byline and headings, as the API serves it.
        for card in cards.all():
            doc_id = card.get_attribute("data-doc-id") or ""
            status, _, doc = http("GET", f"{server.url}/api/documents/{quote(doc_id, safe='')}")
            assert status == 200, doc
            if doc["byline"] and len(_headed(doc)) >= 3:
                break
        else:
            pytest.fail("no cited article has a byline and three headings")
        start = int(card.get_attribute("data-start") or "")
        end = int(card.get_attribute("data-end") or "")
        cited = [s for s in doc["sections"] if s["start"] <= start < s["end"]][-1]["heading"]

        card.locator(".cite-passage").click()
        panel = page.locator("#source-panel")
        expect(panel.locator(".passage-mark mark.hl").first).to_be_visible()
        expect(panel.locator("#panel-title")).to_have_text(doc["title"])
        expect(panel.locator("#panel-byline")).to_have_text("By " + doc["byline"])
        expect(panel.locator(".doc-text [role=heading]")).to_have_text(_headed(doc))
        expect(panel.locator(".passage-note")).to_contain_text(f"in “{cited}”")
        # The article's own title and byline lines are the header, not repeated in the body.
        body = panel.locator(".doc-text").inner_text()
        assert doc["title"] not in body and f"By {doc['byline']}" not in body
        page.screenshot(path=str(ARTIFACTS / "browser-source-panel.png"))

        # Whatever the API says is what the panel shows: a title and byline the text does not
        # hold, and one heading fewer (its line then reads as plain text).
        dropped = next(h for h in _headed(doc)[1:] if h != cited)
        told = {
            **doc,
            "title": "A Title Only The API Knows",
            "byline": "Somebody Else",
            "sections": [s for s in doc["sections"] if s["heading"] != dropped],
        }
        other = context.new_page()
        other_problems = _watch(other)
        other.route("**/api/documents/*", lambda route: route.fulfill(json=told))
        other.goto(f"{server.url}/doc/{quote(doc_id, safe='')}#chars={start}-{end}")
        other_panel = other.locator("#source-panel")
        expect(other_panel.locator(".passage-mark")).to_be_visible()
        expect(other_panel.locator("#panel-title")).to_have_text(told["title"])
        expect(other_panel.locator("#panel-byline")).to_have_text("By Somebody Else")
        expect(other_panel.locator(".doc-text [role=heading]")).to_have_text(_headed(told))
        expect(other_panel.locator(".doc-text")).to_contain_text(dropped)
        assert other_problems == [], other_problems
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-source-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert problems == [], problems


def server_index(server: QAServe) -> Path:
    """The index folder `server` was started on."""
    args = server.proc.args
    return Path(args[args.index("--index") + 1])


def test_a_follow_up_is_asked_with_the_conversation(server: QAServe, browser) -> None:  # type: ignore[no-untyped-def]
    """The page sends the visible conversation as history, shows what a follow-up searched
    for, the short answer in bold first, and the used sources before the folded rest."""
    import json

    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    problems = _watch(page)
    sent: list[dict] = []
    page.on(
        "request",
        lambda r: (
            sent.append(json.loads(r.post_data or "{}")) if r.url.endswith("/api/ask") else None
        ),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.goto(server.url + "/")
        page.fill("#question", "Where did Rubio and Lavrov meet?")
        page.keyboard.press("Enter")
        first = page.locator(".msg-answer").nth(0)
        expect(first.locator(".short-answer strong")).to_have_text("Malaysia")
        expect(first.locator(".searched")).to_have_count(0)  # searched as typed
        # The used sources come first; the others are folded under "more passages".
        expect(first.locator(".sources > .citation-list .citation").first).to_be_visible()
        more = first.locator(".more-passages")
        if more.count():
            expect(more.locator("summary")).to_contain_text("more passages")
            expect(more.locator(".citation").first).to_be_hidden()

        page.fill("#question", "What did Trump think about it?")
        page.keyboard.press("Enter")
        second = page.locator(".msg-answer").nth(1)
        expect(second.locator(".searched")).to_contain_text("Searched for: What did Trump")
        expect(second.locator(".searched")).to_contain_text("Lavrov")
        expect(second.locator(".answer-text")).to_contain_text("disappointment and frustration")
        assert "history" not in sent[0]
        history = sent[1]["history"]
        assert [t["question"] for t in history] == ["Where did Rubio and Lavrov meet?"]
        assert "Malaysia" in history[0]["answer"]
        assert history[0]["citations"] and set(history[0]["citations"][0]) == {
            "doc_id",
            "start",
            "end",
        }
        second.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-follow-up.png"))

        # A cleared conversation starts over: no history is sent.
        page.locator("#clear").click()
        page.fill("#question", "What did Trump think about it?")
        page.keyboard.press("Enter")
        expect(page.locator(".msg-answer")).to_have_count(1)
        assert "history" not in sent[-1]
        expect(page.locator(".msg-answer .searched")).to_have_count(0)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-follow-up-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert problems == [], problems
