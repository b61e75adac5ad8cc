"""Fusion and aggregation on hand-made rankings."""

from __future__ import annotations

import pytest

from rag.retrieval.fusion import aggregate_max, minmax, rrf, score_fusion


def test_rrf_hand_computed() -> None:
    got = dict(rrf([["a", "b", "c"], ["c", "a"]], k=1))
    assert got["a"] == pytest.approx(1 / 2 + 1 / 3)
    assert got["b"] == pytest.approx(1 / 3)
    assert got["c"] == pytest.approx(1 / 4 + 1 / 2)
    assert [d for d, _ in rrf([["a", "b", "c"], ["c", "a"]], k=1)] == ["a", "c", "b"]


def test_rrf_weights() -> None:
    assert rrf([["a"], ["b"]], weights=[1.0, 2.0], k=0)[0][0] == "b"


def test_score_fusion_minmax() -> None:
    assert minmax({"a": 2.0, "b": 4.0}) == {"a": 0.0, "b": 1.0}
    assert minmax({"a": 3.0}) == {"a": 1.0}
    fused = dict(score_fusion([{"a": 0.9, "b": 0.1}, {"b": 10.0, "c": 0.0}], weights=[1.0, 0.5]))
    assert fused == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})


def test_aggregate_max_keeps_best_chunk_per_paper() -> None:
    assert aggregate_max([("p1", 0.2), ("p2", 0.5), ("p1", 0.7)]) == {"p1": 0.7, "p2": 0.5}
