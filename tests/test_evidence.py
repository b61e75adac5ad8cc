"""Compressed evidence (rag/evidence.py): title + the most relevant sentences within a tiktoken budget."""

from __future__ import annotations

from dataclasses import replace

from ingest.chunking import count_tokens
from rag import prompts
from rag.answerers.openai_compat import OpenAIAnswerer
from rag.evidence import compress, select, top_sentences
from rag.settings import Settings
from rag.types import Source
from tests.test_verify import BagOfWords

FILLER = [f"Background sentence number {i} discusses unrelated matters of tables and chairs in detail." for i in range(30)]
KEY = "Grokking happens because local complexity of the linear regions undergoes a phase transition."
LONG = Source(1, "p:1", "Deep Networks Always Grok", 1.0, " ".join(FILLER[:12] + [KEY] + FILLER[12:]))
SHORT = Source(2, "p:2", "Pointer Networks", 0.5, "Pointer networks use attention to point at input positions.")
Q = "Why does grokking happen? What role does local complexity play?"


def test_short_sources_are_sent_whole_and_long_ones_within_the_budget() -> None:
    out = compress(Q, [LONG, SHORT], BagOfWords(), budget=80)
    assert [(s.n, s.title) for s in out] == [(1, LONG.title), (2, SHORT.title)]
    assert out[1].text == SHORT.text
    assert count_tokens(LONG.text) > 300 and count_tokens(out[0].text) <= 80 + 10
    assert KEY in out[0].text and " ... " in out[0].text  # the gaps are marked


def test_kept_sentences_stay_in_their_original_order() -> None:
    out = compress(Q + " Background sentence number 20.", [LONG], BagOfWords(), budget=120)[0].text
    assert out.index(KEY) < out.index("number 20 ")


def test_zero_budget_sends_whole_abstracts() -> None:
    assert compress(Q, [LONG], BagOfWords(), budget=0)[0].text == LONG.text


def test_top_sentences_are_the_evidence_shown_first() -> None:
    assert top_sentences(Q, [LONG, SHORT], BagOfWords()) == [(1, KEY), (2, SHORT.text)]


def test_the_llm_prompt_carries_the_compressed_evidence_after_the_fixed_instructions() -> None:
    a = OpenAIAnswerer(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", evidence_tokens=80,
                                evidence_ratio=0), embed=BagOfWords())
    msgs = a.messages(Q, [LONG, SHORT])
    assert msgs[0]["content"] == prompts.SYSTEM_PROMPT and msgs[1:3] == prompts.EXAMPLE_MESSAGES  # cacheable prefix
    assert KEY in msgs[-1]["content"] and msgs[-1]["content"].count("Background sentence") < 6
    assert [s.n for s in a.shown(Q, [LONG, SHORT])] == [1, 2]
    whole = OpenAIAnswerer(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", evidence_tokens=0,
                                    evidence_ratio=0))
    assert count_tokens(whole.messages(Q, [LONG, SHORT])[-1]["content"]) > 2 * count_tokens(msgs[-1]["content"])


def test_sources_far_below_the_best_are_not_shown() -> None:
    srcs = [replace(SHORT, n=1, score=0.9), replace(LONG, n=2, score=0.8), replace(SHORT, n=3, paper_id="p:3", score=0.3)]
    assert [s.n for s in select(srcs)] == [1, 2]
    assert [s.n for s in select(srcs, 0)] == [1, 2, 3]
    a = OpenAIAnswerer(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1"), embed=BagOfWords())
    assert [s.n for s in a.shown(Q, srcs)] == [1, 2]
