"""QA metric functions against hand-computed values, including the edge cases."""

from __future__ import annotations

import pytest

from eval import qa_metrics as M

RANKED = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]


@pytest.mark.parametrize(
    ("gold", "k", "hit", "recall"),
    [
        (["a"], 1, 1.0, 1.0),
        (["b"], 1, 0.0, 0.0),
        (["b"], 3, 1.0, 1.0),
        (["c", "z"], 3, 1.0, 0.5),          # one of two gold found
        (["c", "e", "z"], 5, 1.0, 2 / 3),
        (["k"], 10, 0.0, 0.0),              # rank 11 is outside the top 10
        (["z"], 10, 0.0, 0.0),
        ([], 10, None, None),               # no gold: undefined, not zero
    ],
)
def test_hit_and_recall(gold: list[str], k: int, hit: float | None, recall: float | None) -> None:
    assert M.hit_at_k(RANKED, gold, k) == hit
    got = M.recall_at_k(RANKED, gold, k)
    assert got == (pytest.approx(recall) if recall is not None else None)


@pytest.mark.parametrize(
    ("gold", "depth", "rr"),
    [(["a"], None, 1.0), (["c"], None, 1 / 3), (["e", "c"], None, 1 / 3), (["k"], None, 1 / 11),
     (["k"], 10, 0.0), (["z"], None, 0.0), ([], None, None)],
)
def test_reciprocal_rank(gold: list[str], depth: int | None, rr: float | None) -> None:
    got = M.reciprocal_rank(RANKED, gold, depth)
    assert got == (pytest.approx(rr) if rr is not None else None)


def test_gold_ranks() -> None:
    assert M.gold_ranks(RANKED, ["c", "z"]) == {"c": 3, "z": None}


@pytest.mark.parametrize(
    ("cited", "gold", "precision", "recall"),
    [
        (["a"], ["a"], 1.0, 1.0),
        (["a", "b"], ["a"], 0.5, 1.0),
        (["a", "b", "c"], ["a", "c", "d", "e"], 2 / 3, 0.5),
        (["a", "a"], ["a", "b"], 1.0, 0.5),   # citing a paper twice counts once
        (["x"], ["a"], 0.0, 0.0),
        ([], ["a", "b"], None, 0.0),          # no citation: precision undefined, recall zero
        (["a"], [], None, None),              # empty gold (out of corpus): scored by abstention instead
        ([], [], None, None),
    ],
)
def test_citation_precision_recall(cited: list[str], gold: list[str], precision: float | None,
                                   recall: float | None) -> None:
    p, r = M.citation_precision(cited, gold), M.citation_recall(cited, gold)
    assert p == (pytest.approx(precision) if precision is not None else None)
    assert r == (pytest.approx(recall) if recall is not None else None)


def test_no_citation() -> None:
    assert M.no_citation([], abstained=False) == 1.0
    assert M.no_citation(["a"], abstained=False) == 0.0
    assert M.no_citation([], abstained=True) is None  # declining is not an uncited answer


@pytest.mark.parametrize(
    ("answer", "facts", "hit"),
    [
        ("The density of Linear Regions undergoes a phase transition [1].", ["linear regions"], 1.0),
        ("A depth-independent delay [1].", ["depth independent"], 1.0),   # hyphen vs space
        ("A depth  independent\ndelay.", ["depth-independent"], 1.0),     # whitespace
        ("Nothing relevant here.", ["linear regions", "phase transition"], 0.0),
        ("anything", [], None),                                           # no key facts: undefined
        ("", ["x y"], 0.0),
    ],
)
def test_key_fact_hit(answer: str, facts: list[str], hit: float | None) -> None:
    assert M.key_fact_hit(answer, facts) == hit


def test_answer_f1() -> None:
    # content terms: pred {grokking, occur, late}, gold {grokking, occur, after, training}; 2 common
    # precision 2/3, recall 2/4 -> F1 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = 4/7
    assert M.answer_f1("Grokking occurs late [1].", "Grokking occurs after training.") == pytest.approx(4 / 7)
    assert M.answer_f1("anything", "") is None
    assert M.answer_f1("", "Grokking occurs after training.") == 0.0


def test_claims_split_and_marker_only_sentence() -> None:
    text = "Transformers use attention [1]. They scale well [2][3]. [4]"
    assert M.claims(text) == [("Transformers use attention.", [1]), ("They scale well.", [2, 3, 4])]


SOURCES = {1: "Grokking occurs long after training error reaches zero. Linear regions migrate.",
           2: "Pointer networks output positions in the input sequence."}


@pytest.mark.parametrize(
    ("answer", "abstained", "value"),
    [
        ("Grokking occurs long after training error reaches zero [1].", False, 1.0),        # copied: supported
        ("Grokking occurs long after training error reaches zero [2].", False, 0.0),        # wrong source
        ("Grokking occurs long after training error reaches zero.", False, 0.0),            # no citation
        ("Linear regions migrate [1]. Bananas are yellow fruit [1].", False, 0.5),
        ("Linear regions migrate [1, 2]. Pointer networks output positions [2].", False, 1.0),
        ("Linear regions migrate [7].", False, 0.0),                                          # invalid number
        ("I found nothing in the indexed papers.", True, None),                              # abstention
        ("", False, None),
    ],
)
def test_lexical_faithfulness(answer: str, abstained: bool, value: float | None) -> None:
    assert M.lexical_faithfulness(answer, SOURCES, abstained) == value


def test_claim_support_threshold() -> None:
    # claim terms {linear, region, migrate, quickly}: 3 of 4 in source 1
    assert M.claim_support("Linear regions migrate quickly", [SOURCES[1]]) == pytest.approx(0.75)
    assert M.claim_support("Linear regions migrate quickly", []) == 0.0


def test_abstention_rates() -> None:
    rows = [{"kind": "out_of_corpus", "abstained": True}, {"kind": "out_of_corpus", "abstained": False},
            {"kind": "out_of_corpus", "abstained": True}, {"kind": "single", "abstained": False},
            {"kind": "multi", "abstained": True}, {"kind": "single", "abstained": False},
            {"kind": "single", "abstained": False}, {"kind": "single"}]  # retrieval-only row: ignored
    got = M.abstention_rates(iter(rows))  # any iterable
    assert got == {"correct_abstention": pytest.approx(2 / 3), "false_abstention": pytest.approx(1 / 4),
                   "n_out_of_corpus": 3, "n_answerable": 4}
    assert M.abstention_rates([{"kind": "single", "abstained": False}])["correct_abstention"] is None
    assert M.abstention_rates([]) == {"correct_abstention": None, "false_abstention": None,
                                      "n_out_of_corpus": 0, "n_answerable": 0}


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [([10.0], 95, 10.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.5), ([1.0, 2.0, 3.0, 4.0], 95, 3.85),
     ([5.0, 1.0, 3.0], 0, 1.0), ([5.0, 1.0, 3.0], 100, 5.0), ([], 50, None)],
)
def test_percentile(values: list[float], p: float, expected: float | None) -> None:
    got = M.percentile(values, p)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_latency_summary() -> None:
    t = [{"retrieve": 10.0, "answer": 100.0, "total": 110.0}, {"retrieve": 20.0, "answer": 300.0, "total": 320.0},
         {"retrieve": 30.0, "total": 30.0}]
    got = M.latency_summary(t)
    assert got["retrieve"] == {"p50": 20.0, "p95": 29.0, "mean": 20.0}
    assert got["answer"] == {"p50": 200.0, "p95": 290.0, "mean": 200.0}
    assert M.latency_summary([])["total"] == {"p50": None, "p95": None, "mean": None}


def test_aggregate_skips_undefined() -> None:
    rows = [{"kind": "single", "abstained": False, "metrics": {"hit@1": 1.0, "citation_precision": None}},
            {"kind": "single", "abstained": False, "metrics": {"hit@1": 0.0, "citation_precision": 0.5}},
            {"kind": "out_of_corpus", "abstained": True, "metrics": {"hit@1": None, "citation_precision": None}}]
    agg = M.aggregate(rows)
    assert agg["n"] == 3
    assert agg["hit@1"] == 0.5 and agg["hit@1_n"] == 2
    assert agg["citation_precision"] == 0.5 and agg["citation_precision_n"] == 1
    assert "token_f1" not in agg  # defined nowhere: left out rather than reported as 0
    assert agg["correct_abstention"] == 1.0 and agg["false_abstention"] == 0.0
