"""Pick the answer backend named by the settings."""

from __future__ import annotations

from typing import Any

from rag.answerers.base import Answerer
from rag.settings import Settings


def make_answerer(settings: Settings, embed: Any) -> Answerer:
    """The extractive, OpenAI-protocol or local GGUF answerer.

    Never raises for a bad LLM configuration (missing key, missing model file, server down): those
    surface as AnswererError when answering, so the engine falls back to the extractive answer with a notice.
    """
    if settings.llm == "extractive":
        from rag.answerers.extractive import ExtractiveAnswerer

        return ExtractiveAnswerer(embed)
    if settings.llm == "gguf":
        from rag.answerers.gguf import GGUFAnswerer

        return GGUFAnswerer(settings, embed)
    from rag.answerers.openai_compat import OpenAIAnswerer

    return OpenAIAnswerer(settings, embed=embed)
