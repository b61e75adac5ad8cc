"""The answer path after retrieval: gate, backend (with extractive fallback), claim checks, citations, final Answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from rag.answerers.base import NO_ANSWER, Answerer, AnswererError
from rag.citations import MARKER, finalize
from rag.prompts import drop_example_echo
from rag.relevance import ABSTAIN_TEXT, CHOSEN_NOTICE, CONFIDENT_EVIDENCE, relevant, strongest
from rag.settings import Settings
from rag.evidence import top_sentences
from rag.types import Answer, Claim, Evidence, Quote, Source
from rag.verify import SupportScorer, Verified, renumber_claims, verify


def make_answer(question: str, text: str, abstained: bool, backend: str, citations: list[Any],
                sources: list[Source], t0: float, t1: float, notice: str | None,
                first_token: float | None = None, claims: list[Claim] | None = None,
                evidence_at: float | None = None) -> Answer:
    """An Answer with retrieve / answer / total (and first_token) timings measured from t0 (start) and t1 (retrieval done)."""
    t2 = time.perf_counter()
    timings = {"retrieve": round((t1 - t0) * 1000, 2), "answer": round((t2 - t1) * 1000, 2),
               "total": round((t2 - t0) * 1000, 2)}
    if first_token is not None:
        timings["first_token"] = round((first_token - t0) * 1000, 2)
    if evidence_at is not None:
        timings["evidence"] = round((evidence_at - t0) * 1000, 2)
    return Answer(question=question, answer=text, abstained=abstained, backend=backend, citations=citations,
                  sources=sources, notice=notice, timings_ms=timings, claims=claims or [])


class _Unsupported(AnswererError):
    """A written answer none of whose sentences the shown sources support (the extractive answer stands in)."""


def _is_no_answer(text: str) -> bool:
    return NO_ANSWER.lower().rstrip(".") in text.lower()


def _verify_notice(v: Verified, mode: str) -> str | None:
    bits = []
    if v.reattributed:
        bits.append(f"{v.reattributed} citation(s) moved to the source that supports the sentence")
    if v.unsupported:
        what = "removed" if mode == "remove" else "marked"
        bits.append(f"{v.unsupported} sentence(s) not found in the sources ({what})")
    return ("Checked against the sources: " + "; ".join(bits) + ".") if bits else None


def evidence(question: str, sources: list[Source], answerer: Answerer, embed: Any) -> Evidence:
    """The best sentence of each source the answerer will see (full text), for showing before the answer."""
    try:
        seen = {s.n for s in answerer.shown(question, sources)}
    except Exception:  # noqa: BLE001 - evidence is a courtesy; the answer path reports real failures
        seen = {s.n for s in sources}
    shown = [s for s in sources if s.n in seen]
    by_n = {s.n: s for s in shown}
    return Evidence([Quote(n, by_n[n].title, sent) for n, sent in top_sentences(question, shown, embed)])


def _join(*notices: str | None) -> str | None:
    return " ".join(n for n in notices if n) or None


def answer_stream(question: str, sources: list[Source], answerer: Answerer, extractive: Answerer,
                  settings: Settings, t0: float, t1: float, chosen: bool = False) -> Iterator[str | Evidence | Answer]:
    """Yield the evidence (LLM backends: the best sentence of each source, at once), text deltas as the
    answer is produced, then the final Answer (renumbered citations).

    `chosen`: the user restricted the question to these papers, so the relevance gate does not refuse it
    ("Summarise this paper" shares no words with any abstract); a notice says when the gate would have.
    A written (LLM) answer is checked claim by claim against the sources the model saw (rag/verify.py).
    Never raises for backend failures: the extractive answerer stands in, with a notice, also when no
    sentence of the written answer is supported by the sources."""
    backend = answerer.name
    close = bool(sources) and relevant(question, sources, settings.min_relevance)
    if not sources or not (close or chosen):
        yield ABSTAIN_TEXT
        yield make_answer(question, ABSTAIN_TEXT, True, backend, [], sources, t0, t1, None)
        return
    notice = None if close else CHOSEN_NOTICE
    parts: list[str] = []
    first: float | None = None
    verified: Verified | None = None
    shown = sources  # what the backend saw; an LLM's context window may have left the lowest-ranked out
    embed = getattr(extractive, "embed", None)
    evidence_at = None
    written = answerer.name != extractive.name  # an LLM writes it (the engine's extractive instances differ)
    if written:
        ev = evidence(question, sources, answerer, embed)
        evidence_at = time.perf_counter()
        yield ev  # no blank screen while a local model reads
    try:
        for delta in answerer.stream(question, sources):
            if first is None and delta.strip():
                first = time.perf_counter()
            parts.append(delta)
            yield delta
        if written:
            seen = {s.n for s in answerer.shown(question, sources)}
            shown = [s for s in sources if s.n in seen]  # full texts: claims are checked against the real abstract
            text, echoed = drop_example_echo("".join(parts).strip(), shown)
            if echoed and not MARKER.search(text):  # nothing cited is left: nothing worth showing
                raise AnswererError("it repeated the prompt's worked example instead of answering")
            if echoed:
                notice = _join(notice, f"Removed {echoed} sentence(s) that repeated the prompt's worked example.")
            if text and _is_no_answer(text) and strongest(sources, settings.min_relevance)[0] >= CONFIDENT_EVIDENCE:
                raise _Unsupported(f"The {backend} model found no answer, but a source matches the question closely; "
                                   "showing the offline extractive answer instead.")
            if text and not _is_no_answer(text):
                verified = verify(text, shown, SupportScorer(embed), settings.unsupported)
                if not verified.supported_count:
                    raise _Unsupported(f"No sentence of the {backend} answer was found in the sources; showing the "
                                       "offline extractive answer instead.")
                text = verified.text
                extra = _verify_notice(verified, settings.unsupported)
                notice = _join(notice, extra)
            parts = [text]
    except Exception as exc:  # noqa: BLE001 - a failing backend must never end the answer
        # AnswererError messages are written to be safe (no key, no server text); others show only their type
        reason = str(exc) if isinstance(exc, AnswererError) else type(exc).__name__
        notice = _join(notice, str(exc) if isinstance(exc, _Unsupported) else (
            f"The {backend} backend failed ({reason}); showing the offline extractive answer instead."))
        answerer = extractive  # the answer below is the extractive one; partial LLM text is discarded
        backend, shown, verified = answerer.name, sources, None
        parts = list(answerer.stream(question, sources))
        yield "\n\n" + (notice or "") + "\n\n" + "".join(parts)
    text = "".join(parts).strip()
    if not text or _is_no_answer(text):
        yield make_answer(question, ABSTAIN_TEXT if not text else NO_ANSWER, True, backend, [], sources, t0, t1,
                          notice, first, evidence_at=evidence_at)
        return
    # only what the backend saw may be cited: a marker naming a source trimmed from its context is dropped
    cited = finalize(text, sources, citable={s.n for s in shown})
    claims: list[Claim] = []
    citations = cited.citations
    if verified is not None:
        claims = renumber_claims(verified.claims, sources, cited.sources)
        quote_of: dict[int, str | None] = {}  # old n -> the sentence of the source that supports the first claim citing it
        for i, c in enumerate(verified.claims):
            for old in c.citations:
                quote_of.setdefault(old, verified.quotes.get((i, old)))
        old_of = {s.paper_id: s.n for s in sources}
        citations = [replace(c, quote=quote_of.get(old_of.get(c.paper_id, -1)) or c.quote) for c in citations]
    if not citations:
        notice = _join(notice, "The answer cited no source.")
    yield make_answer(question, cited.text, False, backend, citations, cited.sources, t0, t1, notice, first, claims,
                      evidence_at)
