"""The relevance gate, table-driven: each row is one situation at the gate's edges; then its inputs."""

from __future__ import annotations

import pytest

from rag.relevance import COVERAGE_WEIGHT, MIN_EVIDENCE, content_words, fill_gate_inputs, relevant
from rag.types import Source

MIN = 0.25  # min_relevance as the table assumes it
Q = "sparse attention for long documents"


def src(dense: float, coverage: float = 0.0, focus: float = 0.0) -> Source:
    return Source(n=1, paper_id="p", title="A paper", score=dense, text="text", dense=dense, coverage=coverage,
                  focus=focus)


CASES = [
    # (why, sources, expected)
    ("no sources", [], False),
    ("every term covered but the cosine below min_relevance", [src(MIN - 0.01, 1.0)], False),
    ("every term covered needs some closeness too", [src(MIN + 0.05, 1.0)], True),
    ("close in meaning, no rare term covered, below MIN_EVIDENCE", [src(MIN_EVIDENCE - 0.01)], False),
    ("close enough in meaning alone", [src(MIN_EVIDENCE)], True),
    ("near-topic: dense 0.45, a third of the terms", [src(0.45, 0.3)], False),
    ("on-topic: dense 0.4, most terms", [src(0.4, 0.7)], True),
    ("the content words' cosine stands in for a diluted question", [src(0.2, 1.0, focus=0.37)], True),
    ("any one source suffices", [src(0.3, 0.1), src(0.45, 0.9)], True),
    ("a paper standing out in meaning passes without the words", [src(0.5), src(0.44)], True),
    ("close but not standing out: near-topic", [src(0.5), src(0.47)], False),
]


@pytest.mark.parametrize(("why", "sources", "expected"), CASES, ids=[c[0] for c in CASES])
def test_relevant(why: str, sources: list[Source], expected: bool) -> None:
    assert relevant(Q, sources, MIN) is expected, why


def test_papers_rescoring_moved_out_still_count() -> None:
    """rag.types.Retrieved.gate_also: the gate judges the chunk-level top k it was calibrated on, too."""
    from rag.types import Retrieved

    shown = [src(0.3, 0.1)]
    assert not relevant(Q, shown, MIN)
    assert relevant(Q, Retrieved(shown, [src(0.45, 0.9)]), MIN)
    assert not relevant(Q, Retrieved(shown, [src(0.3, 0.2)]), MIN)
    assert not relevant(Q, Retrieved([src(0.5)], [src(0.47)]), MIN)  # a displaced paper can end a standout too


def test_constants_are_what_the_table_assumes() -> None:
    assert (COVERAGE_WEIGHT, MIN_EVIDENCE) == (0.3, 0.59)


@pytest.mark.parametrize(("question", "words"), [
    ("What is known about grokking and why does it happen?", ["grokking"]),
    ("Which papers use category theory?", ["category", "theory"]),
    ("is there work on pointer networks", ["pointer", "networks"]),
])
def test_question_phrasing_is_not_required_of_a_paper(question: str, words: list[str]) -> None:
    assert content_words(question) == words


class _Index:  # a lexical index that knows document frequencies
    def coverage(self, words: list[str], ids: list[str]) -> dict[str, float]:
        return {pid: 0.5 for pid in ids}


def test_gate_inputs_from_the_index_or_from_the_text() -> None:
    a = Source(n=1, paper_id="a", title="Grokking explained", score=1.0, text="Delayed generalization.")
    fill_gate_inputs("What is known about grokking?", [a], _Index(), lambda text, ids: {"a": 0.61})
    assert (a.coverage, a.focus) == (0.5, 0.61)
    fill_gate_inputs("grokking in transformers", [a], object())  # no document frequencies: plain share
    assert a.coverage == 0.5


def test_sample_questions_from_the_issue(sample_engine) -> None:  # type: ignore[no-untyped-def]
    """Issue 14's examples over the sample papers: two answerable, one off-collection."""
    assert not sample_engine.ask("What is known about grokking and why does it happen?").abstained
    assert not sample_engine.ask("Which papers use category theory?").abstained
    assert sample_engine.ask("What is the best learning rate schedule for ResNet-50 on ImageNet?").abstained
