"""LLM-judged faithfulness: is each answer sentence supported by the sources it cites?

Used only when an LLM backend is configured (settings.llm != "extractive"). The judge talks the
OpenAI chat-completions protocol to the same server the answerer uses (an OpenAI-compatible URL, or the
llama.cpp server the GGUF answerer started), so it needs no API of its own from `rag/`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from eval.qa_metrics import claims
from rag.settings import Settings

JUDGE_PROMPT = """You check whether a claim is supported by source passages.

Sources:
{sources}

Claim: {claim}

Is every statement in the claim supported by the sources above? Reply with one word: yes or no."""

_YES = re.compile(r"^\W*(yes|supported|true)\b", re.I)
_NO = re.compile(r"^\W*(no|not|unsupported|false)\b", re.I)


class LLMJudge:
    """Asks a chat model, claim by claim, whether the cited sources support it."""

    def __init__(self, client: Any, model: str, name: str, max_chars: int = 6000) -> None:
        self.client = client
        self.model = model
        self.name = name
        self.max_chars = max_chars
        self.errors = 0
        self.calls = 0

    def supported(self, claim: str, sources: list[str]) -> bool | None:
        """True/False from the model; None when the call failed or the reply was not yes/no."""
        body = "\n\n".join(f"[{i}] {t}" for i, t in enumerate(sources, start=1))[: self.max_chars]
        self.calls += 1
        try:
            resp = self.client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=4,
                messages=[{"role": "user", "content": JUDGE_PROMPT.format(sources=body, claim=claim)}])
            text = (resp.choices[0].message.content or "").strip()
        except Exception:  # noqa: BLE001 - a judge failure must not end the evaluation run
            self.errors += 1
            return None
        if _YES.match(text):
            return True
        if _NO.match(text):
            return False
        self.errors += 1
        return None

    def faithfulness(self, answer: str, source_texts: Mapping[int, str], abstained: bool = False) -> float | None:
        """Share of judged answer sentences the model says are supported (uncited sentences: unsupported)."""
        if abstained:
            return None
        verdicts: list[bool] = []
        for text, nums in claims(answer):
            cited = [source_texts[n] for n in dict.fromkeys(nums) if n in source_texts]
            if not cited:
                verdicts.append(False)
                continue
            v = self.supported(text, cited)
            if v is not None:
                verdicts.append(v)
        return sum(verdicts) / len(verdicts) if verdicts else None


def make_judge(settings: Settings, answerer: Any = None) -> LLMJudge | None:
    """An LLM judge for the configured backend, or None for the extractive backend or when none can be built.

    The base URL is the answerer's own (`base_url` attribute, duck-typed: the GGUF answerer's local
    llama.cpp server) or `settings.llm_base_url`; the key is `settings.llm_api_key` or OPENAI_API_KEY.
    """
    if settings.llm == "extractive":
        return None
    try:
        from openai import OpenAI
    except ImportError:
        return None
    base_url = getattr(answerer, "base_url", None) or settings.llm_base_url
    if settings.llm == "gguf" and not base_url:
        return None
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else os.environ.get("OPENAI_API_KEY")
    if not base_url and not key:
        return None
    client = OpenAI(base_url=str(base_url) if base_url else None, api_key=key or "not-needed",
                    timeout=settings.llm_timeout, max_retries=settings.llm_retries)
    model = str(getattr(answerer, "model", None) or settings.llm_model)
    where = base_url or "api.openai.com"
    return LLMJudge(client, model, name=f"{settings.llm}:{model}@{where}")
