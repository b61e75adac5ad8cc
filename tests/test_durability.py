"""Durability: re-ingest is idempotent; `kill -9` of a `paperchat ingest` at random points (with a reader
querying throughout), then a rerun, leaves exact paper and chunk counts with nothing duplicated, sentence
vectors for exactly the stored content, and `paperchat doctor` ok; a query while an ingest runs in another process does not crash; a stale lexical
index is always detected and repaired; doctor finds and repairs a lexical index that disagrees with Chroma."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.chunking import chunk_paper
from ingest.bm25sql import SqliteBm25
from ingest.collection import ENGINES, Collection
from ingest.lexical import Bm25Index, LexDoc
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


def engine(home: Path, embed, lexical: str = "sqlite") -> Paperchat:  # type: ignore[no-untyped-def]
    """A Paperchat sharing the loaded model (the index is what is under test)."""
    return Paperchat.over(Collection(home, embed=embed, lexical_engine=ENGINES[lexical], sentence_evidence=True),
                          home=home, lexical_engine=lexical, sentence_evidence=True)


QUERIES = ["knowledge distillation for speech recognition", "sparse attention study 12", "protein folding CASP",
           "revised version out-of-distribution", "mixture of experts on ImageNet"]


def assert_same_as_rebuild(pc: Paperchat, scratch: Path) -> None:
    """The incremental index scores every query exactly as an index rebuilt from what Chroma holds."""
    from ingest.collection import lexical_docs
    from ingest.store import assemble_papers

    fresh = SqliteBm25.empty(scratch).rebuild(lexical_docs(assemble_papers(pc.store.iter_chunks()).values()))
    assert pc.lexical.fingerprint() == fresh.fingerprint()
    for q in QUERIES:
        got, want = dict(pc.lexical.search(q, 10_000)), dict(fresh.search(q, 10_000))
        assert set(got) == set(want), q
        assert all(abs(got[p] - want[p]) < 1e-4 for p in want), q


def marker_of(home: Path) -> Path:
    return home / "bm25" / "papers.DIRTY"


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
    marker = marker_of(home)
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
    assert sorted(pc.lexical.paper_ids()) == sorted(set(want.values())), "lexical papers differ from Chroma"
    assert pc.lexical.n_chunks() == len(want)
    h = pc.health()
    assert h.ok, h
    assert pc.lexical.fingerprint() == h.fingerprint == pc.store.stored_fingerprint()
    stored = {str(m["paper_id"]): str(m["content_hash"]) for m in got["metadatas"]}
    assert pc.collection.sentences is not None and pc.collection.sentences.hashes() == stored, \
        "sentence vectors are not exactly those of the stored papers' content"
    assert h.notes == []


def test_reingest_is_idempotent(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    f = write_jsonl(tmp_path / "c.jsonl", corpus(40))
    pc = engine(tmp_path / "h", embed)
    first = pc.ingest([f])
    assert (first.added, first.records) == (40, 40)
    chunks = pc.store.count()
    for _ in range(2):
        again = pc.ingest([f])
        assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 40, 0)
        assert (pc.store.count(), pc.count_papers()) == (chunks, 40)
    assert_exact(pc, f)


def test_kill_9_at_random_points_then_rerun_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, embed) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAPERCHAT_SENTENCE_EVIDENCE", "true")  # the children write sentence vectors too
    seed = int(os.environ.get("PAPERCHAT_TEST_SEED", random.randrange(10_000)))
    rnd = random.Random(seed)
    home = tmp_path / "home"
    v1 = write_jsonl(tmp_path / "v1.jsonl", corpus(N))
    v2 = write_jsonl(tmp_path / "v2.jsonl", corpus(N, changed=0.3))  # the same ids, some abstracts changed
    log = [f"seed {seed}"]
    reader = engine(home, embed)  # one long-lived reader in this process, querying while children write and die
    reader.collection.recheck_s = 0.0
    stop = threading.Event()
    errors: list[BaseException] = []

    def read_loop() -> None:
        while not stop.is_set():
            try:
                ans = reader.ask("Which study uses knowledge distillation for speech recognition?")
                for c in ans.citations:
                    assert ans.sources[c.n - 1].paper_id == c.paper_id
                reader.list_papers(limit=5)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return
            time.sleep(0.05)

    t = threading.Thread(target=read_loop, daemon=True)
    t.start()
    try:
        log.append("v1: " + kill_at_random_point(spawn_ingest(v1, home, batch=20), home, rnd, window=3.0))
        log.append("v2: " + kill_at_random_point(spawn_ingest(v2, home, batch=20), home, rnd, window=2.0))
    finally:
        stop.set()
        t.join(60)
    assert not errors, (log, errors)
    assert reader.collection.marker.path.exists() or reader.health().ok, log  # a kill leaves the marker

    # the reader's next check sees the dead writer's marker and repairs the lexical index itself
    if reader.collection.marker.path.exists():
        assert not reader.collection.marker.live()
        reader.collection.refresh()
        assert not reader.collection.marker.path.exists(), log
        h = reader.health()
        assert not h.problems, (log, h)
        assert reader.lexical.fingerprint() == h.fingerprint, log

    pc = engine(home, embed)
    report = pc.ingest([v2])
    assert report.records == N and report.rejected == [], log
    assert report.added + report.updated + report.unchanged == N, log
    assert_exact(pc, v2)
    assert pc.count_papers() == N
    assert_same_as_rebuild(pc, tmp_path / "rebuilt")
    assert pc.lexical.pending() == []
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 0, log
    assert capsys.readouterr().out.strip().endswith(f"ok: {N} papers, {pc.store.count()} chunks")


def test_query_while_another_process_ingests(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    f = write_jsonl(tmp_path / "c.jsonl", corpus(90))
    seed_file = write_jsonl(tmp_path / "seed.jsonl", corpus(6, seed=9))
    engine(home, embed).ingest([seed_file])  # the child updates these six (same ids) and adds the rest
    proc = spawn_ingest(f, home, batch=5)
    marker = marker_of(home)
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
    assert final.count_papers() == 90 and final.health().ok
    assert not marker.exists()


def test_long_lived_reader_picks_up_another_process_ingest(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    """A serving process re-checks the fingerprint (cheaply) and loads what another process published."""
    home = tmp_path / "home"
    first = write_jsonl(tmp_path / "a.jsonl", corpus(8))
    reader = engine(home, embed)
    reader.ingest([first])
    reader.collection.recheck_s = 0.0
    assert reader.count_papers() == 8
    proc = spawn_ingest(write_jsonl(tmp_path / "b.jsonl", corpus(20)), home, batch=50)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert reader.count_papers() == 20  # no restart
    assert reader.retrieve("study 17", k=20, mode="bm25"), "BM25 must see the other process's papers"
    assert {p["paper_id"] for p in reader.list_papers()} == {f"arxiv:2401.{i:05d}" for i in range(20)}


def test_doctor_finds_and_repairs_bm25_disagreements(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     embed) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAPERCHAT_LEXICAL_ENGINE", "bm25s")  # the rebuilt engine (the CLI reads the setting)
    home = tmp_path / "home"
    f = write_jsonl(tmp_path / "c.jsonl", corpus(12))
    pc = engine(home, embed, "bm25s")
    pc.ingest([f])
    lex_dir = home / "bm25" / "papers"
    ids = sorted(pc.lexical.paper_ids())
    fp, n = pc.lexical.fingerprint(), pc.lexical.n_chunks()
    # a lexical index that lost two papers and gained one Chroma never had, with fingerprint and counts left right
    docs = [LexDoc(pid, "text", 2024, ("cs.LG",)) for pid in ids[2:]] + [LexDoc("arxiv:9999.99999", "ghost", None, ())]
    Bm25Index.empty(lex_dir).rebuild(docs, fp, n)
    capsys.readouterr()
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 1
    out = capsys.readouterr().out
    assert f"problem: 2 papers in Chroma missing from the lexical index ({ids[0]}, {ids[1]})" in out
    assert "problem: 1 papers in the lexical index but not in Chroma (arxiv:9999.99999)" in out
    assert main(["doctor", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "repaired: lexical index" in out
    assert out.strip().endswith(f"ok: 12 papers, {pc.store.count()} chunks")
    # a stale fingerprint alone (same papers, other content) is found
    Bm25Index.empty(lex_dir).rebuild([LexDoc(pid, "text", 2024, ()) for pid in ids], "12-0", n)
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 1
    assert "fingerprint 12-0 differs" in capsys.readouterr().out
    # a corrupt index file and a leftover dirty marker of a dead writer are repaired too
    (lex_dir / "current" / "papers.json").write_text("{truncated")
    marker_of(home).write_text('{"pid": 999999999, "start": "1", "host": "elsewhere"}')
    assert main(["doctor", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "an ingest was interrupted" in out and "lexical index missing or unreadable" in out
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 0
    assert not marker_of(home).exists()


def test_reader_never_removes_a_live_writers_marker(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    """A reader opening mid-ingest uses the last published index and leaves the marker alone."""
    home = tmp_path / "home"
    pc = engine(home, embed)
    pc.ingest([write_jsonl(tmp_path / "a.jsonl", corpus(5))])
    pc.collection.marker.write()  # this process is alive: the marker is a live writer's
    reader = engine(home, embed)
    assert reader.count_papers() == 5
    reader.collection.refresh()
    assert pc.collection.marker.path.exists()
    assert reader.health().problems == ["lexical index is marked dirty (an ingest is running)"]
    pc.collection.marker.clear()


def test_doctor_finds_and_repairs_incremental_index_disagreements(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  embed) -> None:  # type: ignore[no-untyped-def]
    from ingest.bm25sql import IndexDoc

    home = tmp_path / "home"
    f = write_jsonl(tmp_path / "c.jsonl", corpus(12))
    pc = engine(home, embed)
    pc.ingest([f])
    lex_dir = home / "bm25" / "papers"
    ids = sorted(pc.lexical.paper_ids())
    lex = SqliteBm25.open(lex_dir)
    lex.delete(ids[:2])
    lex.add([IndexDoc("arxiv:9999.99999", "ghost paper", None, ())])
    lex.add([IndexDoc(ids[5], "other text", None, (), content_hash="stale")])  # same paper, other content
    capsys.readouterr()
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 1
    out = capsys.readouterr().out
    assert f"problem: 2 papers in Chroma missing from the lexical index ({ids[0]}, {ids[1]})" in out
    assert "problem: 1 papers in the lexical index but not in Chroma (arxiv:9999.99999)" in out
    assert "fingerprint" in out
    assert main(["doctor", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "repaired: lexical index" in out and out.strip().endswith(f"ok: 12 papers, {pc.store.count()} chunks")
    assert_same_as_rebuild(engine(home, embed), tmp_path / "rebuilt")
    # a damaged index file is replaced and re-synced from Chroma
    for p in lex_dir.glob("bm25.sqlite*"):
        p.unlink()
    (lex_dir / "bm25.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 1
    assert "lexical index missing or unreadable" in capsys.readouterr().out
    assert main(["doctor", "--home", str(home)]) == 0
    assert main(["doctor", "--home", str(home), "--no-repair"]) == 0


def test_adding_papers_reads_and_rewrites_only_those_papers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            embed) -> None:  # type: ignore[no-untyped-def]
    """Adding 5 papers to 60: no full read of Chroma, no rebuild, the other papers' index rows untouched."""
    from ingest.store import ChunkStore

    home = tmp_path / "home"
    pc = engine(home, embed)
    pc.ingest([write_jsonl(tmp_path / "a.jsonl", corpus(60))])
    rows_before = SqliteBm25.open(home / "bm25" / "papers")._db.execute("SELECT doc, paper_id FROM docs").fetchall()

    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("a full read or rebuild during an incremental ingest")

    monkeypatch.setattr(ChunkStore, "iter_chunks", forbidden)
    monkeypatch.setattr(ChunkStore, "paper_hashes", forbidden)
    monkeypatch.setattr(SqliteBm25, "rebuild", forbidden)
    more = corpus(65)[60:]
    report = pc.ingest([write_jsonl(tmp_path / "b.jsonl", more)])
    assert (report.added, report.unchanged, pc.count_papers()) == (5, 0, 65)
    rows_after = SqliteBm25.open(home / "bm25" / "papers")._db.execute("SELECT doc, paper_id FROM docs").fetchall()
    assert set(rows_before) < set(rows_after) and len(rows_after) == 65
    monkeypatch.undo()
    assert_exact(pc, write_jsonl(tmp_path / "all.jsonl", corpus(65)))
    assert_same_as_rebuild(pc, tmp_path / "rebuilt")
