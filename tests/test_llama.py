"""llama-index where users meet it: pc.as_retriever() in a RetrieverQueryEngine and pc.as_query_engine() as an
agent tool; Filters translate to Chroma (tests/test_filters.py: both Filters translations agree)."""

from __future__ import annotations

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.tools import QueryEngineTool

from rag.engine import Paperchat

GROK = "Which paper explains why grokking happens in deep networks?"
TITLE = "Deep Networks Always Grok and Here is Why"


def test_as_retriever_is_a_llama_index_retriever(sample_engine: Paperchat) -> None:
    r = sample_engine.as_retriever(k=3)
    assert isinstance(r, BaseRetriever)
    nodes = r.retrieve(GROK)
    assert len(nodes) == 3 and nodes[0].node.metadata["title"] == TITLE
    top = nodes[0]
    assert top.score is not None and "grok" in top.node.get_content().lower()
    assert {"paper_id", "title", "url", "year"} <= set(top.node.metadata)


def test_as_retriever_inside_a_retriever_query_engine(sample_engine: Paperchat) -> None:
    engine = RetrieverQueryEngine.from_args(sample_engine.as_retriever(k=2), llm=MockLLM(max_tokens=8))
    resp = engine.query(GROK)
    assert [n.node.metadata["title"] for n in resp.source_nodes][0] == TITLE
    assert str(resp)  # the mock LLM wrote something from our nodes


def test_as_query_engine_answers_with_citations_and_works_as_a_tool(sample_engine: Paperchat) -> None:
    qe = sample_engine.as_query_engine(k=3)
    resp = qe.query(GROK)
    assert "[1]" in str(resp) and resp.metadata["answer"].citations[0].title == TITLE
    assert resp.source_nodes[0].node.metadata["title"] == TITLE
    tool = QueryEngineTool.from_defaults(query_engine=qe, name="papers", description="Answers from paper abstracts.")
    out = tool(GROK)
    assert "[1]" in out.content and tool.metadata.name == "papers"


def test_chunks_carry_no_node_content_blob(sample_engine: Paperchat) -> None:
    metas = sample_engine.store.collection.get(include=["metadatas"], limit=20)["metadatas"]
    assert metas and all("_node_content" not in m and "_node_type" not in m for m in metas)
