"""LLM-judged faithfulness: is each answer sentence supported by the sources it cites?

Used only when an LLM backend is configured (settings.llm != "extractive"). The judge talks the
OpenAI chat-completions protocol to the same server the answerer uses (an OpenAI-compatible URL, or the
llama.cpp server the GGUF answerer started), so it needs no API of its own from `rag/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from eval.qa_metrics import claims
from rag.backend_config import llm_key
from rag.settings import Settings

JUDGE_PROMPT = """You check whether a claim is supported by source passages.

Sources:
{sources}

Claim: {claim}

Is every statement in the claim supported by the sources above? Reply with one word: yes or no."""

_YES = re.compile(r"^\W*(yes|supported|true)\b", re.I)
_NO = re.compile(r"^\W*(no|not|unsupported|false)\b", re.I)


Complete = Callable[[list[dict[str, str]], int], str]  # (chat messages, max tokens) -> reply text


class LLMJudge:
    """Asks a chat model, claim by claim, whether the cited sources support it.

    Args:
        complete: sends chat messages and returns the reply text, e.g. the answerer's own `complete`
            method (its client, retries and key redaction) or `openai_complete(client, model)`.
        name: what the report says the judge was (backend:model@url).
    """

    def __init__(self, complete: Complete, name: str, max_chars: int = 6000) -> None:
        self.complete = complete
        self.name = name
        self.max_chars = max_chars
        self.errors = 0
        self.calls = 0

    def supported(self, claim: str, sources: list[str]) -> bool | None:
        """True/False from the model; None when the call failed or the reply was not yes/no."""
        body = "\n\n".join(f"[{i}] {t}" for i, t in enumerate(sources, start=1))[: self.max_chars]
        self.calls += 1
        try:
            text = self.complete([{"role": "user", "content": JUDGE_PROMPT.format(sources=body, claim=claim)}], 4)
        except Exception:  # noqa: BLE001 - a judge failure must not end the evaluation run
            self.errors += 1
            return None
        text = (text or "").strip()
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


def openai_complete(client: Any, model: str) -> Complete:
    """A `complete` function over an openai.OpenAI client (temperature 0)."""

    def complete(messages: list[dict[str, str]], max_tokens: int) -> str:
        resp = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=max_tokens)
        return resp.choices[0].message.content or ""

    return complete


def _where(url: str | None) -> str:
    if not url:
        return "api.openai.com"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"  # no credentials


def make_judge(settings: Settings, answerer: Any = None) -> LLMJudge | None:
    """An LLM judge for the configured backend, or None for the extractive backend or when none can be built.

    Duck-typed on the answerer: one with a `complete(messages, max_tokens)` method (the OpenAI-protocol and
    GGUF answerers) is reused as is; otherwise an openai client is built from the settings
    (`llm_base_url`, and the key rag.backend_config.llm_key allows for that URL).
    """
    if settings.llm == "extractive":
        return None
    model = str(getattr(answerer, "model", None) or settings.llm_model)
    url = getattr(answerer, "base_url", None)
    if callable(getattr(answerer, "complete", None)):
        try:
            url = url() if callable(url) else url  # the GGUF answerer starts its server here
        except Exception:  # noqa: BLE001 - no server, no judge
            return None
        return LLMJudge(lambda m, n: answerer.complete(m, max_tokens=n), f"{getattr(answerer, 'name', settings.llm)}:"
                        f"{model}@{_where(url or settings.llm_base_url)}")
    base_url = (url() if callable(url) else url) or settings.llm_base_url
    key = llm_key(settings, str(base_url) if base_url else None)  # the same key rule as the answerer
    if (settings.llm == "gguf" and not base_url) or (not base_url and not key):
        return None
    try:
        from openai import OpenAI
    except ImportError:
        return None
    client = OpenAI(base_url=str(base_url) if base_url else None, api_key=key or "not-needed",
                    timeout=settings.llm_timeout, max_retries=settings.llm_retries)
    return LLMJudge(openai_complete(client, model), name=f"{settings.llm}:{model}@{_where(base_url)}")
