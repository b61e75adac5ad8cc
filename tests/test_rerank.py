"""Reranking hook: LLM-judged order (fake judge), failure keeps fusion order, config errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.retrieval.rerank import LLMReranker, make_reranker
from rag.settings import Settings
from rag.types import Source


def srcs() -> list[Source]:
    return [Source(n=i, paper_id=f"p{i}", title=f"T{i}", score=1.0, text="x") for i in (1, 2, 3)]


class Judge:
    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 64) -> str:
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def test_llm_reranker_orders_and_renumbers() -> None:
    out = LLMReranker(Judge("3, 1, 9")).rerank("q", srcs())
    assert [s.paper_id for s in out] == ["p3", "p1", "p2"] and [s.n for s in out] == [1, 2, 3]


def test_llm_reranker_failure_keeps_order() -> None:
    out = LLMReranker(Judge(RuntimeError("down"))).rerank("q", srcs())
    assert [s.paper_id for s in out] == ["p1", "p2", "p3"]


def test_config_errors(tmp_path: Path) -> None:
    assert make_reranker(Settings(), object()) is None
    with pytest.raises(ValueError, match="RERANKER_PATH"):
        make_reranker(Settings(reranker="cross-encoder"), object())
    with pytest.raises(ValueError, match="not a local model directory"):
        make_reranker(Settings(reranker="cross-encoder", reranker_path=tmp_path / "none"), object())
    with pytest.raises(ValueError, match="needs an LLM"):
        make_reranker(Settings(reranker="llm"), object())
