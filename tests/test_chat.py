"""Conversations: history kept, follow-ups rewritten to standalone questions before retrieval."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from rag.answerers.openai_compat import OpenAIAnswerer
from rag.chat import ChatSession, heuristic_rewrite
from rag.cli import main
from rag.settings import Settings
from rag.types import Answer, Citation
from tests.test_llm_openai import FakeOpenAI, refused_url

GROK_TITLE = "Deep Networks Always Grok and Here is Why"
SPON_TITLE = "Structure-Preserving Operator Learning"


def _with(sample_engine: Any, answerer: Any) -> Any:
    pc = copy.copy(sample_engine)
    pc._answerer = answerer
    return pc


def test_conversation_follow_ups_retrieve_the_right_paper(sample_engine: Any) -> None:
    chat = ChatSession(sample_engine)
    turns = [
        ("Which paper explains why grokking happens in deep networks?", GROK_TITLE),
        ("Does it also say something about adversarial robustness?", GROK_TITLE),
        ("How can a neural operator exactly enforce boundary conditions on complex geometries?", SPON_TITLE),
        ("What discretization are its encoder and decoder based on?", SPON_TITLE),
        ("and its limitations?", SPON_TITLE),
    ]
    for question, title in turns:
        ans = chat.ask(question)
        assert ans.question == question  # the user's wording is kept ...
        assert ans.sources[0].title == title, (question, chat.history[-1].standalone)
        assert ans.citations and ans.citations[0].title == title
    assert len(chat.history) == len(turns)
    assert chat.history[1].standalone != turns[1][0] and GROK_TITLE in chat.history[1].standalone  # ... the rewrite retrieves
    assert chat.history[2].standalone == turns[2][0]  # a standalone question is left alone


def test_streaming_turn_yields_deltas_then_the_answer(sample_engine: Any) -> None:
    chat = ChatSession(sample_engine)
    events = list(chat.ask_stream("Which paper explains why grokking happens in deep networks?"))
    assert all(isinstance(e, str) for e in events[:-1]) and isinstance(events[-1], Answer)
    assert "".join(events[:-1]).strip()
    assert chat.history[-1].answer is events[-1]


def _turn(question: str, title: str) -> Any:
    from rag.chat import Turn

    ans = Answer(question, "x [1].", False, "extractive", [Citation(1, "p", title, None, "q")])
    return Turn(question, question, ans)


@pytest.mark.parametrize("follow_up, rewritten", [
    ("what about its limitations?", True),
    ("How do they compare?", True),
    ("more?", True),
    ("Which paper studies neural vocoders for speech synthesis?", False),
])
def test_heuristic_rewrite(follow_up: str, rewritten: bool) -> None:
    out = heuristic_rewrite(follow_up, [_turn("grokking?", GROK_TITLE)])
    assert (GROK_TITLE in out) is rewritten
    assert heuristic_rewrite(follow_up, []) == follow_up


def test_llm_rewrite_is_used_for_retrieval(sample_engine: Any) -> None:
    fake = FakeOpenAI()
    try:
        a = OpenAIAnswerer(Settings(llm="openai", llm_base_url=fake.url, llm_retries=0), sleep=lambda s: None)
        chat = ChatSession(_with(sample_engine, a))
        fake.script = [("stream", ["Grokking is delayed generalization [1]."]),
                       ("complete", "How does the paper on grokking explain delayed robustness?"),
                       ("stream", ["It explains it with local complexity [1]."])]
        chat.ask("Which paper explains why grokking happens in deep networks?")
        ans = chat.ask("and robustness?")
        assert chat.history[-1].standalone == "How does the paper on grokking explain delayed robustness?"
        assert ans.sources[0].title == GROK_TITLE and ans.question == "and robustness?"
        rewrite_request = fake.requests[1][1]
        assert rewrite_request["stream"] is False and "and robustness?" in rewrite_request["messages"][-1]["content"]
    finally:
        fake.close()


def test_failing_llm_rewrite_falls_back_to_the_heuristic(sample_engine: Any) -> None:
    a = OpenAIAnswerer(Settings(llm="openai", llm_base_url=refused_url(), llm_retries=0), sleep=lambda s: None)
    chat = ChatSession(_with(sample_engine, a))
    first = chat.ask("Which paper explains why grokking happens in deep networks?")
    assert first.notice and "could not connect" in first.notice  # extractive answer with a notice
    follow = chat.ask("what are its limitations?")
    assert GROK_TITLE in chat.history[-1].standalone and follow.sources[0].title == GROK_TITLE


def test_paperchat_chat_terminal_loop(sample_engine: Any, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(
        "Which paper explains why grokking happens in deep networks?\nwhat about its limitations?\n\n"))
    assert main(["chat", "--home", str(sample_engine.settings.home)]) == 0
    out = capsys.readouterr().out
    assert out.count(f"[1] {GROK_TITLE}") == 2


RNN_TITLE = "Investigating Sparsity in Recurrent Neural Networks"
PTR_TITLE = "Pointer Networks"


def test_a_new_topic_in_a_follow_up_is_not_anchored_to_the_previous_paper(sample_engine: Any) -> None:
    """Three turns: two about the RNN-sparsity paper, then a new subject introduced with a pronoun after it."""
    chat = ChatSession(sample_engine)
    first = chat.ask("Which paper investigates sparsity in recurrent neural networks?")
    assert first.sources[0].title == RNN_TITLE
    second = chat.ask("What does it say about pruning?")
    assert RNN_TITLE in chat.history[-1].standalone and second.sources[0].title == RNN_TITLE
    third = chat.ask("And what about pointer networks, what problem do they solve?")
    assert chat.history[-1].standalone == "And what about pointer networks, what problem do they solve?"
    assert third.sources[0].title == PTR_TITLE and third.citations[0].title == PTR_TITLE
    assert "sparsity" not in third.answer.split(".")[0].lower()


@pytest.mark.parametrize("follow_up, anchored", [
    ("And what about pointer networks, what problem do they solve?", False),
    ("What are its limitations compared to pointer networks?", True),
    ("what about its limitations?", True),
    ("Does it also say something about sparsity?", True),
])
def test_new_topic_is_told_from_a_follow_up(follow_up: str, anchored: bool) -> None:
    out = heuristic_rewrite(follow_up, [_turn("grokking?", GROK_TITLE)])
    assert (GROK_TITLE in out) is anchored
