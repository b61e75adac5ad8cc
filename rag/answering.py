"""The answer path after retrieval: gate, backend (with extractive fallback), citation checks, final Answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rag.answerers.base import NO_ANSWER, Answerer, AnswererError
from rag.citations import MARKER, finalize
from rag.prompts import drop_example_echo
from rag.relevance import ABSTAIN_TEXT, relevant
from rag.settings import Settings
from rag.types import Answer, Source


def make_answer(question: str, text: str, abstained: bool, backend: str, citations: list[Any],
                sources: list[Source], t0: float, t1: float, notice: str | None) -> Answer:
    """An Answer with retrieve / answer / total timings measured from t0 (start) and t1 (retrieval done)."""
    t2 = time.perf_counter()
    return Answer(question=question, answer=text, abstained=abstained, backend=backend, citations=citations,
                  sources=sources, notice=notice,
                  timings_ms={"retrieve": round((t1 - t0) * 1000, 2), "answer": round((t2 - t1) * 1000, 2),
                              "total": round((t2 - t0) * 1000, 2)})


def answer_stream(question: str, sources: list[Source], answerer: Answerer, extractive: Answerer,
                  settings: Settings, t0: float, t1: float) -> Iterator[str | Answer]:
    """Yield text deltas as the answer is produced, then the final Answer (renumbered citations).

    Never raises for backend failures: the extractive answerer stands in, with a notice."""
    backend = answerer.name
    if not sources or not relevant(question, sources, settings.min_relevance):
        yield ABSTAIN_TEXT
        yield make_answer(question, ABSTAIN_TEXT, True, backend, [], sources, t0, t1, None)
        return
    notice = None
    parts: list[str] = []
    shown = sources  # what the backend saw; an LLM's context window may have left the lowest-ranked out
    try:
        for delta in answerer.stream(question, sources):
            parts.append(delta)
            yield delta
        if answerer is not extractive:
            shown = answerer.shown(question, sources)
            text, echoed = drop_example_echo("".join(parts).strip(), shown)
            if echoed and not MARKER.search(text):  # nothing cited is left: nothing worth showing
                raise AnswererError("it repeated the prompt's worked example instead of answering")
            if echoed:
                parts = [text]
                notice = f"Removed {echoed} sentence(s) that repeated the prompt's worked example."
    except Exception as exc:  # noqa: BLE001 - a failing backend must never end the answer
        # AnswererError messages are written to be safe (no key, no server text); others show only their type
        reason = str(exc) if isinstance(exc, AnswererError) else type(exc).__name__
        notice = f"The {backend} backend failed ({reason}); showing the offline extractive answer instead."
        answerer = extractive  # the answer below is the extractive one; partial LLM text is discarded
        backend, shown = answerer.name, sources
        parts = list(answerer.stream(question, sources))
        yield "\n\n" + notice + "\n\n" + "".join(parts)
    text = "".join(parts).strip()
    if not text or NO_ANSWER.lower().rstrip(".") in text.lower():
        yield make_answer(question, ABSTAIN_TEXT if not text else NO_ANSWER, True, backend, [], sources, t0, t1, notice)
        return
    # only what the backend saw may be cited: a marker naming a source trimmed from its context is dropped
    cited = finalize(text, sources, citable={s.n for s in shown})
    if not cited.citations:
        notice = (notice + " " if notice else "") + "The answer cited no source."
    yield make_answer(question, cited.text, False, backend, cited.citations, cited.sources, t0, t1, notice)
