"""Durability: re-ingest is idempotent; `kill -9` of a `paperchat ingest` at random points, then a rerun, leaves
exact paper and chunk counts with nothing duplicated and `paperchat doctor` ok; a query while an ingest runs in
another process does not crash; doctor finds and repairs a BM25 index that disagrees with Chroma."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.chunking import chunk_paper
from ingest.lexical import DIRTY, LexDoc, LexicalIndex
from ingest.pipeline import check_collection
from ingest.readers import Located, read_path
from rag.cli import main
from rag.engine import Paperchat
from tests.conftest import ROOT
from tests.shared_model import embedding_model

TOPICS = ["sparse attention", "graph neural networks", "speech recognition", "protein folding", "code generation",
          "reinforcement learning", "image segmentation", "machine translation", "time series forecasting",
          "federated learning", "diffusion models", "retrieval augmented generation", "quantization",
          "robot manipulation", "recommender systems", "causal inference", "weather prediction", "theorem proving"]
METHODS = ["a contrastive objective", "mixture of experts", "low-rank adapters", "curriculum learning",
           "knowledge distillation", "state space layers", "self-training", "Bayesian optimisation"]
N = 100  # records in the kill -9 corpus
DATA = ["ImageNet", "LibriSpeech", "WMT", "OGB", "MuJoCo", "HumanEval", "MovieLens", "ERA5", "CASP"]


def corpus(n: int, seed: int = 0, changed: float = 0.0) -> list[dict[str, object]]:
    """n synthetic arXiv-style records; a quarter are long enough for two chunks.

    `changed` rewrites that fraction of the abstracts (same ids), as a newer version of the file would.
    """
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t, m, d = TOPICS[i % len(TOPICS)], METHODS[(i // 3) % len(METHODS)], DATA[(i * 7) % len(DATA)]
        sents = [f"We study {t} with {m} and report results on {d} (study {i}).",
                 f"Our variant number {i} improves accuracy by {rnd.randint(1, 30)} points over strong baselines.",
                 f"Ablations show that {m} matters most when data for {t} is scarce."]
        if i % 4 == 0:
            sents += [f"Sentence {k} of a longer abstract discusses {t}, {m}, {d} and limitation {k} in detail, "
                      f"including compute cost and open questions." for k in range(9)]
        if rnd.random() < changed:
            sents.append(f"This revised version adds experiments number {i} on out-of-distribution {d}.")
        out.append({"id": f"2401.{i:05d}", "title": f"{t.capitalize()} with {m}: study {i}", "abstract": " ".join(sents),
                    "authors": ["A. Author", f"B. Writer{i}"], "categories": "cs.LG", "update_date": "2024-01-15"})
    return out


@pytest.fixture(scope="module")
def embed(cache_dir: Path):  # type: ignore[no-untyped-def]
    """One loaded embedding model for the in-process engines (the children load their own)."""
    return embedding_model(cache_dir)


def engine(home: Path, embed) -> Paperchat:  # type: ignore[no-untyped-def]
    pc = Paperchat(home=home)
    pc._embed = embed  # share the loaded model; the index is what is under test
    return pc


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def spawn_ingest(path: Path, home: Path, batch: int) -> subprocess.Popen[bytes]:
    """`paperchat ingest` in a child process, with small batches so there are many points to die at."""
    code = ("import sys, ingest.pipeline as p; p.BATCH_PAPERS = int(sys.argv[1]); from rag.cli import main; "
            "sys.exit(main(sys.argv[2:]))")
    return subprocess.Popen([sys.executable, "-c", code, str(batch), "ingest", str(path), "--quiet", "--home", str(home)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())


def kill_at_random_point(proc: subprocess.Popen[bytes], home: Path, rnd: random.Random, window: float) -> str:
    """Wait until the child starts writing (BM25 marked dirty), then SIGKILL it after a random delay."""
    marker = home / "bm25" / "papers" / DIRTY
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    delay = rnd.uniform(0, window)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed {delay:.2f}s after the first write"
    return f"finished before the kill at {delay:.2f}s (rc {proc.returncode})"


def expected_nodes(path: Path, pc: Paperchat) -> dict[str, str]:
    """chunk id -> paper id that a clean ingest of `path` stores."""
    out = {}
    for item in read_path(path):
        assert isinstance(item, Located)
        for node in chunk_paper(item.paper, window_tokens=pc.embed.window_tokens):
            out[node.node_id] = item.paper.paper_id
    return out


def assert_exact(pc: Paperchat, path: Path) -> None:
    want = expected_nodes(path, pc)
    got = pc.store.collection.get(include=["metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == pc.store.count()
    assert sorted(got["ids"]) == sorted(want), "chunk ids differ from a clean ingest (stale or missing chunks)"
    assert sorted(pc.lexical.ids) == sorted(set(want.values())), "BM25 papers differ from Chroma"
    assert pc.lexical.n_chunks == len(want)
    assert check_collection(pc.store, pc.lexical).ok


def test_reingest_is_idempotent(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    f = write_jsonl(tmp_path / "c.jsonl", corpus(40))
    pc = engine(tmp_path / "h", embed)
    first = pc.ingest([f])
    assert (first.added, first.records) == (40, 40)
    chunks = pc.store.count()
    for _ in range(2):
        again = pc.ingest([f])
        assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 40, 0)
        assert (pc.store.count(), len(pc.lexical.ids)) == (chunks, 40)
    assert_exact(pc, f)


def test_kill_9_at_random_points_then_rerun_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     embed) -> None:  # type: ignore[no-untyped-def]
    seed = int(os.environ.get("PAPERCHAT_TEST_SEED", random.randrange(10_000)))
    rnd = random.Random(seed)
    home = tmp_path / "home"
    v1 = write_jsonl(tmp_path / "v1.jsonl", corpus(N))
    v2 = write_jsonl(tmp_path / "v2.jsonl", corpus(N, changed=0.3))  # the same ids, some abstracts changed
    log = [f"seed {seed}"]
    log.append("v1: " + kill_at_random_point(spawn_ingest(v1, home, batch=20), home, rnd, window=3.0))
    log.append("v2: " + kill_at_random_point(spawn_ingest(v2, home, batch=20), home, rnd, window=2.0))

    pc = engine(home, embed)  # opening repairs BM25 from Chroma when the marker or the counts say so
    report = pc.ingest([v2])
    assert report.records == N and report.rejected == [], log
    assert report.added + report.updated + report.unchanged == N, log
    assert_exact(pc, v2)
    assert len(pc.lexical.ids) == N
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 0, log
    assert capsys.readouterr().out.strip().endswith(f"ok: {N} papers, {pc.store.count()} chunks")


def test_query_while_another_process_ingests(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    f = write_jsonl(tmp_path / "c.jsonl", corpus(90))
    seed_file = write_jsonl(tmp_path / "seed.jsonl", corpus(6, seed=9))
    engine(home, embed).ingest([seed_file])  # the child updates these six (same ids) and adds the rest
    proc = spawn_ingest(f, home, batch=5)
    marker = home / "bm25" / "papers" / DIRTY
    answers = 0
    try:
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.02)
        stop = time.monotonic() + 8
        while (proc.poll() is None and time.monotonic() < stop) or answers == 0:
            reader = engine(home, embed)  # a fresh reader each time: opening must cope with a half-written index
            ans = reader.ask("Which study uses knowledge distillation for speech recognition?")
            assert ans.question and (ans.abstained or ans.citations)
            for c in ans.citations:
                assert ans.sources[c.n - 1].paper_id == c.paper_id
            answers += 1
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    final = engine(home, embed)
    assert len(final.lexical.ids) == 90 and check_collection(final.store, final.lexical).ok


def test_doctor_finds_and_repairs_bm25_disagreements(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     embed) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    f = write_jsonl(tmp_path / "c.jsonl", corpus(12))
    pc = engine(home, embed)
    pc.ingest([f])
    lex_dir = home / "bm25" / "papers"
    ids = sorted(pc.lexical.ids)
    # BM25 that lost two papers and gained one Chroma never had, with the chunk count left right
    docs = [LexDoc(pid, "text", 2024, ("cs.LG",)) for pid in ids[2:]] + [LexDoc("arxiv:9999.99999", "ghost", None, ())]
    LexicalIndex(lex_dir).build(docs, pc.store.count())
    capsys.readouterr()
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 1
    out = capsys.readouterr().out
    assert f"problem: 2 papers in Chroma missing from BM25 ({ids[0]}, {ids[1]})" in out
    assert "problem: 1 papers in BM25 but not in Chroma (arxiv:9999.99999)" in out
    assert main(["doctor", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "repaired: BM25 rebuilt from Chroma" in out and out.strip().endswith(f"ok: 12 papers, {pc.store.count()} chunks")
    # a corrupt index file and a leftover dirty marker are repaired too
    (lex_dir / "papers.json").write_text("{truncated")
    (lex_dir / DIRTY).write_text("x")
    assert main(["doctor", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "BM25 index is marked dirty" in out and "BM25 index missing or unreadable" in out
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 0
