"""The public Python API: open a collection, ingest, retrieve, ask (whole or streamed), stats."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ingest.lexical import Filters, LexicalIndex
from ingest.pipeline import IngestReport, ingest_paths, sync_lexical
from ingest.store import ChunkStore, make_client
from rag.answerers.base import Answerer
from rag.answering import answer_stream
from rag.backend_config import embed_key, with_llm_fields
from rag.settings import Settings
from rag.relevance import ABSTAIN_TEXT, relevant  # noqa: F401 - re-exported for callers
from rag.types import Answer, Source


def _offline_env() -> None:
    """Make every library we use stay off the network by default."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from ingest.chunking import _tiktoken_cache

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", _tiktoken_cache())


class Paperchat:
    """A paper collection you can ingest into and ask questions of.

    Example:
        >>> pc = Paperchat(home="/tmp/pc")          # doctest: +SKIP
        >>> pc.ingest(["data/sample"]).added         # doctest: +SKIP
        65
        >>> pc.ask("Why do deep networks grok?").citations[0].title  # doctest: +SKIP
        'Deep Networks Always Grok and Here is Why'
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        _offline_env()
        if settings is not None:
            data = {**settings.model_dump(), **overrides}
            if "llm_api_key" in overrides and "llm_api_key_url" not in overrides:
                data["llm_api_key_url"] = None  # a key given here belongs to the base URL given with it
            self.settings = Settings(**data)
        else:
            self.settings = Settings(**overrides)
        self._lock = threading.RLock()
        self._embed: Any = None
        self._store: ChunkStore | None = None
        self._lexical: LexicalIndex | None = None
        self._answerer: Answerer | None = None
        self._extractive: Answerer | None = None

    # --- components (lazy) ---------------------------------------------------
    @property
    def embed(self) -> Any:
        with self._lock:
            if self._embed is None and self.settings.embed_base_url:
                from ingest.remote_embeddings import RemoteEmbedding

                key = embed_key(self.settings)  # the embedding key, never the LLM key
                self._embed = RemoteEmbedding(self.settings.embed_base_url, self.settings.embed_model, key,
                                              cache_path=self.settings.cache_path)
            if self._embed is None:
                from ingest.embeddings import LocalEmbedding

                self._embed = LocalEmbedding(cache_path=self.settings.cache_path,
                                             precision=self.settings.embed_precision)
            return self._embed

    @property
    def store(self) -> ChunkStore:
        with self._lock:
            if self._store is None:
                from ingest.embeddings import BUNDLED_DIM, BUNDLED_MODEL

                model, dim = BUNDLED_MODEL, BUNDLED_DIM
                if self.settings.embed_base_url:  # the collection records which model made its vectors
                    model, dim = f"remote:{self.settings.embed_model}", self.embed.dim
                client = make_client(self.settings.home, self.settings.chroma_url)
                self._store = ChunkStore(client, self.settings.collection, model, dim)
            return self._store

    @property
    def lexical(self) -> LexicalIndex:
        with self._lock:
            if self._lexical is None:
                name = self.settings.collection if not self.settings.chroma_url else f"{self.settings.collection}@server"
                lex = LexicalIndex(self.settings.home / "bm25" / name)
                if lex.is_dirty() or not self._lexical_matches(lex):
                    sync_lexical(self.store, lex)  # interrupted ingest or out of sync: repair from Chroma
                self._lexical = lex
            return self._lexical

    def _lexical_matches(self, lex: LexicalIndex) -> bool:
        try:
            lex.load()
        except (OSError, ValueError, KeyError):  # unreadable or corrupt BM25 files: rebuild from Chroma
            return False
        return lex.n_chunks == self.store.count()

    def answerer(self) -> Answerer:
        """The configured answer backend (extractive when no LLM is configured)."""
        with self._lock:
            if self._answerer is None:
                from rag.answerers.factory import make_answerer

                self._answerer = make_answerer(self.settings, self.embed)
            return self._answerer

    def extractive(self) -> Answerer:
        with self._lock:
            if self._extractive is None:
                from rag.answerers.extractive import ExtractiveAnswerer

                self._extractive = ExtractiveAnswerer(self.embed)
            return self._extractive

    # --- ingest ----------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """Read, chunk, embed and index every paper under `paths`; idempotent.

        `on_progress(records_read, 0)` is called after each batch (for UIs)."""
        with self._lock:
            return ingest_paths(paths, self.store, self.lexical, self.embed, progress=progress,
                                on_progress=on_progress)

    # --- retrieval -------------------------------------------------------------
    def retriever(self, mode: str = "hybrid", filters: Filters | None = None, top_k: int | None = None) -> Any:
        """The llama-index retriever behind `ask` (paper-level, fused)."""
        from rag.retrieval.hybrid import HybridRetriever

        s = self.settings
        return HybridRetriever(self.store, self.lexical, self.embed, mode=mode, top_k=top_k or s.top_k,
                               candidates=s.candidates, fusion=s.fusion, rrf_k=s.rrf_k,
                               weights=(s.dense_weight, s.lexical_weight), filters=filters or Filters())

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 mode: str = "hybrid") -> list[Source]:
        """The top-k papers for a question as numbered sources (full abstracts)."""
        k = k or self.settings.top_k
        rerank = self.settings.reranker != "none"
        hits = self.retriever(mode, filters, max(k, 20) if rerank else k).hits(question)
        if not hits:
            return []
        papers = self.papers_by_id([h.paper_id for h in hits])
        out = []
        for h in hits:
            p = papers.get(h.paper_id)
            if p is None:
                continue
            out.append(Source(n=len(out) + 1, paper_id=h.paper_id, title=p["title"], score=round(h.score, 6),
                              text=p["abstract"], url=p["url"] or None, authors=p["authors"], year=p["year"],
                              date=p["date"], categories=p["categories"], dense=round(h.dense, 4)))
        if rerank:
            from rag.retrieval.rerank import make_reranker

            reranker = make_reranker(self.settings, self.answerer())
            out = reranker.rerank(question, out)[:k] if reranker else out[:k]
        return out

    def papers_by_id(self, paper_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored papers (title, abstract, authors, url, year, ...) for the given ids."""
        got = self.store.collection.get(where={"paper_id": {"$in": paper_ids}}, include=["documents", "metadatas"])
        parts: dict[str, list[tuple[int, str]]] = defaultdict(list)
        metas: dict[str, dict[str, Any]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"]):
            pid = str(meta["paper_id"])
            parts[pid].append((int(meta.get("chunk", 0)), doc or ""))
            metas[pid] = dict(meta)
        return {pid: {"paper_id": pid, "title": m.get("title", ""), "abstract": " ".join(t for _, t in sorted(parts[pid])),
                      "url": m.get("url") or None, "authors": m.get("authors", ""), "year": m.get("year"),
                      "date": m.get("date", ""), "categories": m.get("categories", "")} for pid, m in metas.items()}

    # --- answering -------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, filters: Filters | None = None) -> Answer:
        """Retrieve and answer; never raises for LLM failures (falls back to extractive with a notice)."""
        result: Answer | None = None
        for event in self.ask_stream(question, k, filters):
            if isinstance(event, Answer):
                result = event
        assert result is not None
        return result

    def ask_stream(self, question: str, k: int | None = None, filters: Filters | None = None) -> Iterator[str | Answer]:
        """Yield text deltas as the answer is produced, then the final Answer (renumbered citations)."""
        question = (question or "").strip()
        if not question:
            raise ValueError("question is empty")
        if len(question) > self.settings.max_question_chars:
            raise ValueError(f"question is {len(question)} characters (limit {self.settings.max_question_chars})")
        t0 = time.perf_counter()
        sources = self.retrieve(question[:2000], k, filters)
        t1 = time.perf_counter()
        yield from answer_stream(question, sources, self.answerer(), self.extractive(), self.settings, t0, t1)

    # --- collection ----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Where the data lives and what it holds (secrets redacted)."""
        return {"home": str(self.settings.home.resolve()), "chroma": self.settings.chroma_url or "embedded",
                "collection": self.settings.collection, "papers": len(self.lexical.ids),
                "chunks": self.store.count(), "embedding_model": self.store.model,
                "embedding_dim": self.store.dim, "llm": self.settings.llm}

    def delete(self, paper_ids: list[str]) -> int:
        """Remove papers (all their chunks) and resync BM25; returns chunks removed."""
        with self._lock:
            self.lexical.mark_dirty()
            n = self.store.delete_papers(paper_ids)
            sync_lexical(self.store, self.lexical)
            return n

    def list_papers(self, query: str = "", limit: int | None = None) -> list[dict[str, Any]]:
        """One row per stored paper (paper_id, title, authors, year, date, categories, url), sorted by title.

        `query` keeps the papers whose id, title, authors or categories contain it (case-insensitive)."""
        got = self.store.collection.get(where={"chunk": 0}, include=["metadatas"])
        q = (query or "").strip().lower()
        rows = []
        for m in got["metadatas"]:
            row = {"paper_id": str(m.get("paper_id", "")), "title": str(m.get("title", "")),
                   "authors": str(m.get("authors", "")), "year": m.get("year"), "date": str(m.get("date", "")),
                   "categories": str(m.get("categories", "")), "url": m.get("url") or None}
            if q and q not in " ".join((row["paper_id"], row["title"], row["authors"], row["categories"])).lower():
                continue
            rows.append(row)
        rows.sort(key=lambda r: (r["title"].lower(), r["paper_id"]))
        return rows[:limit] if limit is not None else rows

    def example_questions(self, n: int = 3) -> list[str]:
        """Questions about `n` papers spread over the collection (deterministic), e.g. for a UI's examples."""
        papers = [p for p in self.list_papers() if p["title"]]
        if not papers or n < 1:
            return []
        step = max(1, len(papers) // n)
        return [f'What does the paper "{p["title"]}" show?' for p in papers[::step][:n]]

    def configure_llm(self, **fields: Any) -> None:
        """Switch the answer backend (any `llm*` setting, validated); the next question uses it."""
        new = with_llm_fields(self.settings, fields)  # a changed base URL without a new key drops the key
        with self._lock:
            old, self._answerer = self._answerer, None
            self.settings = new
        close = getattr(old, "close", None)
        if close:
            close()  # a replaced GGUF backend stops its llama.cpp server (unless another user holds it)

    def check_llm(self, **overrides: Any) -> tuple[bool, str]:
        """Ask the configured backend (or one with these `llm*` overrides) a one-source question.

        Returns (ok, message) and never raises: a broken LLM must not take the caller down. The message
        never holds the reply's text (a probe must not read other services); a failure's message is the
        answerer's own safe one (no key, no server text). A changed base URL without a new key gets no key."""
        from rag.answerers.base import AnswererError

        t0 = time.perf_counter()
        answerer: Any = None
        try:
            if overrides:
                from rag.answerers.factory import make_answerer

                answerer = make_answerer(with_llm_fields(self.settings, {**overrides, "llm_retries": 0}), self.embed)
            else:
                answerer = self.answerer()
            probe = Source(n=1, paper_id="probe", title="Connection test", score=1.0, text="The sky is blue.")
            text = "".join(answerer.stream("What colour is the sky?", [probe])).strip()
            if not text:
                return False, f"{answerer.name} returned an empty answer"
        except AnswererError as exc:
            return False, str(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never raised
            return False, f"{type(exc).__name__} while testing the backend"
        finally:
            if overrides and answerer is not None:
                close = getattr(answerer, "close", None)
                if close:
                    close()  # a probe's llama.cpp server is not kept running
        ms = (time.perf_counter() - t0) * 1000
        return True, f"{answerer.name} answered in {ms:.0f} ms"
