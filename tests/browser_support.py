"""What the real-browser tests share: `paperchat serve` in a subprocess, Debian chromium driven by Playwright.

`Served` starts the server on a free loopback port with its own home, log and network log (the netguard
sitecustomize records any connect or lookup beyond loopback); `open_page` opens a page on it in a fresh browser
context that records requests leaving 127.0.0.1. The `browser` fixture is in conftest.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
NETGUARD = ROOT / "tests" / "data" / "netguard"


def need_chromium() -> None:
    """Skip the test when Debian's chromium is missing."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def paperchat_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "paperchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "rag.cli"]


def serve_env(root: Path, cache_dir: Path) -> dict[str, str]:
    """The environment of a `paperchat` child: no PAPERCHAT_* or OPENAI_API_KEY of the developer, a home, Gradio
    temp dir and network log under `root`. No GRADIO_ANALYTICS_ENABLED: the app must keep itself offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERCHAT_") and k != "OPENAI_API_KEY"}
    env.update(PAPERCHAT_HOME=str(root / "pc"), PAPERCHAT_CACHE_DIR=str(cache_dir),
               PAPERCHAT_TEST_NETLOG=str(root / "netlog.txt"), GRADIO_TEMP_DIR=str(root / "gradio"),
               PYTHONPATH=os.pathsep.join([str(NETGUARD), str(ROOT), env.get("PYTHONPATH", "")]))
    return env


class Served:
    """A `paperchat serve` subprocess on a free loopback port, up (its page answers 200) when constructed."""

    def __init__(self, root: Path, cache_dir: Path, args: list[str], extra_env: dict[str, str] | None = None,
                 timeout: float = 300) -> None:
        self.root = root
        self.netlog = root / "netlog.txt"
        env = {**serve_env(root, cache_dir), **(extra_env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = root / "serve.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*paperchat_cmd(), "serve", "--port", str(self.port), *args], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_up(timeout)
        except BaseException:
            self.stop("serve-failed.log")
            raise

    def _wait_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"paperchat serve exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("paperchat serve did not come up:\n" + self.log_path.read_text())
            time.sleep(0.5)

    def stop(self, artifact: str) -> None:
        """SIGINT (SIGKILL to its process group after 20 s); its log is kept as test-artifacts/`artifact`."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / artifact).write_text(self.log_path.read_text())

    def outside(self) -> str:
        """What the server tried to reach beyond loopback ('' when nothing)."""
        return self.netlog.read_text() if self.netlog.exists() else ""


def open_page(browser: Any, served: Served, user: str | None = None) -> Any:
    """A page on `served` in a fresh browser context (its own cookies), signed in as `user` (password
    '<user>-pw'), with `page.outside_requests` listing every request that left 127.0.0.1."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    outside: list[str] = []

    def record(req: Any) -> None:
        host = urlparse(req.url).hostname
        if req.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in ("127.0.0.1", "localhost"):
            outside.append(req.url)

    ctx.on("request", record)
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    if user:
        r = page.request.post(served.url + "login", form={"username": user, "password": f"{user}-pw"})
        assert r.ok, r.text()
    page.goto(served.url)
    page.wait_for_selector("#pc-question textarea")
    page.outside_requests = outside
    return page


def upload(page: Any, path: Path) -> None:
    """Give the upload widget a file until its name shows (like a tab click, one during a re-render can be lost)."""
    for _ in range(4):
        page.set_input_files("#pc-upload input[type=file]", str(path))
        try:
            page.wait_for_selector(f"#pc-upload :text('{path.name}')", timeout=10_000)
            return
        except Exception:  # noqa: BLE001 - retried, then reported below
            continue
    page.screenshot(path=str(ARTIFACTS / "ui-upload-failed.png"))
    raise AssertionError(f"the upload widget never showed {path.name}")


def open_tab(page: Any, name: str, marker: str) -> None:
    """Click a tab until `marker` (an element inside it) is visible (a click during a re-render can be lost)."""
    for _ in range(5):
        page.get_by_role("tab", name=name).click()
        try:
            page.wait_for_selector(marker, state="visible", timeout=5_000)
            return
        except Exception:  # noqa: BLE001 - retried, then reported below
            continue
    page.screenshot(path=str(ARTIFACTS / f"ui-tab-{name}-failed.png"))
    raise AssertionError(f"tab {name!r} did not open")


def ask(page: Any, question: str, turn: int) -> None:
    """Send a question and wait for its cited answer and that turn's sources panel."""
    page.fill("#pc-question textarea", question)
    page.click("#pc-send")
    # the final answer carries links to this turn's source cards; the panel shows them
    page.wait_for_selector(f'#pc-chat a.pc-cite[href^="#pc-src-{turn}-"]', timeout=120_000)
    page.wait_for_selector(f'#pc-sources-panel[data-turn="{turn}"]', timeout=30_000)


def page_search_pick_ask(page: Any, total: int, search: str, title: str, typed: str, question: str, turn: int,
                         shot: str = "ui-picker") -> dict[str, float]:
    """The collection tab pages on the server (50 rows a page of `total`) and finds `title` by `search`; the
    picker finds it as `typed` (a piece of the title, as the dropdown filters its options by it) is typed;
    `question` restricted to it gets an answer citing only it.

    Returns the seconds each step took, from the action to what it shows (the page must stay responsive)."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    open_tab(page, "Collection", "#pc-search")
    page.fill("#pc-search input, #pc-search textarea", "")
    page.wait_for_function(f"() => document.querySelector('#pc-page').innerText.includes('Papers 1–50 of {total:,}')")
    times["collection_tab_s"] = time.perf_counter() - t
    t = time.perf_counter()
    page.click("#pc-next")
    page.wait_for_function(f"() => document.querySelector('#pc-page').innerText.includes('Papers 51–{min(100, total):,} "
                           f"of {total:,}')")
    times["next_page_s"] = time.perf_counter() - t
    t = time.perf_counter()
    page.fill("#pc-search input, #pc-search textarea", search)
    page.wait_for_function("(t) => document.querySelector('#pc-page').innerText.includes('matching') &&"
                           " document.querySelector('#pc-table').innerText.includes(t)", arg=title)
    times["table_search_s"] = time.perf_counter() - t
    open_tab(page, "Chat", "#pc-send")
    page.get_by_text("Retrieval controls").click()
    box = page.locator("#pc-papers input")
    box.wait_for(state="visible")
    box.click()
    # the paper is not among the picker's first choices: typing must find it on the server
    assert page.get_by_role("option", name=title[:90]).count() == 0
    t = time.perf_counter()
    box.press_sequentially(typed, delay=30)
    option = page.get_by_role("option", name=title[:90]).first
    option.wait_for(timeout=30_000)
    times["picker_search_s"] = time.perf_counter() - t
    option.click()
    page.keyboard.press("Escape")  # close the options list; the chosen paper stays selected
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
    assert title[:40] in page.locator("#pc-papers").inner_text()
    t = time.perf_counter()
    try:
        ask(page, question, turn)
    finally:
        page.screenshot(path=str(ARTIFACTS / f"{shot}-answer.png"))
    times["restricted_answer_s"] = time.perf_counter() - t
    cited = page.locator("#pc-sources .pc-card")
    assert cited.count() >= 1 and all(title in cited.nth(i).inner_text() for i in range(cited.count()))
    return {k: round(v, 2) for k, v in times.items()}
