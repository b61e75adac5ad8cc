"""Issue 17 acceptance in a real browser: `paperchat serve` subprocesses, Debian chromium driven by Playwright.

(a) With auth and an operator key, a logged-in user tries "Test connection" and "Apply" against a listener
    on 127.0.0.1: the listener never sees the key, and without --allow-settings (or as a non-admin) the
    backend does not change. With --allow-settings an admin may switch, and the listener still gets no key.
(b) Abstracts planted with an image, a link, a bare URL, a heading, LaTeX and a literal [2]: no request leaves
    127.0.0.1, the answer's DOM holds no foreign anchor, img or heading, and the literal [2] cites nothing.
(c) A request with a foreign Host header is refused.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import ARTIFACTS, Served, need_chromium, open_page, open_tab, paperchat_cmd, serve_env, upload
from tests.conftest import ROOT
from tests.test_llm_openai import FakeOpenAI

pytestmark = pytest.mark.slow

KEY = "sk-operator-SECRET-7f3a9c1e5b"
ENV_KEY = "sk-openai-env-SECRET-2d8e4f"

PLANTED = [
    {"id": "planted-1", "title": "Zebra finch song learning needs auditory feedback",
     "abstract": "# Zebra finch song learning depends on auditory feedback during a sensitive period, as established "
                 "by [2]. Juvenile zebra finch song learning fails without a tutor ![pixel](http://203.0.113.7/p.png) "
                 "and recovers when zebra finch song playback is given. Zebra finch song learning code is at "
                 "[Official code](http://203.0.113.8/code) and http://203.0.113.9/bare with "
                 "$$\\Huge\\color{red}{ZEBRA}$$ song learning results.",
     "authors": "A. Planter", "year": 2024, "categories": "q-bio.NC"},
    {"id": "planted-2", "title": "Cochlear hair cells in mice",
     "abstract": "Cochlear hair cells in mice regenerate after noise damage when a growth factor is applied. "
                 "We measured hearing thresholds in 40 mice over twelve weeks.",
     "authors": "B. Other", "year": 2023, "categories": "q-bio.TO"},
    {"id": "planted-3", "title": "Graph neural networks for molecules",
     "abstract": "Graph neural networks predict molecular properties from atoms and bonds. "
                 "We evaluate message passing on quantum chemistry benchmarks.",
     "authors": "C. Third", "year": 2022, "categories": "cs.LG"},
]
QUESTION = "What does zebra finch song learning depend on?"


def _serve_planted(root: Path, cache_dir: Path, args: list[str], extra_env: dict[str, str]) -> Served:
    """`paperchat serve` over the planted papers (ingested first, under the same network guard)."""
    papers = root / "planted.jsonl"
    papers.write_text("".join(json.dumps(p) + "\n" for p in PLANTED), encoding="utf-8")
    subprocess.run([*paperchat_cmd(), "ingest", str(papers), "--quiet"], cwd=ROOT, env=serve_env(root, cache_dir),
                   check=True, capture_output=True, timeout=600)
    return Served(root, cache_dir, args, extra_env)


@pytest.fixture(scope="module")
def listener() -> Iterator[FakeOpenAI]:
    """An OpenAI-protocol listener on 127.0.0.1 standing in for a user's own server; records every header."""
    srv = FakeOpenAI()
    yield srv
    srv.close()


def _auth_file(root: Path) -> Path:
    f = root / "users.txt"
    f.write_text("alice[admin]:alice-pw\nbob:bob-pw\n", encoding="utf-8")
    return f


def _keyed_env(root: Path) -> dict[str, str]:
    # the operator's key (bound to the OpenAI API: no base URL configured) and OPENAI_API_KEY in the environment
    return {"PAPERCHAT_AUTH": str(_auth_file(root)), "PAPERCHAT_LLM_API_KEY": KEY, "OPENAI_API_KEY": ENV_KEY,
            "PAPERCHAT_LLM": "extractive"}


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Served]:
    """Auth + key, no --allow-settings."""
    need_chromium()
    root = tmp_path_factory.mktemp("sec_locked")
    s = _serve_planted(root, cache_dir, [], _keyed_env(root))
    yield s
    s.stop("serve-locked.log")


@pytest.fixture(scope="module")
def open_settings(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Served]:
    """Auth + key, with --allow-settings (alice is the admin, bob is not)."""
    need_chromium()
    root = tmp_path_factory.mktemp("sec_open")
    s = _serve_planted(root, cache_dir, ["--allow-settings"], _keyed_env(root))
    yield s
    s.stop("serve-allow-settings.log")


# Calls a Gradio event the way the page's own JavaScript does (queue/join, then the SSE result), with the
# page's cookies: what a user who bypasses the read-only widgets would do.
CALL_EVENT = """async ({elem, data}) => {
  const cfg = await (await fetch('/config')).json();
  const comp = cfg.components.find(c => c.props && c.props.elem_id === elem);
  const dep = cfg.dependencies.find(d => (d.targets || []).some(t => t[0] === comp.id && t[1] === 'click'));
  const session_hash = Math.random().toString(36).slice(2);
  const r = await fetch('/gradio_api/queue/join', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({data, event_data: null, fn_index: dep.id, trigger_id: comp.id, session_hash})});
  if (!r.ok) return 'HTTP ' + r.status + ' ' + await r.text();
  const s = await fetch('/gradio_api/queue/data?session_hash=' + session_hash);
  const reader = s.body.getReader(); const dec = new TextDecoder(); let buf = '';
  for (let i = 0; i < 2000; i++) {
    const {value, done} = await reader.read(); if (done) break;
    buf += dec.decode(value);
    if (buf.includes('process_completed')) break;
  }
  return buf;
}"""


def _attack(page: Any, listener_url: str, elem: str) -> str:
    """Point the backend at the listener with an empty key box (keep the current key), via `elem`'s event."""
    return str(page.evaluate(CALL_EVENT, {"elem": elem, "data": ["openai", listener_url, "m", "", "", 10]}))


def _status(page: Any) -> str:
    page.wait_for_function("() => /✅|❌/.test(document.querySelector('#pc-llm-status').innerText)")
    return str(page.locator("#pc-llm-status").inner_text())


def _seen_keys(listener: FakeOpenAI) -> list[str]:
    return [h.get("Authorization", "") for h, _ in listener.requests]


def _ask_backend(page: Any, turn: int) -> str:
    """Ask the planted question; the sources panel footer names the backend that answered."""
    page.fill("#pc-question textarea", QUESTION)
    page.click("#pc-send")
    page.wait_for_selector(f'#pc-sources-panel[data-turn="{turn}"]', timeout=120_000)
    return str(page.locator("#pc-sources-panel .pc-foot").inner_text())


# --- (a) the operator's key and backend ------------------------------------------------------------
@pytest.mark.parametrize("user", ["bob", "alice"])
def test_without_allow_settings_no_user_can_send_the_key_or_change_the_backend(
        browser: Any, locked: Served, listener: FakeOpenAI, user: str) -> None:
    page = open_page(browser, locked, user)
    before = len(listener.requests)
    open_tab(page, "Settings", "#pc-test")
    assert page.locator("#pc-base-url textarea").is_disabled()  # read-only widgets
    assert page.locator("#pc-apply").count() == 0 or not page.locator("#pc-apply").is_visible()
    # the widgets are read-only, so force the values in and press Test connection
    page.evaluate("""(url) => { const t = document.querySelector('#pc-base-url textarea');
        t.disabled = false; t.value = url; t.dispatchEvent(new Event('input', {bubbles: true})); }""", listener.url)
    page.click("#pc-test")
    status = _status(page)
    assert "current backend" in status
    out_test = _attack(page, listener.url, "pc-test")  # the same, straight to the server
    out_apply = _attack(page, listener.url, "pc-apply")
    assert "not applied" in out_apply and "operator" in out_apply, out_apply
    assert "HTTP" not in out_test[:8]
    open_tab(page, "Chat", "#pc-send")
    assert "extractive" in _ask_backend(page, 0)  # the backend did not change
    assert len(listener.requests) == before  # the listener was never contacted at all
    assert all(KEY not in h and ENV_KEY not in h for h in _seen_keys(listener))
    page.screenshot(path=str(ARTIFACTS / f"security-settings-locked-{user}.png"))
    assert page.outside_requests == [] and locked.outside() == ""
    page.context.close()


def test_with_allow_settings_only_the_admin_switches_and_the_key_stays_home(
        browser: Any, open_settings: Served, listener: FakeOpenAI) -> None:
    bob = open_page(browser, open_settings, "bob")
    before = len(listener.requests)
    out = _attack(bob, listener.url, "pc-apply")
    assert "not applied" in out and len(listener.requests) == before  # a non-admin changes nothing
    bob.context.close()

    alice = open_page(browser, open_settings, "alice")
    open_tab(alice, "Settings", "#pc-test")
    alice.wait_for_function("() => !document.querySelector('#pc-base-url textarea').disabled")
    alice.get_by_role("radio", name="openai").check()
    alice.fill("#pc-base-url textarea", listener.url)
    alice.fill("#pc-base-url textarea", listener.url)  # the API key box stays empty: "keep the current key"
    listener.script = [("stream", ["LISTENER-REPLY-TEXT zebra [1]."])] * 3
    alice.click("#pc-test")
    status = _status(alice)
    assert "✅" in status and "LISTENER-REPLY-TEXT" not in status  # ok/failed, never the reply
    alice.click("#pc-apply")
    alice.wait_for_function("() => document.querySelector('#pc-llm-status').innerText.includes('answers now come')")
    assert len(listener.requests) > before
    assert all(KEY not in h and ENV_KEY not in h for h in _seen_keys(listener))  # the key never left home
    alice.screenshot(path=str(ARTIFACTS / "security-settings-admin.png"))
    assert alice.outside_requests == [] and open_settings.outside() == ""
    alice.context.close()


# --- (b) planted Markdown, links and citations -------------------------------------------------------
def test_planted_markup_renders_as_text_and_the_literal_2_cites_nothing(browser: Any, locked: Served) -> None:
    page = open_page(browser, locked, "bob")
    page.fill("#pc-question textarea", QUESTION)
    page.click("#pc-send")
    page.wait_for_selector('#pc-chat a.pc-cite[href^="#pc-src-0-"]', timeout=120_000)
    page.wait_for_selector('#pc-sources-panel[data-turn="0"]')
    time.sleep(1.0)  # let any image or link the answer might carry be requested
    bot = page.locator("#pc-chat .bot, #pc-chat [data-testid='bot']").last
    answer = bot.inner_text()
    assert "Zebra finch" in answer or "zebra finch" in answer, answer
    anchors = page.eval_on_selector_all("#pc-chat a", "els => els.map(a => [a.className, a.getAttribute('href')])")
    assert anchors and all(c == "pc-cite" and h.startswith("#pc-src-0-") for c, h in anchors), anchors
    bad = page.eval_on_selector_all("#pc-chat img, #pc-chat h1, #pc-chat h2, #pc-chat h3, #pc-chat h4, "
                                    "#pc-chat .katex, #pc-chat math, #pc-chat svg image", "els => els.length")
    assert bad == 0
    # the planted text is shown as text, and the literal [2] is neutralised to (2): no citation from it
    assert "(2)" in answer and "established by [2]" not in answer and "[2]" not in answer, answer
    cited = page.locator("#pc-sources-panel .pc-card.pc-cited").all_inner_texts()
    assert len(cited) == 1 and "Zebra finch" in cited[0], cited  # only the planted paper itself is cited
    page.screenshot(path=str(ARTIFACTS / "security-planted-answer.png"))
    assert page.outside_requests == [], page.outside_requests
    assert locked.outside() == ""
    page.context.close()


# --- (c) DNS rebinding ----------------------------------------------------------------------------------
def test_foreign_host_header_is_refused(locked: Served) -> None:
    def get(host: str) -> int:
        req = urllib.request.Request(locked.url + "config", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    assert get("rebind.attacker.example") == 400
    assert get(f"rebind.attacker.example:{locked.port}") == 400
    assert get(f"127.0.0.1:{locked.port}") in (200, 401)  # ours: passes the host check (then needs login)


def test_uploads_leave_no_temp_files(browser: Any, locked: Served, tmp_path: Path) -> None:
    page = open_page(browser, locked, "bob")
    f = tmp_path / "more.jsonl"
    f.write_text(json.dumps({"id": "up-1", "title": "Uploaded paper about sparrows",
                             "abstract": "Sparrows sing songs that differ between cities and forests."}) + "\n")
    open_tab(page, "Add papers", "#pc-add")
    upload(page, f)
    page.click("#pc-add")
    page.wait_for_function("() => document.querySelector('#pc-report').innerText.includes('collection now')",
                           timeout=120_000)
    left = [p for p in (locked.root / "gradio").rglob("*") if p.is_file() and p.suffix in (".jsonl", ".gz")]
    assert left == [], left
    assert not list(Path(tempfile.gettempdir()).glob("paperchat-upload-*/upload-*"))
    page.context.close()


def test_failed_logins_get_429(locked: Served) -> None:
    """Last in this module: after it, 127.0.0.1 may not log in to `locked` for a minute."""
    codes = []
    for _ in range(6):
        data = b"username=bob&password=wrong"
        req = urllib.request.Request(locked.url + "login", data=data,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            urllib.request.urlopen(req, timeout=10)
            codes.append(200)
        except urllib.error.HTTPError as e:
            codes.append(e.code)
    assert codes[:5] == [400] * 5 and codes[5] == 429, codes
