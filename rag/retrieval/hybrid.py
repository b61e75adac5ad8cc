"""Hybrid paper retriever: dense chunks from Chroma + paper BM25, fused, one hit per paper.

With a SentenceStore (sentence evidence), the fused candidates' dense scores are rescored before fusion:
a paper's best cosine over its chunks and its sentences (MaxP), read for those candidates only. With
`rescore` > 0 and `texts_of`, the first `rescore` papers of the fused ranking get the same MaxP score from
their sentences embedded at question time (rag/retrieval/best_sentence.py), and the candidates are fused again."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ingest.filters import Filters
from ingest.lexical import LexicalIndex
from ingest.sentence_store import SentenceStore, best_unit_scores
from ingest.store import ChunkStore, paper_id_of
from rag.retrieval.best_sentence import PaperTexts, rescore_head
from rag.retrieval.fusion import aggregate_max, rrf, score_fusion


@dataclass
class Hit:
    """One paper in a ranking with the signals that put it there."""

    paper_id: str
    score: float
    dense: float = 0.0   # best chunk cosine
    lexical: float = 0.0  # BM25 score
    sentence: float = 0.0  # best sentence cosine (papers at the head of the ranking, when rescored)


log = logging.getLogger(__name__)
RETRY_S = 0.1  # one short retry, then BM25 alone: a reader never waits on a writer


class HybridRetriever:
    """Paper-level retriever; mode 'dense', 'bm25' or 'hybrid' (rag/llama.py wraps it for llama-index)."""

    def __init__(self, store: ChunkStore, lexical: LexicalIndex, embed: Any, *, mode: str = "hybrid",
                 top_k: int = 5, candidates: int = 100, fusion: str = "rrf", rrf_k: int = 60,
                 weights: tuple[float, float] = (1.0, 1.0), filters: Filters = Filters(),
                 sentences: SentenceStore | None = None, rescore: int = 0, texts_of: PaperTexts | None = None) -> None:
        self.store, self.lexical, self.embed, self.sentences = store, lexical, embed, sentences
        self.rescore, self.texts_of = rescore, texts_of
        self.mode, self.top_k, self.candidates = mode, top_k, candidates
        self.fusion, self.rrf_k, self.weights, self.filters = fusion, rrf_k, weights, filters

    def dense(self, query_embedding: list[float], filters: Filters) -> dict[str, float]:
        """paper_id -> best chunk cosine over the top chunk candidates.

        Queries the Chroma collection for ids and distances only, not through ChromaVectorStore.query:
        that fetches metadata and rebuilds a pydantic node per hit (~45 ms for 200 hits at 10k papers,
        measured) where ids (which carry the paper id) and distances cost ~4 ms.
        """
        from chromadb.errors import ChromaError

        for attempt in range(2):
            try:
                res = self.store.collection.query(query_embeddings=[query_embedding], n_results=self.candidates * 2,
                                                  where=filters.where(), include=["distances"])
                break
            except ChromaError as exc:  # embedded Chroma while another process writes: "Error creating hnsw
                # segment reader: Nothing found on disk", "Error finding id" (tests/test_durability.py)
                if attempt:
                    log.warning("dense retrieval failed (%s: %s); answering from BM25 alone", type(exc).__name__, exc)
                    return {}
                time.sleep(RETRY_S)
        pairs = [(paper_id_of(cid), 1.0 - float(dist)) for cid, dist in zip(res["ids"][0], res["distances"][0])]
        return aggregate_max(pairs)

    def evidence(self, query_embedding: list[float], dense: dict[str, float], lex: dict[str, float]
                 ) -> dict[str, float]:
        """Dense scores of the candidates (dense and BM25 ones) rescored as max(best sentence, best chunk).

        Papers without stored vectors keep their chunk score (or stay out); the `candidates` best are kept,
        as the chunk ranking keeps its best `candidates` chunks' papers."""
        if self.sentences is None:
            return dense
        try:
            rows = self.sentences.get([*dense, *(p for p in lex if p not in dense)])
        except Exception as exc:  # noqa: BLE001 - a locked or damaged side file costs the rescoring, not the answer
            log.warning("sentence evidence unavailable (%s: %s); ranking by chunks", type(exc).__name__, exc)
            return dense
        out = dict(dense)
        for pid, s in best_unit_scores(np.asarray(query_embedding, dtype=np.float32), rows).items():
            out[pid] = max(s, dense.get(pid, s))
        return dict(sorted(out.items(), key=lambda kv: -kv[1])[: self.candidates])

    def rank(self, dense: dict[str, float], lex: dict[str, float]) -> list[tuple[str, float]]:
        """The mode's ranking of the candidates: dense, BM25, or the two fused."""
        if self.mode == "dense":
            return sorted(dense.items(), key=lambda kv: -kv[1])
        if self.mode == "bm25":
            return sorted(lex.items(), key=lambda kv: -kv[1])
        if self.fusion == "rrf":
            d_rank = sorted(dense, key=lambda p: -dense[p])[: self.candidates]
            l_rank = sorted(lex, key=lambda p: -lex[p])
            return rrf([d_rank, l_rank], list(self.weights), self.rrf_k)
        return score_fusion([dense, lex], list(self.weights))

    def hits(self, query: str, query_embedding: list[float] | None = None, filters: Filters | None = None,
             top_k: int | None = None) -> list[Hit]:
        """Fused paper ranking for a query."""
        return self.ranking(query, query_embedding, filters, top_k)[0]

    def ranking(self, query: str, query_embedding: list[float] | None = None, filters: Filters | None = None,
                top_k: int | None = None) -> tuple[list[Hit], list[Hit]]:
        """The fused top-k hits, and the papers that sentence rescoring moved out of the chunk-level top k
        (the relevance gate weighs those too: it was calibrated on the chunk-level ranking)."""
        filters = self.filters if filters is None else filters
        k = top_k or self.top_k
        dense: dict[str, float] = {}
        lex: dict[str, float] = {}
        if self.mode in ("dense", "hybrid"):
            emb = query_embedding if query_embedding is not None else self.embed.get_query_embedding(query)
            dense = self.dense(emb, filters)
        if self.mode in ("bm25", "hybrid"):
            lex = dict(self.lexical.search(query, self.candidates, filters))
        chunk = dense  # Hit.dense stays the best chunk cosine (the relevance gate is calibrated on it)
        if self.mode in ("dense", "hybrid"):
            dense = self.evidence(emb, dense, lex)  # unchanged without a SentenceStore
        ranked = before = self.rank(dense, lex)
        best: dict[str, float] = {}
        if self.rescore and self.texts_of is not None and self.mode in ("dense", "hybrid") and dense:
            try:
                dense, best = rescore_head(self.embed, emb, [p for p, _ in ranked], dense, self.rescore, self.texts_of)
            except Exception as exc:  # noqa: BLE001 - a failing embedder costs the rescoring, not the answer
                log.warning("sentence rescoring failed (%s: %s); ranking by chunks", type(exc).__name__, exc)
            else:
                ranked = self.rank(dense, lex)

        def hit(pid: str, score: float) -> Hit:
            return Hit(pid, score, chunk.get(pid, 0.0), lex.get(pid, 0.0), best.get(pid, 0.0))

        top = [hit(pid, s) for pid, s in ranked[:k]]
        kept = {h.paper_id for h in top}
        return top, [hit(pid, s) for pid, s in before[:k] if pid not in kept]
