"""Shared fixtures: a temp PAPERCHAT_HOME per test, one shared embedding cache, a sample engine."""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before torch is imported (by any test module): OpenMP threads sleep when idle instead of spinning. On a loaded
# 2-core machine the spinning cost ~10x the CPU of the forward passes themselves (100 short texts: 6.4 s of CPU
# with 2 spinning threads, 0.6 s passive). Child processes inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
SHARED = ROOT.parent / "shared"

# Tests that start real servers (Chroma, llama.cpp, Gradio), child processes (kill -9, the CLI) or a browser:
# `pytest -m "not slow"` leaves them out. A module name alone marks the whole module. Marking here, in one
# list, keeps the rule visible; `@pytest.mark.slow` on a test works too.
SLOW = {
    "test_chroma_server.py": None,  # `chroma run`
    "test_llm_llamacpp.py": None,  # a llama.cpp server
    "test_ui_browser.py": None,  # chromium
    "test_durability.py": {"test_kill_9_at_random_points_then_rerun_is_exact", "test_query_while_another_process_ingests",
                           "test_long_lived_reader_picks_up_another_process_ingest"},
    "test_engine.py": {"test_questions_file_writes_jsonl"},  # two CLI processes
    "test_bm25sql.py": {"test_kill_9_while_writing_leaves_whole_batches"},
    "test_privacy.py": {"test_the_subprocess_guard_records_an_outside_attempt"},
    "test_ui_unit.py": {"test_chat_endpoint_streams_and_renders",  # Gradio served on 127.0.0.1
                        "test_a_failing_engine_shows_an_error_and_the_app_keeps_serving"},
    "test_chat_during_ingest.py": None,
    "test_embeddings.py": {"test_int8_ingest_vectors_match_fp32",  # ONNX export + quantisation in a child process
                           "test_onnx_query_copy_matches_torch",  # ONNX export in a child process
                           "test_fp32_vectors_match_sentence_transformers",  # a second model stack
                           "test_bf16_vectors_match_fp32"},  # the model in two precisions, ~30 s at load 20
}
FAST_TIMEOUT, SLOW_TIMEOUT = 60, 1200  # seconds per test (pytest-timeout; setup and teardown count)
# The first test to use a shared (session/module-scoped) fixture builds it inside its own timeout: the model load
# is ~4 s of CPU, the session's imports ~6 s, a module's own small index a few s, and a shared 2-core CI machine
# at load 25 stretches that several times over. Those tests get this much more; every other fast test must
# finish in FAST_TIMEOUT.
BUILD_TIMEOUT = 180


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = SLOW.get(item.path.name, ())
        if names is None or item.originalname in (names or ()):  # type: ignore[attr-defined]
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Timeouts, once the selection (-m, -k) is final: which test builds a shared fixture depends on it."""
    built: set[tuple[str, str]] = set()
    for item in session.items:
        info = getattr(item, "_fixtureinfo", None)
        shared = {(d.baseid, d.argname) for defs in (info.name2fixturedefs.values() if info else ())
                  for d in defs[-1:] if d.scope != "function"}
        builds, built = bool(shared - built), built | shared
        if item.get_closest_marker("timeout") is None:  # a test's own @pytest.mark.timeout wins
            seconds = SLOW_TIMEOUT if item.get_closest_marker("slow") else FAST_TIMEOUT
            item.add_marker(pytest.mark.timeout(seconds + (BUILD_TIMEOUT if builds else 0)))


def _leaky(var: str) -> bool:
    """Developer settings that must not reach the suite (PAPERCHAT_TEST_* are the suite's own knobs)."""
    return ((var.startswith("PAPERCHAT_") and not var.startswith("PAPERCHAT_TEST_"))
            or var.startswith("OPENAI_"))


@functools.lru_cache(maxsize=1)
def _suite_env() -> dict[str, str]:
    """Settings the whole suite runs with. On a CPU without native bf16, `auto` would quantise the model to int8
    ONNX at the first ingest (~20-30 s of CPU, once per cache): the suite embeds in fp32 there instead, and
    tests/test_embeddings.py tests the int8 path explicitly. On bf16 CPUs the default (`auto` = bf16) stays."""
    from ingest.embeddings import resolve_precision

    return {} if resolve_precision("auto") != "int8" else {"PAPERCHAT_EMBED_PRECISION": "fp32"}


@pytest.fixture(scope="session", autouse=True)
def _scrubbed_env() -> Iterator[None]:
    """Session-wide, before any session or module fixture is built: no PAPERCHAT_* / OPENAI_* from the
    developer's shell (a PAPERCHAT_CHROMA_URL or OPENAI_API_KEY would otherwise reach shared engines)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if _leaky(var):
                mp.delenv(var, raising=False)
        for var, value in _suite_env().items():
            mp.setenv(var, value)
        yield


@pytest.fixture(scope="session", autouse=True)
def _one_model_per_session() -> Iterator[None]:
    """Every LocalEmbedding in this process shares one loaded torch model (per path, precision and batch size),
    and none starts the background ONNX export of the query model after an ingest: that is a child process
    of ~20 s of CPU per session cache (tests/test_embeddings.py tests the export; queries here run on torch)."""

    import ingest.encoders
    from ingest.embeddings import LocalEmbedding

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest.encoders, "TorchEncoder", functools.lru_cache(maxsize=None)(ingest.encoders.TorchEncoder))
        mp.setattr(LocalEmbedding, "ensure_query_model", lambda self: None)
        yield


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's embedding cache, seeded with the model's vectors of the sample's chunks (tests/sample_vectors.py)."""
    from tests.sample_vectors import seed

    path = tmp_path_factory.mktemp("embcache")
    seed(path / "embeddings.sqlite")
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> None:
    """No test touches the user's data: a temp home, a shared embedding cache, no LLM env leaking in."""
    for var in list(os.environ):
        if _leaky(var):
            monkeypatch.delenv(var, raising=False)
    for var, value in _suite_env().items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("PAPERCHAT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAPERCHAT_CACHE_DIR", str(cache_dir))


@pytest.fixture(scope="session")
def sample_engine(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):  # type: ignore[no-untyped-def]
    """A Paperchat over the 65 sample papers, ingested once per session (read-only use)."""
    from rag.engine import Paperchat

    pc = Paperchat(home=tmp_path_factory.mktemp("sample_home"), cache_dir=cache_dir)
    report = pc.ingest([SAMPLE])
    assert report.added == 65
    return pc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright, one per test module (tests/browser_support.py)."""
    from playwright.sync_api import sync_playwright

    from tests.browser_support import ARTIFACTS, CHROMIUM, FLAGS, need_chromium

    need_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()

class NetworkGuard:
    """Records every outgoing socket connect; loopback and unix sockets only are allowed."""

    def __init__(self) -> None:
        self.attempts: list[object] = []

    def outside(self) -> list[object]:
        bad = []
        for addr in self.attempts:
            if isinstance(addr, tuple) and addr:
                host = str(addr[0])
                try:
                    if ipaddress.ip_address(host.split("%")[0]).is_loopback:
                        continue
                except ValueError:
                    if host == "localhost":
                        continue
                bad.append(addr)
        return bad


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Fails nothing by itself; refuses non-loopback connects and records all of them."""
    guard = NetworkGuard()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(addr: object) -> None:
        guard.attempts.append(addr)
        if guard.outside()[-1:] == [addr]:
            raise OSError(f"test network guard: refused non-loopback connect to {addr!r}")

    def connect(self: socket.socket, addr: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(addr)
        return real_connect(self, addr)

    def connect_ex(self: socket.socket, addr: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(addr)
        return real_connect_ex(self, addr)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
