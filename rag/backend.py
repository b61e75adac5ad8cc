"""The answer backend: a frozen bundle of settings and the answerers built from them, its switch and its probe.

A bundle is replaced whole on change (`with_llm`, `with_answerer`), never mutated: an answer in flight keeps
the bundle it started with. Its parts (answerer, extractive answerer, reranker) are built once, lazily.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rag.answerers.base import Answerer
from rag.backend_config import with_llm_fields
from rag.settings import Settings
from rag.types import Source

EmbedOf = Callable[[], Any]  # the collection's embedder, loaded only when a part needs it


@dataclass(frozen=True)
class Bundle:
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

    def answerer(self, embed_of: EmbedOf) -> Answerer:
        """The configured answer backend (extractive when no LLM is configured)."""
        def make() -> Answerer:
            from rag.answerers.factory import make_answerer

            return make_answerer(self.settings, embed_of())
        return self.get("answerer", make)  # type: ignore[no-any-return]

    def extractive(self, embed_of: EmbedOf) -> Answerer:
        def make() -> Answerer:
            from rag.answerers.extractive import ExtractiveAnswerer

            return ExtractiveAnswerer(embed_of())
        return self.get("extractive", make)  # type: ignore[no-any-return]

    def reranker(self, embed_of: EmbedOf) -> Any:
        """The reranker the settings name, or False (loaded once per settings, not per question)."""
        def make() -> Any:
            from rag.retrieval.rerank import make_reranker

            return make_reranker(self.settings, self.answerer(embed_of)) or False
        return self.get("reranker", make)

    def with_answerer(self, answerer: Answerer | None) -> Bundle:
        """The same settings answered by this backend object; None rebuilds it from the settings."""
        b = Bundle(self.settings)
        if answerer is not None:
            b._parts["answerer"] = answerer
        return b

    def with_llm(self, fields: dict[str, Any]) -> Bundle:
        """A bundle with these `llm*` settings (validated; a changed base URL without a new key drops the key)."""
        return Bundle(with_llm_fields(self.settings, fields))

    def close(self) -> None:
        """Stop what this bundle's answerer runs (a GGUF llama.cpp server, unless another user holds it)."""
        close = getattr(self._parts.get("answerer"), "close", None)
        if close:
            close()


def check_llm(bundle: Bundle, embed_of: EmbedOf, **overrides: Any) -> tuple[bool, str]:
    """Ask the bundle's backend (or one with these `llm*` overrides) a one-source question.

    Returns (ok, message) and never raises: a broken LLM must not take the caller down. The message
    never holds the reply's text (a probe must not read other services); a failure's message is the
    answerer's own safe one (no key, no server text). A changed base URL without a new key gets no key."""
    from rag.answerers.base import AnswererError

    t0 = time.perf_counter()
    answerer: Any = None
    try:
        if overrides:
            from rag.answerers.factory import make_answerer

            answerer = make_answerer(with_llm_fields(bundle.settings, {**overrides, "llm_retries": 0}), embed_of())
        else:
            answerer = bundle.answerer(embed_of)
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
