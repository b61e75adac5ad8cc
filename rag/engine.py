"""The public Python API: a thin front over a Collection (ingest/collection.py) and an answer backend.

`Paperchat` holds one frozen bundle (settings, answerers; rag/backend.py) and replaces it whole when the LLM is
switched; it takes no lock around reads, so an ingest (the Collection's single writer) never blocks ask,
retrieve or list calls in other threads. Retrieval is rag/retrieval/sources.py, the answer path rag/answering.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ingest.collection import Collection, Health
from ingest.filters import Filters
from rag.answerers.base import Answerer
from rag.answering import answer_stream, make_answer
from rag.backend import Bundle, check_llm
from rag.opening import collection_of, offline_env  # noqa: F401 - collection_of re-exported for callers
from rag.relevance import ABSTAIN_TEXT, fill_gate_inputs, relevant  # noqa: F401 - re-exported for callers
from rag.retrieval import sources
from rag.settings import Settings, validated
from rag.types import Answer, Evidence, Source


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
        offline_env()
        if settings is not None and "llm_api_key" in overrides and "llm_api_key_url" not in overrides:
            overrides = {**overrides, "llm_api_key_url": None}  # a key given here belongs to the base URL given with it
        s = validated(settings, overrides)  # overrides are validated like env vars (top_k=0 is an error)
        self._bundle = Bundle(s)
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
        self._bundle = Bundle(validated(new, {}))

    def use_answerer(self, answerer: Answerer | None) -> None:
        """Answer with this backend object (tests, embedding applications); None rebuilds from the settings."""
        self._bundle = self._bundle.with_answerer(answerer)

    # Older spellings tests use to inject parts (the answerer through the swap above, the model into the collection)
    _answerer = property(lambda self: self._bundle._parts.get("answerer"), lambda self, a: self.use_answerer(a))
    _embed = property(lambda self: self.collection._embed, lambda self, e: setattr(self.collection, "_embed", e))

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

    def _embed_of(self) -> Any:
        return self.embed

    def answerer(self) -> Answerer:
        """The configured answer backend (extractive when no LLM is configured)."""
        return self._bundle.answerer(self._embed_of)

    def extractive(self) -> Answerer:
        return self._bundle.extractive(self._embed_of)

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
        return sources.hybrid_retriever(self.collection, self.settings, mode, filters, top_k)

    def retrieve(self, question: str, k: int | None = None, filters: Filters | None = None,
                 mode: str = "hybrid") -> list[Source]:
        """The top-k papers for a question as numbered sources (full abstracts)."""
        return self._retrieve(self._bundle, question, k, filters, mode)

    def _retrieve(self, b: Bundle, question: str, k: int | None, filters: Filters | None,
                  mode: str = "hybrid") -> list[Source]:
        return sources.retrieve(self.collection, b.settings, question, k, filters, mode,
                                lambda: b.reranker(self._embed_of))

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
        found = self._retrieve(b, question[:b.settings.max_question_chars], k, filters)
        t1 = time.perf_counter()
        yield from answer_stream(question, found, b.answerer(self._embed_of), b.extractive(self._embed_of),
                                 b.settings, t0, t1, chosen=bool(filters and filters.paper_ids))

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

    def find_titles(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` rows like `list_papers`'s whose title contains `text` as typed (case-insensitive)."""
        return self.collection.find_titles(text, limit)

    def categories(self) -> list[str]:
        """Every category of a stored paper, sorted (e.g. for a UI's filter)."""
        return self.collection.categories()

    def example_questions(self, n: int = 3) -> list[str]:
        """Questions about `n` papers spread over the collection (deterministic), e.g. for a UI's examples."""
        return [f'What does the paper "{t}" show?' for t in self.collection.spread_titles(n)]

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
        old, self._bundle = self._bundle, self._bundle.with_llm(fields)  # answers in flight keep their bundle
        old.close()  # a replaced GGUF backend stops its llama.cpp server (unless another user holds it)

    def check_llm(self, **overrides: Any) -> tuple[bool, str]:
        """Ask the configured backend (or one with these `llm*` overrides) a one-source question: (ok, message).

        Never raises; the message never holds the reply's text or a key (rag/backend.py)."""
        return check_llm(self._bundle, self._embed_of, **overrides)
