"""llama-index objects over a Paperchat: a real BaseRetriever and a query engine with our citations.

    retriever = pc.as_retriever(k=5)          # llama_index.core BaseRetriever
    engine = RetrieverQueryEngine.from_args(retriever, llm=...)   # any llama-index pipeline
    pc.as_query_engine().query("Why do deep networks grok?")     # paperchat's own cited answer

Kept out of rag/engine.py so the cold `ask` path never imports llama_index.core for these.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ingest.filters import Filters
from rag.types import Answer, Source


def source_node(s: Source) -> NodeWithScore:
    """One retrieved paper as a llama-index node: abstract as text, paper fields as metadata."""
    meta = {"paper_id": s.paper_id, "title": s.title, "url": s.url or "", "year": s.year, "authors": s.authors,
            "categories": s.categories, "n": s.n}
    node = TextNode(id_=s.paper_id, text=s.text, metadata=meta,
                    excluded_embed_metadata_keys=["paper_id", "url", "n"], excluded_llm_metadata_keys=["url", "n"])
    return NodeWithScore(node=node, score=s.score)


class PaperRetriever(BaseRetriever):
    """Paper-level hybrid retrieval (dense + BM25, fused, filters applied) as a llama-index retriever."""

    def __init__(self, pc: Any, k: int | None = None, filters: Filters | None = None) -> None:
        super().__init__()
        self._pc, self._k, self._filters = pc, k, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [source_node(s) for s in self._pc.retrieve(query_bundle.query_str, self._k, self._filters)]


class PaperQueryEngine(CustomQueryEngine):
    """Answers with paperchat's own pipeline (relevance gate, cited answer, extractive fallback).

    `response.source_nodes` are the sources in citation order; `response.metadata["answer"]` is the
    full Answer (citations with quotes, abstained, backend, timings)."""

    pc: Any
    k: int | None = None
    filters: Filters | None = None

    def __init__(self, pc: Any, k: int | None = None, filters: Filters | None = None) -> None:
        super().__init__(pc=pc, k=k, filters=filters)

    def custom_query(self, query_str: str) -> Response:
        ans: Answer = self.pc.ask(query_str, self.k, self.filters)
        return Response(response=ans.answer, source_nodes=[source_node(s) for s in ans.sources],
                        metadata={"answer": ans, "citations": [c.__dict__ for c in ans.citations],
                                  "abstained": ans.abstained})
