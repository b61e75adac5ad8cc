"""A Chroma error in the dense query (another process writing) costs one short retry, then BM25 alone; never a crash.

The real case is tests/test_durability.py (a reader querying while ingests are killed); this pins the rule."""

from __future__ import annotations

from typing import Any

import pytest
from chromadb.errors import InternalError

from ingest.filters import Filters
from rag.retrieval import hybrid
from rag.retrieval.hybrid import HybridRetriever


class _Collection:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def query(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise InternalError("Error creating hnsw segment reader: Nothing found on disk")
        return {"ids": [["p1#0", "p2#0"]], "distances": [[0.2, 0.5]]}


class _Store:
    def __init__(self, failures: int) -> None:
        self.collection = _Collection(failures)


class _Lexical:
    def search(self, query: str, k: int, filters: Filters) -> list[tuple[str, float]]:
        return [("p3", 7.0), ("p2", 3.0)]


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hybrid, "RETRY_S", 0.0)


def retriever(failures: int) -> HybridRetriever:
    return HybridRetriever(_Store(failures), _Lexical(), embed=None, fusion="score")  # type: ignore[arg-type]


def test_one_failure_is_retried() -> None:
    r = retriever(1)
    assert r.dense([0.0], Filters()) == pytest.approx({"p1": 0.8, "p2": 0.5})
    assert r.store.collection.calls == 2


def test_two_failures_leave_bm25_alone(caplog: pytest.LogCaptureFixture) -> None:
    r = retriever(2)
    hits = r.hits("q", query_embedding=[0.0])
    assert [h.paper_id for h in hits] == ["p3", "p2"]
    assert all(h.dense == 0.0 for h in hits)
    assert "answering from BM25 alone" in caplog.text
