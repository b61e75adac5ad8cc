"""The public Python API: a thin front over a Collection (ingest/collection.py) and an answer backend.

`Paperchat` holds one frozen bundle (settings, answerer) and replaces it whole when the LLM is switched;
it takes no lock around reads, so an ingest (the Collection's single writer) never blocks ask, retrieve
or list calls in other threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.collection import Collection, EmbedSpec, Health
from ingest.filters import Filters
from rag.answerers.base import Answerer
from rag.answering import answer_stream, make_answer
from rag.backend_config import embed_key, with_llm_fields
from rag.relevance import ABSTAIN_TEXT, fill_gate_inputs, relevant  # noqa: F401 - re-exported for callers
from rag.settings import Settings, validated
from rag.types import Answer, Evidence, Source


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


def collection_of(settings: Settings, embed: Any = None) -> Collection:
    """The Collection the settings name (home, collection, chroma_url, embedding model)."""
    spec = EmbedSpec(settings.embed_base_url, settings.embed_model, embed_key(settings), settings.embed_precision,
                     settings.cache_path)  # the embedding key, never the LLM key
    from ingest.collection import ENGINES

    col = Collection(settings.home, settings.collection, settings.chroma_url, spec,
                     lexical_engine=ENGINES[settings.lexical_engine])
    if embed is not None:
        col._embed = embed  # an already loaded model (tests, benchmarks)
    return col


@dataclass(frozen=True)
class _Bundle:
    """Settings and the objects built from them; replaced whole, never mutated (lazy parts build once)."""

    settings: Settings
    _parts: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        part = self._parts.get(name)
        if part is None:
            with self._lock:  # held only while one backend object is constructed
                part = self._parts.get(name)
                if part is None:
                    part = self._parts[name] = make()
        return part


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
        if settings is not None and "llm_api_key" in overrides and "llm_api_key_url" not in overrides:
            overrides = {**overrides, "llm_api_key_url": None}  # a key given here belongs to the base URL given with it
        s = validated(settings, overrides)  # overrides are validated like env vars (top_k=0 is an error)
        self._bundle = _Bundle(s)
        self.collection = collection_of(s)

    @classmethod
    def over(cls, collection: Collection, settings: Settings | None = None, **overrides: Any) -> Paperchat:
        """A Paperchat over an already opened Collection (e.g. one sharing a loaded embedding model)."""
        pc = cls(settings, **overrides)
        pc.collection = collection
        return pc

    @property
    def settings(self) -> Settings:
        return self._bundle.settings

    @settings.setter
    def settings(self, new: Settings) -> None:
        """Replace the settings (and so the answer backend) in one swap; the collection stays."""
        self._bundle = _Bundle(validated(new, {}))

    def use_answerer(self, answerer: Answerer | None) -> None:
        """Answer with this backend object (tests, embedding applications); None rebuilds from the settings."""
        b = _Bundle(self.settings)
        if answerer is not None:
            b._parts["answerer"] = answerer
        self._bundle = b

    # Older spellings some tests use to inject parts; they go through the swaps above.
    @property
    def _answerer(self) -> Answerer | None:
        return self._bundle._parts.get("answerer")  # type: ignore[no-any-return]

    @_answerer.setter
    def _answerer(self, answerer: Answerer | None) -> None:
        self.use_answerer(answerer)

    @property
    def _embed(self) -> Any:
        return self.collection._embed

    @_embed.setter
    def _embed(self, embed: Any) -> None:
        self.collection._embed = embed

    # --- components ------------------------------------------------------------------
    @property
    def embed(self) -> Any:
        return self.collection.embed

    @property
    def store(self) -> Any:
        """The Chroma side (for tools and tests; the API below is what applications use)."""
        return self.collection.store

    @property
    def lexical(self) -> Any:
        """The current lexical snapshot."""
        return self.collection.lexical

    def answerer(self) -> Answerer:
        """The configured answer backend (extractive when no LLM is configured)."""
        b = self._bundle

        def make() -> Answerer:
            from rag.answerers.factory import make_answerer

            return make_answerer(b.settings, self.embed)
        return b.get("answerer", make)  # type: ignore[no-any-return]

    def extractive(self) -> Answerer:
        def make() -> Answerer:
            from rag.answerers.extractive import ExtractiveAnswerer

            return ExtractiveAnswerer(self.embed)
        return self._bundle.get("extractive", make)  # type: ignore[no-any-return]

    # --- writing (the collection's single writer) -----------------------------------------------
    def ingest(self, paths: Iterable[str | Path], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> Any:
        """Read, chunk, embed and index every paper under `paths`; idempotent. Returns an IngestReport.

        `on_progress(records_read, 0)` is called after each batch (for UIs). Questions asked meanwhile
        are answered from the collection as it was before this ingest."""
        return self.collection.ingest(paths, progress=progress, on_progress=on_progress)

    def delete(self, paper_ids: list[str]) -> int:
        """Remove papers (all their chunks); returns chunks removed."""
        return self.collection.delete(paper_ids)

    # --- retrieval ---------------------------------------------------------------------
    def retriever(self, mode: str = "hybrid", filters: Filters | None = None, top_k: int | None = None) -> Any:
        """The paper-level fused retriever behind `ask` (`as_retriever()` gives a llama-index one)."""
        from rag.retrieval.hybrid import HybridRetriever

        s, col = self.settings, self.collection
        return HybridRetriever(col.store, col.lexical, col.embed, mode=mode, top_k=top_k or s.top_k,
                               candidates=s.candidates, fusion=s.fusion, rrf_k=s.rrf_k,
                               weights=(s.dense_weight, s.lexical_weight), filters=filters or Filters())

    def _focus(self, retriever: Any, text: str, ids: list[str]) -> dict[str, float]:
        """Best-chunk cosine of `text` for the papers `ids` (a gate input; {} when Chroma cannot say).

        One query with the retriever's own filters, not a `paper_id $in` filter: embedded Chroma fails that
        filtered query ("Error finding id") while another process writes (tests/test_durability.py)."""
        from chromadb.errors import ChromaError

        try:
            scores = retriever.dense(self.collection.embed.get_query_embedding(text), retriever.filters)
        except ChromaError:  # the gate then uses the question's own cosine only
            return {}
        wanted = set(ids)
        return {pid: s for pid, s in scores.items() if pid in wanted}

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 mode: str = "hybrid") -> list[Source]:
        """The top-k papers for a question as numbered sources (full abstracts)."""
        b = self._bundle
        k = k or b.settings.top_k
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not self.collection.exists():
            return []
        rerank = b.settings.reranker != "none"
        retriever = self.retriever(mode, filters, max(k, 20) if rerank else k)
        hits = retriever.hits(question)
        if not hits:
            return []
        papers = self.collection.papers([h.paper_id for h in hits])
        out: list[Source] = []
        for h in hits:
            p = papers.get(h.paper_id)
            if p is None:
                continue
            out.append(Source(n=len(out) + 1, paper_id=h.paper_id, title=p.title, score=round(h.score, 6),
                              text=p.abstract, url=p.url, authors=p.authors, year=p.year,
                              date=p.date, categories=p.categories, dense=round(h.dense, 4),
                              lexical=round(h.lexical, 4)))
        fill_gate_inputs(question, out, self.collection.lexical,  # inputs of the relevance gate
                         lambda text, ids: self._focus(retriever, text, ids))
        if rerank:
            def make() -> Any:
                from rag.retrieval.rerank import make_reranker

                return make_reranker(b.settings, self.answerer()) or False
            reranker = b.get("reranker", make)  # loaded once per settings, not per question
            out = reranker.rerank(question, out)[:k] if reranker else out[:k]
        return out

    def papers_by_id(self, paper_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Stored papers (title, abstract, authors, url, year, ...) for the given ids."""
        return {pid: p.as_dict() for pid, p in self.collection.papers(paper_ids).items()}

    # --- answering ---------------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, filters: Filters | None = None) -> Answer:
        """Retrieve and answer; never raises for LLM failures (falls back to extractive with a notice)."""
        result: Answer | None = None
        for event in self.ask_stream(question, k, filters):
            if isinstance(event, Answer):
                result = event
        assert result is not None
        return result

    def ask_stream(self, question: str, k: int | None = None,
                   filters: Filters | None = None) -> Iterator[str | Evidence | Answer]:
        """Yield the Evidence (LLM backends), text deltas as the answer is produced, then the final Answer."""
        question = (question or "").strip()
        if not question:
            raise ValueError("question is empty")
        b = self._bundle  # one consistent bundle for the whole answer, even if the LLM is switched meanwhile
        t0 = time.perf_counter()
        if self.collection.count_papers() == 0:
            text = self.empty_message()
            yield text
            yield make_answer(question, text, True, b.settings.llm, [], [], t0, time.perf_counter(), text)
            return
        sources = self.retrieve(question[:self.settings.max_question_chars], k, filters)
        t1 = time.perf_counter()
        yield from answer_stream(question, sources, self.answerer(), self.extractive(), b.settings, t0, t1)

    def empty_message(self) -> str:
        """What is said when there is nothing to search: names the collection's absolute location."""
        col = self.collection
        state = "is empty" if col.exists() else "does not exist"
        return (f"The {col.location()} {state}: add papers with `paperchat ingest PATH` (or set PAPERCHAT_HOME "
                "to the directory that holds your index).")

    # --- the collection ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Where the data lives and what it holds (secrets redacted)."""
        return {**self.collection.stats(), "llm": self.settings.llm}

    def count_papers(self, query: str | None = None) -> int:
        return self.collection.count_papers(query)

    def list_papers(self, query: str | None = "", limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """One row per stored paper (paper_id, title, authors, year, date, categories, url), sorted by title.

        `query` keeps the papers whose id, title, authors or categories contain it (case-insensitive);
        `offset`/`limit` page through them."""
        return self.collection.list_papers(query, limit, offset)

    def categories(self) -> list[str]:
        """Every category of a stored paper, sorted (e.g. for a UI's filter)."""
        return self.collection.categories()

    def example_questions(self, n: int = 3) -> list[str]:
        """Questions about `n` papers spread over the collection (deterministic), e.g. for a UI's examples.

        Reads n rows of the paper table, never the whole table."""
        total = self.count_papers()
        if not total or n < 1:
            return []
        step = max(1, total // n)
        out = []
        for offset in range(0, total, step):
            rows = self.list_papers(limit=1, offset=offset)
            if rows and rows[0]["title"]:
                out.append(f'What does the paper "{rows[0]["title"]}" show?')
            if len(out) >= n:
                break
        return out

    def health(self) -> Health:
        return self.collection.health()

    def repair(self) -> Health:
        return self.collection.repair()

    # --- llama-index ---------------------------------------------------------------------
    def as_retriever(self, k: int | None = None, filters: Filters | None = None) -> Any:
        """A llama-index BaseRetriever returning one NodeWithScore per paper (text, title, url, year)."""
        from rag.llama import PaperRetriever

        return PaperRetriever(self, k, filters)

    def as_query_engine(self, k: int | None = None, filters: Filters | None = None) -> Any:
        """A llama-index query engine answering with our citations (`response.metadata['answer']`)."""
        from rag.llama import PaperQueryEngine

        return PaperQueryEngine(self, k, filters)

    # --- the answer backend ----------------------------------------------------------------
    def configure_llm(self, **fields: Any) -> None:
        """Switch the answer backend (any `llm*` setting, validated); the next question uses it."""
        new = with_llm_fields(self.settings, fields)  # a changed base URL without a new key drops the key
        old, self._bundle = self._bundle, _Bundle(new)  # one reference swap; answers in flight keep their bundle
        close = getattr(old._parts.get("answerer"), "close", None)
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
