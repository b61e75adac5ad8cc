"""Server mode: the same ingest, ask and stats against a real `chroma run` on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.engine import Paperchat
from tests.conftest import SAMPLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma_server")
    proc = subprocess.Popen([exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_server_mode_ingest_ask_stats(chroma_url: str, tmp_path: Path) -> None:
    pc = Paperchat(home=tmp_path / "h", chroma_url=chroma_url, collection="server_sample")
    report = pc.ingest([SAMPLE])
    assert report.added == 65
    assert pc.ingest([SAMPLE]).unchanged == 65
    ans = pc.ask("Which paper explains why grokking happens in deep networks?")
    assert ans.citations[0].title == "Deep Networks Always Grok and Here is Why"
    st = pc.stats()
    assert st["chroma"] == chroma_url and st["papers"] == 65
    # a second client (another process or machine) sees the same collection and rebuilds its BM25 from it
    other = Paperchat(home=tmp_path / "other", chroma_url=chroma_url, collection="server_sample")
    assert other.stats()["papers"] == 65
    assert other.ask("What is the boiling point of ethanol?").abstained


def test_cli_against_server(chroma_url: str, tmp_path: Path) -> None:
    from rag.cli import main

    assert main(["ingest", str(SAMPLE), "--quiet", "--chroma-url", chroma_url, "--collection", "cli_sample"]) == 0
    assert main(["doctor", "--chroma-url", chroma_url, "--collection", "cli_sample"]) == 0
