"""Retrieval over a Collection: fused paper hits as numbered Sources with the relevance gate's inputs, reranked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.collection import Collection
from ingest.filters import Filters
from rag.relevance import fill_gate_inputs
from rag.retrieval.hybrid import Hit, HybridRetriever
from rag.settings import Settings
from rag.types import Retrieved, Source


def hybrid_retriever(col: Collection, s: Settings, mode: str = "hybrid", filters: Filters | None = None,
                     top_k: int | None = None) -> HybridRetriever:
    """The paper-level fused retriever the settings describe, over the collection's current parts."""
    return HybridRetriever(col.store, col.lexical, col.embed, mode=mode, top_k=top_k or s.top_k,
                           candidates=s.candidates, fusion=s.fusion, rrf_k=s.rrf_k,
                           weights=(s.dense_weight, s.lexical_weight), filters=filters or Filters(),
                           sentences=col.sentences if s.sentence_evidence else None,
                           rescore=s.sentence_rescore, texts_of=lambda ids: paper_texts(col, ids))


def paper_texts(col: Collection, ids: list[str]) -> dict[str, tuple[str, str]]:
    """(title, abstract) of the stored papers among `ids`."""
    return {pid: (p.title, p.abstract) for pid, p in col.papers(ids).items()}


def focus(col: Collection, retriever: HybridRetriever, text: str, ids: list[str]) -> dict[str, float]:
    """Best-chunk cosine of `text` for the papers `ids` (a gate input; {} when Chroma cannot say, see
    HybridRetriever.dense: the gate then uses the question's own cosine only).

    One query with the retriever's own filters, not a `paper_id $in` filter: embedded Chroma fails that
    filtered query ("Error finding id") while another process writes (tests/test_durability.py)."""
    scores = retriever.dense(col.embed.get_query_embedding(text), retriever.filters)
    wanted = set(ids)
    return {pid: s for pid, s in scores.items() if pid in wanted}


def retrieve(col: Collection, settings: Settings, question: str, k: int | None = None,
             filters: Filters | None = None, mode: str = "hybrid",
             reranker: Callable[[], Any] = lambda: None) -> list[Source]:
    """The top-k papers for a question as numbered sources (full abstracts).

    `reranker()` gives the (cached) reranker when `settings.reranker` names one (falsy: none loaded)."""
    k = k or settings.top_k
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not col.exists():
        return []
    rerank = settings.reranker != "none"
    retriever = hybrid_retriever(col, settings, mode, filters, max(k, 20) if rerank else k)
    hits, displaced = retriever.ranking(question)
    if not hits:
        return []
    papers = col.papers([h.paper_id for h in hits + displaced])
    out = [s for s in (as_source(h, papers.get(h.paper_id)) for h in hits) if s is not None]
    for n, s in enumerate(out, start=1):
        s.n = n
    also = [s for s in (as_source(h, papers.get(h.paper_id)) for h in displaced) if s is not None]
    fill_gate_inputs(question, out + also, col.lexical,  # inputs of the relevance gate
                     lambda text, ids: focus(col, retriever, text, ids))
    if rerank:
        r = reranker()  # loaded once per settings, not per question
        out = r.rerank(question, out)[:k] if r else out[:k]
    return Retrieved(out, also)


def as_source(h: Hit, p: Any) -> Source | None:
    """A hit as a Source (n set by the caller), or None when its paper is not stored (any more)."""
    if p is None:
        return None
    return Source(n=0, paper_id=h.paper_id, title=p.title, score=round(h.score, 6), text=p.abstract, url=p.url,
                  authors=p.authors, year=p.year, date=p.date, categories=p.categories, dense=round(h.dense, 4),
                  lexical=round(h.lexical, 4), sentence=round(h.sentence, 4))
