"""Collection internals: readers never wait for the writer, fingerprints, and the incremental-engine path."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ingest.collection import Collection
from ingest.lexical import Bm25Index, LexDoc
from ingest.store import fingerprint, fingerprint_update
from tests.shared_model import embedding_model
from tests.test_durability import corpus, write_jsonl


class IncrementalBm25(Bm25Index):
    """An `incremental` engine for the tests: keeps its papers' text beside the index and records its calls."""

    incremental = True
    calls: list[str] = []

    def __init__(self, *a: Any, docs: dict[str, LexDoc] | None = None, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.docs = docs or {}

    @classmethod
    def open(cls, directory: Path) -> IncrementalBm25:
        base = Bm25Index.open(directory)
        raw = json.loads(((directory / "current").resolve() / "docs.json").read_text())
        docs = {d[0]: LexDoc(d[0], d[1], d[2], tuple(d[3])) for d in raw}
        return cls(directory, base._bm25, base._ids, base._years, base._cats, base.fingerprint(), base.n_chunks(),
                   docs=docs)

    def rebuild(self, docs: Iterable[LexDoc], fingerprint: str, n_chunks: int) -> IncrementalBm25:
        docs = list(docs)
        self.calls.append(f"rebuild {len(docs)}")
        return self._write(docs, fingerprint, n_chunks)

    def _write(self, docs: list[LexDoc], fp: str, n_chunks: int) -> IncrementalBm25:
        Bm25Index.rebuild(self, docs, fp, n_chunks)
        ((self.dir / "current").resolve() / "docs.json").write_text(
            json.dumps([[d.paper_id, d.text, d.year, list(d.categories)] for d in docs]))
        return IncrementalBm25.open(self.dir)

    def add(self, docs: Sequence[LexDoc], fingerprint: str, n_chunks: int) -> IncrementalBm25:
        self.calls.append(f"add {len(docs)}")
        merged = {**self.docs, **{d.paper_id: d for d in docs}}
        return self._write(sorted(merged.values(), key=lambda d: d.paper_id), fingerprint, n_chunks)

    def delete(self, paper_ids: Sequence[str], fingerprint: str, n_chunks: int) -> IncrementalBm25:
        self.calls.append(f"delete {len(paper_ids)}")
        kept = [d for p, d in sorted(self.docs.items()) if p not in set(paper_ids)]
        return self._write(kept, fingerprint, n_chunks)


def test_fingerprint_is_order_free_and_updatable() -> None:
    pairs = [("a", "1"), ("b", "2"), ("c", "3")]
    assert fingerprint(pairs) == fingerprint(reversed(pairs))
    assert fingerprint_update(fingerprint(pairs[:2]), [], [pairs[2]]) == fingerprint(pairs)
    assert fingerprint_update(fingerprint(pairs), [("b", "2")], [("b", "9")]) == fingerprint([("a", "1"), ("b", "9"), ("c", "3")])
    assert fingerprint_update(fingerprint(pairs), pairs, []) == fingerprint([]) == "0-" + "0" * 32


def test_an_incremental_engine_gets_adds_and_deletes_and_stays_consistent(tmp_path: Path, cache_dir: Path) -> None:
    IncrementalBm25.calls = []
    col = Collection(tmp_path / "h", embed=embedding_model(cache_dir), lexical_engine=IncrementalBm25)
    col.ingest([write_jsonl(tmp_path / "a.jsonl", corpus(10))])  # no index yet: built whole
    r = col.ingest([write_jsonl(tmp_path / "b.jsonl", corpus(14, changed=0.5, seed=2))])  # 4 new, some changed
    col.delete(["arxiv:2401.00003", "arxiv:2401.00004"])
    assert r.added == 4 and r.updated >= 1
    assert IncrementalBm25.calls == ["rebuild 10", f"add {r.added + r.updated}", "delete 2"]
    h = col.health()
    assert h.ok, h
    assert col.lexical.fingerprint() == h.fingerprint == col.store.stored_fingerprint()
    assert col.count_papers() == 12 and "arxiv:2401.00003" not in col.lexical.paper_ids()
    assert col.lexical.search("study 13", 3)


def test_readers_do_not_wait_for_the_writer(tmp_path: Path, cache_dir: Path) -> None:
    col = Collection(tmp_path / "h", embed=embedding_model(cache_dir))
    col.ingest([write_jsonl(tmp_path / "a.jsonl", corpus(6))])
    col.recheck_s = 0.0
    assert col._writer.acquire()  # a writer holds the lock (as an ingest does for its whole run)
    try:
        col.marker.write()
        done: list[float] = []

        def read() -> None:
            t0 = time.perf_counter()
            col.count_papers(), col.list_papers(limit=3), col.lexical.search("study", 5), col.papers(["arxiv:2401.00001"])
            col.refresh()
            done.append(time.perf_counter() - t0)

        t = threading.Thread(target=read)
        t.start()
        t.join(30)
        assert done and done[0] < 10, "a reader waited for the writer"
        assert col.marker.path.exists(), "a reader removed the live writer's marker"
    finally:
        col.marker.clear()
        col._writer.release()


def test_a_second_writer_process_waits_for_the_lock(tmp_path: Path) -> None:
    """The flock is per open file: a second Collection (as another process would) cannot take it."""
    a, b = Collection(tmp_path / "h"), Collection(tmp_path / "h")
    assert a._writer.acquire()
    try:
        assert not b._writer.acquire(blocking=False)
    finally:
        a._writer.release()
    assert b._writer.acquire(blocking=False)
    b._writer.release()


@pytest.mark.parametrize("bad", ["", "not json", '{"pid": "x"}'])
def test_an_unreadable_marker_is_stale(tmp_path: Path, bad: str) -> None:
    col = Collection(tmp_path / "h")
    col.marker.path.parent.mkdir(parents=True)
    col.marker.path.write_text(bad)
    assert not col.marker.live()


@pytest.mark.parametrize("engine", ["sqlite", "bm25s"])
def test_find_titles_is_the_typed_text_inside_a_title_on_either_engine(tmp_path: Path, cache_dir: Path,
                                                                       engine: str) -> None:
    from ingest.collection import ENGINES

    col = Collection(tmp_path / "h", embed=embedding_model(cache_dir), lexical_engine=ENGINES[engine])
    col.ingest([write_jsonl(tmp_path / "a.jsonl", corpus(12))])
    titles = sorted((str(p["title"]).lower(), str(p["paper_id"])) for p in col.list_papers())
    want = [pid for t, pid in titles if ": study 1" in t]  # study 1, 10, 11
    assert [p["paper_id"] for p in col.find_titles(": STUDY 1", 10)] == want and len(want) == 3
    assert col.find_titles("writer1", 10) == []  # authors match list_papers, not the picker
    assert len(col.find_titles("", 5)) == 5
