"""Claim-level verification (rag/verify.py), table-driven: supported, mis-attributed then re-attributed,
unsupported then marked or removed; then the whole answer path with a scripted written answer.

Unit tables use a deterministic bag-of-words encoder; one test runs the same table with the real MiniLM.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from rag.answering import answer_stream
from rag.citations import MARKER, expand
from rag.settings import Settings
from rag.text import terms
from rag.types import Answer, Evidence, Source
from rag.verify import SupportScorer, split_claims, verify, with_markers

SOURCES = [
    Source(1, "p:grok", "Deep Networks Always Grok and Here is Why", 0.9,
           "Grokking, or delayed generalization, is when a deep network generalizes long after reaching near zero "
           "training error. We show that grokking is explained by the emergence of local complexity in the "
           "network's linear regions.", dense=0.7),
    Source(2, "p:ptr", "Pointer Networks", 0.8,
           "Pointer networks use attention to point at positions of the input sequence. They solve combinatorial "
           "problems such as finding convex hulls and the travelling salesman problem.", dense=0.6),
    Source(3, "p:rnn", "Sparse Recurrent Neural Networks", 0.7,
           "Pruning recurrent neural networks to ninety percent sparsity keeps their accuracy on speech recognition.",
           dense=0.5),
]


class BagOfWords:
    """A deterministic stand-in for MiniLM: normalised hashed counts of content terms."""

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        out = []
        for t in texts:
            v = np.zeros(256)
            for w in terms(t):
                v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 256] += 1
            out.append((v / max(np.linalg.norm(v), 1e-9)).tolist())
        return out

    def get_query_embedding(self, text: str) -> list[float]:
        return self.get_text_embedding_batch([text])[0]


CASES = [
    # (name, answer sentence, citations after checking, supported, re-attributed)
    ("supported", "Grokking is delayed generalization long after near zero training error [1].", [1], True, 0),
    ("mis-attributed", "Pointer networks use attention to point at positions of the input [1].", [2], True, 1),
    ("uncited but supported", "Pointer networks solve convex hulls and the travelling salesman problem.", [2], True, 0),
    ("one of two cited supports it", "Grokking is explained by local complexity in linear regions [1][3].", [1], True, 0),
    ("unsupported", "The moon is made of green cheese and orbits Jupiter every week [2].", [], False, 0),
    ("not a claim", "Yes.", [], True, 0),
]


@pytest.mark.parametrize("name,sentence,cites,supported,moved", CASES, ids=[c[0] for c in CASES])
def test_each_claim_is_checked_against_the_shown_sources(name: str, sentence: str, cites: list[int],
                                                         supported: bool, moved: int) -> None:
    v = verify(sentence, SOURCES, SupportScorer(BagOfWords()))
    assert len(v.claims) == 1
    c = v.claims[0]
    assert c.citations == cites and c.supported is supported, (name, c)
    assert v.reattributed == moved
    assert [n for m in MARKER.finditer(v.text) for n in expand(m.group(1))] == cites  # text and claims agree
    if cites:
        assert c.support >= 0.5 and (0, cites[0]) in v.quotes and v.quotes[(0, cites[0])] in SOURCES[cites[0] - 1].text


@pytest.mark.parametrize("mode,kept", [("mark", 3), ("remove", 2)])
def test_unsupported_claims_are_marked_or_removed(mode: str, kept: int) -> None:
    text = ("Grokking is delayed generalization long after near zero training error [1]. "
            "The moon is made of green cheese and orbits Jupiter every week [2]. "
            "Pointer networks use attention to point at positions of the input [2].")
    v = verify(text, SOURCES, SupportScorer(BagOfWords()), mode=mode)  # type: ignore[arg-type]
    assert len(v.claims) == kept and v.unsupported == 1 and v.removed == (1 if mode == "remove" else 0)
    assert ("green cheese" in v.text) is (mode == "mark")
    assert "green cheese" not in v.text or "cheese and orbits Jupiter every week." in v.text  # no marker left on it
    assert [c.supported for c in v.claims] == ([True, False, True] if mode == "mark" else [True, True])


def test_real_minilm_agrees_on_the_table(sample_engine: Any) -> None:
    scorer = SupportScorer(sample_engine.embed)
    for name, sentence, cites, supported, _ in CASES:
        c = verify(sentence, SOURCES, scorer).claims[0]
        assert (c.citations, c.supported) == (cites, supported), name


@pytest.mark.parametrize("text,expected", [
    ("A is B [1]. C is D. [2]", [("A is B.", [1]), ("C is D.", [2])]),
    ("First line [1].\nSecond line [2][3].", [("First line.", [1]), ("Second line.", [2, 3])]),
    ("No markers here", [("No markers here", [])]),
])
def test_split_claims(text: str, expected: list[tuple[str, list[int]]]) -> None:
    assert [(t, n) for t, n, _ in split_claims(text)] == expected


def test_markers_go_before_the_final_punctuation() -> None:
    assert with_markers("It works.", [2, 1]) == "It works [2][1]."
    assert with_markers("It works", [1]) == "It works [1]"


# --- the answer path ----------------------------------------------------------------------------------------
class Scripted:
    """A written-answer backend that streams a fixed text (the LLM stand-in)."""

    name = "openai"

    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        yield from re.findall(r"\S+\s*", self.text)

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        return sources[:2]  # the third source did not fit the context window


class Extractive:
    name = "extractive"
    embed = BagOfWords()

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        yield "Grokking is when a deep network generalizes long after reaching near zero training error [1]."

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        return sources


def _final(text: str, **settings: Any) -> Answer:
    t = time.perf_counter()
    events = list(answer_stream("What is grokking and what do pointer networks do?", SOURCES, Scripted(text),
                                Extractive(), Settings(min_relevance=0.0, **settings), t, t))
    assert isinstance(events[-1], Answer)
    return events[-1]


def test_answer_claims_and_citations_are_consistent() -> None:
    ans = _final("Pointer networks use attention to point at positions of the input [1]. "
                 "Grokking is delayed generalization long after near zero training error [1]. "
                 "Pruning recurrent networks keeps accuracy on speech recognition at ninety percent sparsity [3].")
    assert ans.backend == "openai"
    # re-attributed to Pointer Networks (renumbered [1] as first cited); [3] was not shown to the model -> unsupported
    assert [(c.citations, c.supported) for c in ans.claims] == [([1], True), ([2], True), ([], False)]
    assert [c.title for c in ans.citations] == ["Pointer Networks", "Deep Networks Always Grok and Here is Why"]
    assert [s.title for s in ans.sources][:2] == [c.title for c in ans.citations]
    in_text = sorted({n for m in MARKER.finditer(ans.answer) for n in expand(m.group(1))})
    assert in_text == sorted({n for c in ans.claims for n in c.citations}) == [c.n for c in ans.citations]
    assert ans.citations[0].quote.startswith("Pointer networks use attention")
    assert "not found in the sources (marked)" in (ans.notice or "")
    d = ans.to_dict()
    assert d["claims"][2] == {"text": ans.claims[2].text, "citations": [], "support": ans.claims[2].support,
                              "supported": False}
    assert "first_token" in ans.timings_ms


def test_remove_mode_drops_the_unsupported_sentence() -> None:
    ans = _final("Grokking is delayed generalization long after near zero training error [1]. "
                 "The moon is made of green cheese and orbits Jupiter every week [2].", unsupported="remove")
    assert "cheese" not in ans.answer and len(ans.claims) == 1 and "(removed)" in (ans.notice or "")


def test_nothing_supported_falls_back_to_the_extractive_answer() -> None:
    ans = _final("The moon is made of green cheese and orbits Jupiter every week [1].")
    assert ans.backend == "extractive" and not ans.claims
    assert ans.notice == ("No sentence of the openai answer was found in the sources; showing the offline "
                          "extractive answer instead.")
    assert ans.citations and ans.citations[0].title.startswith("Deep Networks")


def test_a_written_answer_stream_starts_with_the_evidence() -> None:
    t = time.perf_counter()
    events = list(answer_stream("What do pointer networks do?", SOURCES,
                                Scripted("Pointer networks use attention to point at positions of the input [2]."),
                                Extractive(), Settings(min_relevance=0.0), t, t))
    ev, final = events[0], events[-1]
    assert isinstance(ev, Evidence) and isinstance(final, Answer)
    assert [q.n for q in ev.quotes] == [1, 2]  # the sources the model sees (the third did not fit)
    assert ev.quotes[1].sentence == "Pointer networks use attention to point at positions of the input sequence."
    assert all(isinstance(e, str) for e in events[1:-1])
    assert final.timings_ms["evidence"] <= final.timings_ms["first_token"]
    ex = Extractive()
    extractive = list(answer_stream("What is grokking?", SOURCES, ex, ex, Settings(min_relevance=0.0), t, t))
    assert not any(isinstance(e, Evidence) for e in extractive)  # the extractive answer is itself the evidence


def test_cli_prints_evidence_first_and_labels_unsupported_claims(capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import NOT_FOUND, format_answer, print_stream

    t = time.perf_counter()
    events = answer_stream("What do pointer networks do?", SOURCES,
                           Scripted("Pointer networks use attention to point at positions of the input [2]. "
                                    "The moon is made of green cheese and orbits Jupiter every week [1]."),
                           Extractive(), Settings(min_relevance=0.0), t, t)
    final = print_stream(events)
    out = capsys.readouterr().out
    assert out.index("Evidence (the answer follows):") < out.index("Pointer networks use attention to point at positions of the input [2]")
    assert f"orbits Jupiter every week. {NOT_FOUND}" in out.split("(checked against the sources)")[1]
    assert f"week. {NOT_FOUND}" in format_answer(final) and "\033[2m" in format_answer(final, color=True)


@pytest.mark.parametrize("coverage,declined", [(0.0, True), (1.0, False)], ids=["near-topic", "closely matching"])
def test_a_declining_model_gives_way_to_the_extractive_answer_only_when_a_source_matches_closely(
        coverage: float, declined: bool) -> None:
    from dataclasses import replace

    from rag.answerers.base import NO_ANSWER
    from rag.relevance import CONFIDENT_EVIDENCE, evidence

    sources = [replace(SOURCES[0], coverage=coverage), *SOURCES[1:]]  # grokking paper: evidence 0.7 or 1.0
    assert (evidence(sources[0]) >= CONFIDENT_EVIDENCE) is not declined
    t = time.perf_counter()
    events = list(answer_stream("What is grokking?", sources, Scripted(NO_ANSWER), Extractive(),
                                Settings(min_relevance=0.0), t, t))
    final = events[-1]
    assert isinstance(final, Answer) and final.abstained is declined
    if declined:
        assert final.answer == NO_ANSWER and final.backend == "openai" and not final.citations
    else:
        assert final.backend == "extractive" and final.citations[0].title.startswith("Deep Networks")
        assert "found no answer, but a source matches the question closely" in (final.notice or "")
