"""Citation parsing, dropping and renumbering (table-driven)."""

from __future__ import annotations

import pytest

from rag.citations import expand, finalize
from rag.types import Source


def src(n: int, text: str = "Alpha beta. Gamma delta.") -> Source:
    return Source(n=n, paper_id=f"p{n}", title=f"T{n}", score=1.0 / n, text=text)


@pytest.mark.parametrize("group,nums", [
    ("1", [1]), ("1, 3", [1, 3]), ("1-3", [1, 2, 3]), ("2 – 4", [2, 3, 4]), ("3-1", []), ("1; 2", [1, 2]),
])
def test_expand(group: str, nums: list[int]) -> None:
    assert expand(group) == nums


@pytest.mark.parametrize("text,expected,dropped", [
    ("Claim [1].", "Claim [1].", 0),
    ("Claim [3]. Other [1].", "Claim [1]. Other [2].", 0),
    ("Claim [1][2].", "Claim [1][2].", 0),
    ("Claim [1, 3].", "Claim [1][2].", 0),
    ("Claim [1-3].", "Claim [1][2][3].", 0),
    ("Claim [9].", "Claim.", 1),
    ("Claim [2, 9].", "Claim [1].", 1),
    ("No citation.", "No citation.", 0),
])
def test_finalize_renumbers_and_drops(text: str, expected: str, dropped: int) -> None:
    sources = [src(1), src(2), src(3)]
    out = finalize(text, sources)
    assert out.text == expected
    assert out.dropped == dropped
    for c in out.citations:
        assert out.sources[c.n - 1].paper_id == c.paper_id
    assert [s.n for s in out.sources] == [1, 2, 3]


def test_quote_is_best_matching_sentence() -> None:
    s = src(1, "Cats purr loudly. Transformers use attention layers.")
    out = finalize("They rely on attention layers [1].", [s])
    assert out.citations[0].quote == "Transformers use attention layers."
