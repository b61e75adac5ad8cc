"""BEIR ranking metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from eval.metrics import hit_at_k, mrr_at_k, ndcg_at_k, percentile, ranking_report, recall_at_k


def test_ndcg_hand_computed() -> None:
    rels = {"a": 1, "c": 1}
    # relevant at ranks 1 and 3: DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(["a", "b", "c"], rels, 10) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["b", "d"], rels, 10) == 0.0
    assert ndcg_at_k(["a", "c"], rels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x"], {}, 10) == 0.0
    # graded: gain = relevance
    assert ndcg_at_k(["b", "a"], {"a": 1, "b": 2}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 2}, 10) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_mrr_hit() -> None:
    rels = {"a": 1, "b": 1, "z": 0}
    assert recall_at_k(["x", "a"], rels, 100) == 0.5
    assert recall_at_k(["x", "a"], rels, 1) == 0.0
    assert mrr_at_k(["x", "y", "b"], rels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], rels, 2) == 0.0
    assert mrr_at_k(["z"], rels, 10) == 0.0  # relevance 0 is not relevant
    assert hit_at_k(["x", "a"], rels, 1) == 0.0 and hit_at_k(["x", "a"], rels, 2) == 1.0


def test_percentile_and_report() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([], 95) == 0.0
    rep = ranking_report({"q1": ["a"], "q2": ["x", "b"], "q3": ["c"]}, {"q1": {"a": 1}, "q2": {"b": 1}})
    assert rep["hit@1"] == 0.5 and rep["mrr@10"] == pytest.approx(0.75) and rep["queries"] == 2
