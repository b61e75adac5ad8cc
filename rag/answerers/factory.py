"""Pick the answer backend named by the settings."""

from __future__ import annotations

from typing import Any

from rag.answerers.base import Answerer
from rag.settings import Settings


def make_answerer(settings: Settings, embed: Any) -> Answerer:
    """The extractive, OpenAI-protocol or local GGUF answerer."""
    if settings.llm == "extractive":
        from rag.answerers.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(embed)
    from rag.answerers.openai_compat import OpenAIAnswerer

    if settings.llm == "gguf":
        from rag.answerers.gguf import start_gguf_server

        base_url = start_gguf_server(settings)
        return OpenAIAnswerer(settings, base_url=base_url, name="gguf")
    return OpenAIAnswerer(settings)
