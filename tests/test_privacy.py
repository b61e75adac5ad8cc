"""Privacy: with the default settings nothing on the ingest, ask, stats and doctor paths connects to (or even
looks up) anything but loopback. Every socket connect and every name lookup is recorded; a non-loopback
one fails the test. (`paperchat eval` and `serve` are covered by their owners' tests.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rag.cli import main
from rag.engine import Paperchat
from tests.conftest import ROOT, NetworkGuard

PAPERS = ROOT / "tests" / "data" / "questions" / "papers.jsonl"
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names passed to getaddrinfo (a DNS query leaks the host you are about to contact)."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def record(host, *args, **kw):  # type: ignore[no-untyped-def]
        seen.append(str(host or ""))
        if seen[-1] not in LOCAL_NAMES and not seen[-1].startswith("127."):
            raise OSError(f"test network guard: refused lookup of {host!r}")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", record)
    return seen


def test_ingest_ask_stats_doctor_stay_on_loopback(tmp_path: Path, network_guard: NetworkGuard, lookups: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pc = Paperchat()  # default settings (PAPERCHAT_HOME is a temp dir; no LLM configured)
    assert pc.ingest([PAPERS]).added == 6
    assert not pc.ask("Why does grokking happen in deep networks?").abstained
    for _ in pc.ask_stream("How can a fact in a language model be edited?"):
        pass
    pc.retrieve("speech synthesis", k=3)
    # the command line, the same way a user runs it (ingest of an empty file still opens everything)
    f = tmp_path / "empty.jsonl"
    f.write_text("")
    assert main(["ingest", str(f), "--quiet"]) == 1
    assert main(["ask", "What is grokking?", "--json"]) == 0
    assert main(["stats", "--json"]) == 0
    assert main(["doctor"]) == 0
    capsys.readouterr()
    assert network_guard.outside() == [], f"non-loopback connects: {network_guard.outside()}"
    assert [h for h in lookups if h not in LOCAL_NAMES and not h.startswith("127.")] == []


def test_the_guard_itself_catches_an_outside_connect(network_guard: NetworkGuard, lookups: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(OSError, match="network guard"):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed
    with pytest.raises(OSError, match="network guard"):
        socket.getaddrinfo("example.com", 443)
    assert network_guard.outside() == [("192.0.2.1", 443)] and lookups == ["example.com"]


def test_eval_qa_stays_on_loopback(tmp_path: Path, network_guard: NetworkGuard, lookups: list[str]) -> None:
    """`paperchat eval qa` with default settings (extractive, throwaway collection) opens nothing outside."""
    from eval.qa import run_qa

    result = run_qa(ROOT / "eval" / "datasets" / "seed_qa.jsonl", out=tmp_path / "out", limit=3, progress=False)
    assert (tmp_path / "out" / "report.json").exists() and result is not None
    assert network_guard.outside() == []
    assert all(h in LOCAL_NAMES or h.startswith("127.") for h in lookups)


def test_the_subprocess_guard_records_an_outside_attempt(tmp_path: Path) -> None:
    """The guard the UI test puts on `paperchat serve` (tests/data/netguard) really catches and logs."""
    import os
    import subprocess
    import sys

    log = tmp_path / "net.txt"
    env = {**os.environ, "PAPERCHAT_TEST_NETLOG": str(log), "PYTHONPATH": str(ROOT / "tests" / "data" / "netguard")}
    code = ("import socket\n"
            "for f in (lambda: socket.create_connection(('192.0.2.1', 443), timeout=1),"
            " lambda: socket.getaddrinfo('example.com', 443)):\n"
            "    try: f()\n"
            "    except OSError as e: print(e)\n"
            "socket.getaddrinfo('127.0.0.1', 80)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.count("test network guard") == 2
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and "192.0.2.1" in lines[0] and "example.com" in lines[1]
