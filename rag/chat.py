"""A conversation: history kept, follow-ups rewritten into standalone questions before retrieval."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rag.text import terms
from rag.types import Answer, Evidence

_ANAPHORA = re.compile(r"\b(it|its|they|them|their|this|that|these|those|the paper|the authors|same|above|former|latter)\b", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*")
# words a follow-up uses about the paper under discussion; they never name a new subject
_FOLLOW_UP = frozenset(terms(
    "limitation limitations problem problems solve solves result results method methods approach work works mean "
    "means detail details example examples difference differences compare comparison advantage advantages "
    "disadvantage disadvantages drawback drawbacks benefit benefits find finds found finding findings say says said "
    "tell more else also other future idea ideas main key contribution contributions performance dataset datasets "
    "experiment experiments evaluation conclusion conclusions propose proposes proposed author authors paper "
    "something anything explain explained describe described mention mentioned address addressed"))


def new_topic(question: str, history: list[Turn]) -> bool:
    """True when a follow-up names a subject of its own before any pronoun, so the pronoun refers to it.

    "And what about pointer networks, what problem do they solve?" after turns about another paper: "pointer"
    occurs nowhere in the last turn (question, answer, cited abstracts) and comes before "they", so the
    question is not anchored to the previous paper. "What are its limitations compared to LSTMs?" is
    anchored: its pronoun comes first.
    """
    if not history:
        return True
    if len(terms(question)) <= 2:
        return False  # elliptical ("and robustness?", "more?"): about the paper under discussion
    last = history[-1]
    cited = last.answer.sources[:len(last.answer.citations)]
    known = set(terms(" ".join([last.question, last.standalone, last.answer.answer,
                                *(f"{s.title} {s.text}" for s in cited)])))
    pronoun = _ANAPHORA.search(question)
    for m in _TOKEN.finditer(question):
        if pronoun is not None and m.start() >= pronoun.start():
            return False
        if any(t not in known and t not in _FOLLOW_UP and len(t) > 2 for t in terms(m.group(0))):
            return True
    return False


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
    if not refers or new_topic(question, history):
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
        if not self.history or new_topic(question, self.history):
            return question  # a new subject: anchoring it to the previous paper would retrieve that paper
        rewrite = getattr(self.engine.answerer(), "rewrite", None)
        if rewrite:
            try:
                return str(rewrite(question, [(t.question, t.answer.answer) for t in self.history[-3:]]))
            except Exception:  # a failing LLM must not end the chat: fall back to the heuristic
                pass
        return heuristic_rewrite(question, self.history)

    def ask_stream(self, question: str) -> Iterator[str | Evidence | Answer]:
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
