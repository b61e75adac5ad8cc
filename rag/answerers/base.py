"""The one interface every answer backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from rag.types import Source

NO_ANSWER = "The indexed papers do not answer this question."


class AnswererError(RuntimeError):
    """A backend failed (after its retries); the engine falls back to the extractive answerer."""


class Answerer(Protocol):
    """Backend interface: stream the text of an answer that cites sources as [n]."""

    name: str

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        """Yield text deltas of the answer; raise AnswererError on failure."""
        ...

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        """The sources the backend actually sees (only these may be cited)."""
        ...
