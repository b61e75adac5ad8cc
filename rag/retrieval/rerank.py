"""Optional reranking after fusion: a local CrossEncoder, or the configured LLM as judge.

No cross-encoder ships in any package that installs offline here (flashrank and friends download their
models at run time), so the cross-encoder path needs a model directory you already have on disk.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from rag.types import Source


class Reranker(Protocol):
    """Reorders sources for a question; must return the same sources, renumbered from 1."""

    def rerank(self, question: str, sources: Sequence[Source]) -> list[Source]: ...


def _renumbered(order: Sequence[Source]) -> list[Source]:
    from dataclasses import replace

    return [replace(s, n=i) for i, s in enumerate(order, start=1)]


class CrossEncoderReranker:
    """sentence-transformers CrossEncoder loaded from a local directory (never a hub id)."""

    def __init__(self, path: Path) -> None:
        if not Path(path).is_dir():
            raise ValueError(f"reranker_path {path} is not a local model directory (no cross-encoder ships offline)")
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(path), device="cpu")

    def rerank(self, question: str, sources: Sequence[Source]) -> list[Source]:
        if not sources:
            return []
        scores = self.model.predict([(question, f"{s.title}. {s.text}") for s in sources])
        order = sorted(range(len(sources)), key=lambda i: -float(scores[i]))
        return _renumbered([sources[i] for i in order])


class LLMReranker:
    """Asks the configured LLM to order the sources by relevance; keeps fusion order on any failure."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm  # anything with complete(messages, max_tokens) -> str

    def rerank(self, question: str, sources: Sequence[Source]) -> list[Source]:
        listing = "\n".join(f"[{s.n}] {s.title}: {s.text[:400]}" for s in sources)
        prompt = (f"Question: {question}\n\nPapers:\n{listing}\n\nList the paper numbers from most to least "
                  "relevant to the question, as comma-separated numbers only.")
        try:
            reply = self.llm.complete([{"role": "user", "content": prompt}], max_tokens=64)
        except Exception:  # a failing judge must not fail retrieval
            return list(sources)
        by_n = {s.n: s for s in sources}
        order = [by_n[n] for n in dict.fromkeys(int(x) for x in re.findall(r"\d+", reply)) if n in by_n]
        order += [s for s in sources if s not in order]
        return _renumbered(order)


def make_reranker(settings: Any, answerer: Any) -> Reranker | None:
    """The reranker named by settings.reranker, or None."""
    if settings.reranker == "cross-encoder":
        if settings.reranker_path is None:
            raise ValueError("PAPERCHAT_RERANKER=cross-encoder needs PAPERCHAT_RERANKER_PATH (a local model directory)")
        return CrossEncoderReranker(settings.reranker_path)
    if settings.reranker == "llm":
        if not hasattr(answerer, "complete"):
            raise ValueError("PAPERCHAT_RERANKER=llm needs an LLM backend (PAPERCHAT_LLM=openai or gguf)")
        return LLMReranker(answerer)
    return None
