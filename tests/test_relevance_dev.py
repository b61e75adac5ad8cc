"""The relevance gate's dev set (eval/datasets/relevance_dev.jsonl): well-formed, and its gold papers exist."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from eval.calibrate_relevance import CORPORA, DEV

ROWS = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_row_names_a_known_collection_and_a_question() -> None:
    for i, r in enumerate(ROWS, start=1):
        assert r["collection"] in CORPORA, f"{DEV.name}:{i}: unknown collection {r['collection']!r}"
        assert isinstance(r["answerable"], bool), f"{DEV.name}:{i}"
        assert r.get("question") or "claim_id" in r, f"{DEV.name}:{i}: no question"


def test_each_collection_has_both_kinds_and_no_repeats() -> None:
    kinds = Counter((r["collection"], r["answerable"]) for r in ROWS)
    for name in CORPORA:
        assert kinds[(name, True)] >= 30 and kinds[(name, False)] >= 30, (name, kinds)
    asked = Counter((r["collection"], r["question"].lower()) for r in ROWS if "question" in r)
    assert not [q for q, n in asked.items() if n > 1]  # the same question over another collection is fine


def test_arxiv_rows_name_a_real_gold_paper() -> None:
    path = CORPORA["arxiv10k"][0]
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout")
    ids = {f"arxiv:{json.loads(line)['id']}" for line in gzip.open(path, "rt", encoding="utf-8")}
    rows = [r for r in ROWS if r["collection"] == "arxiv10k"]
    assert all(("paper_id" in r) == r["answerable"] for r in rows)
    missing = [r["paper_id"] for r in rows if r["answerable"] and r["paper_id"] not in ids]
    assert not missing
