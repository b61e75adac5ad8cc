"""An interrupted ingest keeps its embedded work: commits every few seconds (whole papers), a progress bar
that moves, and a rerun that finishes exactly (issue 17: SIGINT after 76 s used to keep 0 papers)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import Pacer, ingest_paths
from tests.conftest import ROOT
from tests.shared_model import embedding_model
from tests.test_durability import assert_exact, corpus, engine, write_jsonl

N = 48


@pytest.fixture(scope="module")
def embed(cache_dir: Path) -> Any:
    return embedding_model(cache_dir)


def test_pacer_follows_the_measured_rate() -> None:
    p = Pacer(target=5.0, first=8, lo=4, hi=256)
    assert [len(s) for s in p.slices(list(range(20)))] == [8, 8, 4]
    p.record(8, 1.0)  # 0.125 s per paper -> 40 papers per commit
    assert p.size == 40
    p.record(40, 100.0)  # slower now: 2.5 s per paper -> the floor
    assert p.size == 4
    p.record(4, 0.0001)
    assert p.size == 256


@pytest.mark.slow  # real embedding of ~50 papers twice: over the fast-test budget on a loaded machine
def test_interrupt_keeps_what_was_embedded_and_a_rerun_is_exact(tmp_path: Path, embed: Any) -> None:
    f = write_jsonl(tmp_path / "c.jsonl", corpus(N, seed=4))
    pc = engine(tmp_path / "h", embed)
    col = pc.collection
    calls: list[int] = []

    def ctrl_c(done: int, _: int) -> None:
        calls.append(done)
        if done >= 12:
            raise KeyboardInterrupt  # what SIGINT does to the main thread, at a known point

    with pytest.raises(KeyboardInterrupt):
        ingest_paths([f], col.store, col.embed, progress=False, on_progress=ctrl_c, commit_seconds=0.05,
                     before_first_write=col.marker.write)
    assert len(calls) >= 2 and calls == sorted(calls)  # progress moved before the batch was done
    kept = len({m["paper_id"] for m in col.store.collection.get(include=["metadatas"])["metadatas"]})
    assert kept == calls[-1] >= 12  # everything handed to the writer was committed, whole papers only
    pc2 = engine(tmp_path / "h", embed)
    again = pc2.ingest([f])  # the next writer finds the marker, repairs the lexical index, finishes the rest
    assert (again.added, again.unchanged) == (N - kept, kept)
    assert_exact(pc2, f)


@pytest.mark.slow
def test_sigint_to_the_cli_keeps_committed_papers(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "c.jsonl", corpus(400, seed=11))
    home = tmp_path / "home"
    env = {**os.environ, "PAPERCHAT_CACHE_DIR": str(tmp_path / "cache")}  # a cold cache: real embedding work
    # SIGINT back to its default in the child: a suite started in the background (`make test &`, nohup) inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so Ctrl-C could never reach the CLI
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", str(f), "--home", str(home)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = bytearray()
    moved = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        while chunk := proc.stderr.read1(4096):  # type: ignore[attr-defined]
            err.extend(chunk)
            if any(int(n) > 0 for n in re.findall(rb"\| *(\d+)/\d+", bytes(err))):
                moved.set()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    assert moved.wait(600), "the progress bar never moved:\n" + err.decode(errors="replace")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(120)
    t.join(10)
    text = err.decode(errors="replace")
    assert rc == 130, text
    m = re.search(r"ingest interrupted: (\d+) new or updated papers were committed", text)
    assert m and int(m.group(1)) > 0, text
    from ingest.store import make_client

    got = make_client(home, None).get_collection("papers").get(include=["metadatas"])
    kept = len({x["paper_id"] for x in got["metadatas"]})
    assert kept == int(m.group(1)) and 0 < kept < 400
