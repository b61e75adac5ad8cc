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


def test_finalize_drops_markers_outside_citable() -> None:
    srcs = [Source(n, f"p:{n}", f"T{n}", 1.0, f"text {n}.") for n in (1, 2, 3)]
    out = finalize("A [1]. B [3]. C [2].", srcs, citable={1, 2})
    assert out.text == "A [1]. B. C [2]."
    assert [c.paper_id for c in out.citations] == ["p:1", "p:2"] and out.dropped == 1
    assert [s.paper_id for s in out.sources] == ["p:1", "p:2", "p:3"]  # the retrieved paper is still listed
