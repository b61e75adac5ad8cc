"""The chat UI in a real browser: `paperchat serve` in a subprocess, Debian's chromium driven by Playwright.

Asks about the sample collection, clicks a citation, checks the sources panel shows the paper with its
supporting sentence highlighted, uploads a JSONL file and sees it counted. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (ARTIFACTS, Served, ask, free_port, need_chromium, open_page, open_tab,
                                   page_search_pick_ask, upload)

pytestmark = pytest.mark.slow

QUESTION = "Which paper explains why grokking happens in deep networks?"
GROK = "Deep Networks Always Grok and Here is Why"
NTK = "Neural Tangent Kernel: Convergence and Generalization in Neural Networks"
NEW_PAPER = {"id": "2501.99999", "title": "Browser Tests for Paper Chat Interfaces",
             "abstract": "We show that a chat interface over paper abstracts can be tested end to end in a real "
                         "browser. Citations link to sources whose supporting sentences are highlighted.",
             "authors": "A. Tester, B. Reviewer", "year": 2025, "categories": "cs.HC cs.IR"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Served]:
    """`paperchat serve` on a free loopback port with an empty temp home (so it indexes the sample)."""
    need_chromium()
    s = Served(tmp_path_factory.mktemp("ui_home"), cache_dir, ["--allow-settings"])
    yield s
    s.stop("serve.log")


@pytest.fixture(scope="module")
def browser_page(browser: Any, server: Served) -> Iterator[Any]:
    page = open_page(browser, server)
    try:
        yield page
    finally:
        page.context.close()


def test_answer_streams_and_citation_shows_highlighted_source(browser_page: Any) -> None:
    page = browser_page
    page.wait_for_function("() => document.querySelector('#pc-examples').innerText.includes('What does the paper')")
    ask(page, QUESTION, 0)
    card = page.locator("#pc-sources .pc-card.pc-cited", has_text=GROK)
    assert card.count() == 1
    card_id = card.get_attribute("id")
    link = page.locator(f'#pc-chat a.pc-cite[href="#{card_id}"]').first
    link.click()
    active = page.locator("#pc-sources .pc-card.pc-active")
    active.wait_for()
    assert GROK in active.inner_text()
    marks = active.locator("mark")
    assert marks.count() >= 1 and "grokking" in marks.first.inner_text().lower()
    # the answer text itself is on the page, cited, with the reference list beside it
    assert "Grokking" in page.locator("#pc-chat").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-chat-answer.png"))


def test_citation_of_an_earlier_answer_brings_its_sources_back(browser_page: Any) -> None:
    page = browser_page
    ask(page, "What limits pointer networks?", 1)
    assert "Pointer Networks" in page.locator("#pc-sources-panel").inner_text()
    page.locator('#pc-chat a.pc-cite[href="#pc-src-0-1"]').first.click()
    page.wait_for_selector('#pc-sources-panel[data-turn="0"] #pc-src-0-1.pc-active')
    assert GROK in page.locator("#pc-src-0-1").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-chat-followup.png"))


def test_upload_jsonl_is_ingested_and_counted(browser_page: Any, tmp_path: Path) -> None:
    page = browser_page
    f = tmp_path / "my papers.jsonl"
    f.write_text(json.dumps(NEW_PAPER) + "\n" + "{not json\n", encoding="utf-8")
    open_tab(page, "Add papers", "#pc-add")
    upload(page, f)
    page.click("#pc-add")
    report = page.locator("#pc-report")
    page.wait_for_function("() => document.querySelector('#pc-report').innerText.includes('collection now')",
                           timeout=120_000)
    text = report.inner_text()
    assert "added 1" in text and "66 papers" in text, text
    assert "my papers.jsonl:2" in text and "malformed JSON" in text, text  # rejection with file and line
    assert "upload-" not in text  # staged temp names never shown
    page.screenshot(path=str(ARTIFACTS / "ui-add-papers.png"))
    open_tab(page, "Collection", "#pc-search")
    stats = page.locator("#pc-stats")
    assert "66 papers" in stats.inner_text() and "all-MiniLM-L6-v2" in stats.inner_text()
    page.fill("#pc-search input, #pc-search textarea", "Browser Tests")
    page.wait_for_function("() => { const t = document.querySelector('#pc-table').innerText;"
                           " return t.includes('A. Tester') && !t.includes('Always Grok'); }")
    page.screenshot(path=str(ARTIFACTS / "ui-collection.png"))
    open_tab(page, "Chat", "#pc-send")


def test_settings_test_connection_reports_a_dead_llm_without_breaking_chat(browser_page: Any) -> None:
    page = browser_page
    open_tab(page, "Settings", "#pc-test")
    page.get_by_role("radio", name="openai").check()
    port = free_port()  # nothing listens there
    page.fill("#pc-base-url textarea", f"http://127.0.0.1:{port}/v1")
    page.click("#pc-test")
    page.wait_for_function("() => document.querySelector('#pc-llm-status').innerText.includes('❌')")
    page.click("#pc-apply")  # a backend that cannot answer is never switched to
    page.wait_for_function("() => document.querySelector('#pc-llm-status').innerText.includes('not applied')")
    open_tab(page, "Chat", "#pc-send")
    ask(page, "How do deep networks grok?", 2)  # still answered: the configured backend did not change


def test_collection_pages_and_the_picker_restricts_a_question(browser_page: Any) -> None:
    """Server-side paging of the table; the picker searches as you type; a question restricted to the picked
    paper cites only it. Prints how long each step took (the page must stay responsive)."""
    # a paper past the picker's first 20 choices (sorted by title), so the picker must search the server
    times = page_search_pick_ask(browser_page, 66, "tangent kernel", NTK, "Neural Tangent Ker",
                                 "What does the neural tangent kernel describe during training?", 3)
    print(f"\nUI timings: {times}")


def test_no_request_left_the_machine(browser_page: Any, server: Served) -> None:
    assert browser_page.outside_requests == []  # no Google Fonts, CDNs or analytics
    # the serve process (and the ONNX export it starts) tried no connect or lookup beyond loopback
    assert server.outside() == ""
