"""A conversation: history kept, follow-ups rewritten into standalone questions before retrieval."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.text import terms
from rag.types import Answer

_ANAPHORA = re.compile(r"\b(it|its|they|them|their|this|that|these|those|the paper|the authors|same|above|former|latter)\b", re.I)


@dataclass
class Turn:
    question: str
    standalone: str
    answer: Answer


def heuristic_rewrite(question: str, history: list[Turn]) -> str:
    """Make a follow-up standalone by naming what it refers to (the last turn's top cited paper)."""
    if not history:
        return question
    last = history[-1]
    refers = bool(_ANAPHORA.search(question)) or len(terms(question)) <= 2
    if not refers:
        return question
    if last.answer.citations:
        topic = last.answer.citations[0].title
    else:
        topic = last.standalone
    return f"{question.rstrip('?')} ({topic})?"


@dataclass
class ChatSession:
    """Multi-turn chat over a Paperchat engine."""

    engine: Any
    k: int | None = None
    filters: Any = None
    history: list[Turn] = field(default_factory=list)

    def standalone(self, question: str) -> str:
        """The question rewritten for retrieval (LLM rewrite when the backend offers one)."""
        rewrite = getattr(self.engine.answerer(), "rewrite", None)
        if rewrite and self.history:
            try:
                return str(rewrite(question, [(t.question, t.answer.answer) for t in self.history[-3:]]))
            except Exception:  # a failing LLM must not end the chat: fall back to the heuristic
                pass
        return heuristic_rewrite(question, self.history)

    def ask_stream(self, question: str) -> Iterator[str | Answer]:
        """Stream a turn: text deltas, then the final Answer (whose .question is the user's wording)."""
        sq = self.standalone(question)
        for ev in self.engine.ask_stream(sq, self.k, self.filters):
            if isinstance(ev, Answer):
                ev.question = question
                self.history.append(Turn(question, sq, ev))
                keep = int(getattr(getattr(self.engine, "settings", None), "max_turns", 50))
                del self.history[:-keep]  # bounded memory per session
            yield ev

    def ask(self, question: str) -> Answer:
        final = None
        for ev in self.ask_stream(question):
            if isinstance(ev, Answer):
                final = ev
        assert final is not None
        return final
