"""The relevance gate `relevant()`, table-driven: each row is one situation at the gate's edges."""

from __future__ import annotations

import pytest

from rag.relevance import LEXICAL_BAND, MIN_TERM_OVERLAP, relevant
from rag.types import Source

MIN = 0.35  # the default min_relevance
Q = "sparse attention for long documents"  # content terms: sparse, attention, long, document(s)


def src(dense: float, text: str = "Unrelated words about cooking pasta.", title: str = "A paper") -> Source:
    return Source(n=1, paper_id="p", title=title, score=dense, text=text, dense=dense)


CASES = [
    # (why, question, sources, expected)
    ("no sources", Q, [], False),
    ("best cosine below the threshold", Q, [src(MIN - 0.01, "sparse attention long documents")], False),
    ("exactly at the threshold, no shared terms", Q, [src(MIN)], False),
    ("exactly at the threshold, all terms shared", Q, [src(MIN, "Sparse attention scales to long documents.")], True),
    ("in the band, half the terms (the minimum)", Q, [src(MIN + 0.05, "Sparse attention in vision.")], True),
    ("in the band, one term of four", Q, [src(MIN + 0.05, "Attention in vision transformers.")], False),
    ("in the band, terms found in the title only", Q,
     [src(MIN + 0.05, title="Sparse attention for long inputs")], True),
    ("just under the band's top, no terms", Q, [src(MIN + LEXICAL_BAND - 0.001)], False),
    ("at the band's top: cosine alone suffices", Q, [src(MIN + LEXICAL_BAND)], True),
    ("well above the band", Q, [src(0.9)], True),
    ("the best source decides the cosine, any source the terms", Q,
     [src(MIN + 0.05), src(0.1, "sparse attention for long documents")], True),
    ("a question of stopwords only has no terms", "what is it about?", [src(MIN + 0.05, "what is it about")], False),
    ("stemming: plural and singular match", "long documents", [src(MIN + 0.05, "a long document")], True),
]


@pytest.mark.parametrize(("why", "question", "sources", "expected"), CASES, ids=[c[0] for c in CASES])
def test_relevant(why: str, question: str, sources: list[Source], expected: bool) -> None:
    assert relevant(question, sources, MIN) is expected, why


def test_constants_are_what_the_table_assumes() -> None:
    assert (LEXICAL_BAND, MIN_TERM_OVERLAP) == (0.10, 0.5)
