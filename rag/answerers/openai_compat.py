"""Answers from any OpenAI-protocol server: the OpenAI API, vLLM, Ollama, LM Studio, llama.cpp server.

Retries are the openai client's own (ingest/openai_retry.py: `llm_retries` attempts more with exponential
backoff, `Retry-After` honoured; a Retry-After over `max_wait` and a timeout are not retried, so the answer
falls back at once). The only retry written here is for a stream cut before its first token. Failures are
raised as `AnswererError`, on which the engine falls back to the extractive answer with a notice.
Error messages are written by this module, never copied from the server or the client library, and any
occurrence of the API key is masked, so the key cannot reach a log line, an exception or a notice.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai

from ingest.openai_retry import TIMEOUT_HEADER, openai_client, retry_after_seconds
from rag import backend_config, prompts
from rag.answerers import structured as structured_output
from rag.answerers.base import AnswererError
from rag.evidence import compress, select
from rag.settings import Settings
from rag.types import Source

log = logging.getLogger("paperchat.llm")
T = TypeVar("T")

NO_KEY = "sk-no-key-required"  # local servers ignore the key, but the openai client wants one
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


def safe_url(url: str | None) -> str:
    """A URL without user:password@ credentials or query string, for messages."""
    if not url:
        return "https://api.openai.com/v1"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


__all__ = ["OpenAIAnswerer", "retry_after_seconds", "safe_url"]


class _Retryable(Exception):
    """A stream cut before its first token: worth another attempt; `message` is safe to show."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait


class _StructuredRejected(AnswererError):
    """The server refused `response_format` (HTTP 400/422) before producing anything."""


class OpenAIAnswerer:
    """Streams answers from an OpenAI-protocol chat-completions endpoint.

    Args:
        settings: model, base URL, API key, temperature, max tokens, timeout, retries, context window.
        base_url: overrides `settings.llm_base_url` (the GGUF backend passes its local server here).
        name: backend name reported in answers ("openai", "gguf").

    Example:
        >>> a = OpenAIAnswerer(Settings(llm="openai", llm_base_url="http://127.0.0.1:11434/v1",
        ...                             llm_model="qwen2.5:0.5b"))   # doctest: +SKIP
        >>> "".join(a.stream("What is grokking?", sources))            # doctest: +SKIP
        'Grokking is delayed generalization [1].'
    """

    backoff_base = 0.5  # seconds before re-asking after a stream cut before its first token; doubles, with jitter
    max_wait = 10.0  # a server's Retry-After above this is not waited for: fall back at once

    def __init__(self, settings: Settings, base_url: str | None = None, name: str = "openai",
                 model: str | None = None, sleep: Callable[[float], None] = time.sleep, embed: Any = None) -> None:
        self.settings = settings
        self.embed = embed  # ranks source sentences for compressed evidence (term overlap alone when None)
        self._fitted: tuple[Any, tuple[list[dict[str, str]], list[Source]]] | None = None
        self.name = name
        self.model = model or settings.llm_model
        # the default model name means "whatever the server serves" when talking to a server by URL
        self._detect_model = model is None and settings.llm_model == Settings.model_fields["llm_model"].default
        self._base_url = base_url
        self._client_obj: openai.OpenAI | None = None
        self._sleep = sleep
        self._secrets = backend_config.secrets(settings)  # masked in every message, whichever is in use

    # --- connection ------------------------------------------------------------------
    def base_url(self) -> str | None:
        """The server's base URL (None = the OpenAI API)."""
        return self._base_url or self.settings.llm_base_url

    def _client(self) -> openai.OpenAI:
        if self._client_obj is None:
            url = self.base_url()
            key = backend_config.llm_key(self.settings, url)  # only the key that belongs to this URL
            if not key and not url:
                raise AnswererError("no API key: set PAPERCHAT_LLM_API_KEY or OPENAI_API_KEY, "
                                    "or PAPERCHAT_LLM_BASE_URL for a local server")
            t = self.settings.llm_timeout
            self._client_obj = openai_client(url, key or NO_KEY, httpx.Timeout(t, connect=min(t, 10.0)),
                                             retries=self.settings.llm_retries, max_wait=self.max_wait,
                                             retry_timeouts=False)
        return self._client_obj

    def _resolve_model(self, client: openai.OpenAI) -> str:
        """The configured model, or with a base URL and the default name, the server's first listed model."""
        if self._detect_model and self.base_url():
            self._detect_model = False
            try:
                served = [m.id for m in client.with_options(timeout=min(5.0, self.settings.llm_timeout)).models.list()]
            except Exception:  # noqa: BLE001 - not every server lists models; the request below reports real errors
                served = []
            if served and self.model not in served:
                log.info("using the server's model %s", served[0])
                self.model = served[0]
        return self.model

    def _redact(self, text: str) -> str:
        for key in self._secrets:
            text = text.replace(key, "***")
        return text

    def _describe(self, exc: BaseException) -> tuple[str, bool, float | None]:
        """(safe message, retryable, retry-after) for a failure; never includes server text."""
        where = safe_url(self.base_url())
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return f"no response from {where} within {self.settings.llm_timeout:g} s", False, None
        if isinstance(exc, openai.APIStatusError) and exc.response is not None \
                and exc.response.headers.get(TIMEOUT_HEADER):
            return f"no response from {where} within {self.settings.llm_timeout:g} s", False, None
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            hint = {401: " (check the API key)", 403: " (access denied)", 404: " (check the model name and base URL)"}
            wait = retry_after_seconds(exc.response.headers if exc.response is not None else None)
            return f"HTTP {status} from {where}{hint.get(status, '')}", status in RETRY_STATUS, wait
        if isinstance(exc, (openai.APIConnectionError, httpx.ConnectError)):
            return f"could not connect to {where}", True, None
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.NetworkError)):
            return f"connection to {where} closed mid-answer", True, None
        if isinstance(exc, (json.JSONDecodeError, openai.APIResponseValidationError)):
            return f"malformed response from {where}", True, None
        if isinstance(exc, openai.APIError):  # e.g. an error event inside the stream
            return f"the server at {where} reported an error", True, None
        return f"{type(exc).__name__} talking to {where}", False, None

    def _with_retries(self, attempt: Callable[[], Iterator[T]], what: str) -> Iterator[T]:
        """Run `attempt`; the client has already retried the request itself. Only a stream cut before its
        first token (`_Retryable`) is asked again here, up to `llm_retries` times."""
        retries = self.settings.llm_retries
        produced = False
        for i in range(retries + 1):
            try:
                for item in attempt():
                    produced = True
                    yield item
                return
            except AnswererError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a safe AnswererError
                # raw httpx errors come from reading the stream (the client wraps its own request's errors)
                cut = isinstance(exc, _Retryable) or (isinstance(exc, httpx.TransportError)
                                                      and not isinstance(exc, httpx.TimeoutException))
                if isinstance(exc, _Retryable):
                    msg, retryable, wait = exc.message, True, exc.wait
                else:
                    msg, retryable, wait = self._describe(exc)
                msg = self._redact(msg)
                if produced:
                    log.warning("%s: %s after part of the answer; giving up", what, msg)
                    raise AnswererError(f"{msg}; the answer was cut off") from None
                client_retried = isinstance(exc, (openai.APIStatusError, openai.APIConnectionError))
                if not cut:  # the client's own retries are spent, or the failure is not worth another try
                    retryable = retryable and client_retried
                    capped = wait is not None and wait > self.max_wait
                    tried = retries + 1 if retryable and not capped else 1
                    if capped:
                        msg += f" (asked to wait {wait:g} s; not waiting over {self.max_wait:g} s)"
                    log.warning("%s failed: %s (%d attempts)", what, msg, tried)
                    raise AnswererError(msg if tried == 1 else f"{msg} after {tried} attempts") from None
                if i == retries:
                    log.warning("%s failed: %s (attempt %d of %d)", what, msg, i + 1, retries + 1)
                    raise AnswererError(msg if i == 0 else f"{msg} after {i + 1} attempts") from None
                delay = self.backoff_base * (2 ** i) * (0.8 + 0.4 * random.random())
                log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", what, msg, delay, i + 1, retries + 1)
                self._sleep(delay)

    # --- answering ---------------------------------------------------------------------
    def structured(self) -> bool:
        """Whether answers are asked for as schema-constrained JSON (setting on, server has not rejected it)."""
        return self.settings.llm_structured and not structured_output.is_rejected(self._server_key())

    def _server_key(self) -> str:
        return str(self._base_url or self.settings.llm_base_url or self.settings.llm_gguf or "openai")

    def fit(self, question: str, sources: list[Source]) -> tuple[list[dict[str, str]], list[Source]]:
        """The chat messages for a question and the sources they show the model (compressed evidence,
        fitted to the context window); the last result is remembered, so `shown` after `stream` is free."""
        structured = self.structured()
        key = (question, structured, tuple((s.n, s.paper_id, len(s.text)) for s in sources))
        if self._fitted is None or self._fitted[0] != key:
            chosen = select(sources, self.settings.evidence_ratio)
            evidence = compress(question, chosen, self.embed, self.settings.evidence_tokens)
            self._fitted = (key, prompts.answer_messages(question, evidence, self.settings.llm_context,
                                                         self.settings.llm_max_tokens, structured=structured))
        return self._fitted[1]

    def messages(self, question: str, sources: list[Source]) -> list[dict[str, str]]:
        """The chat messages sent for a question (sources compressed and fitted to the context window)."""
        return self.fit(question, sources)[0]

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        """The sources that fit in the model's context window (the lowest-ranked are left out first)."""
        return self.fit(question, sources)[1]

    def extra_body(self) -> dict[str, Any] | None:
        """Server-specific request fields (none for a generic OpenAI-protocol server)."""
        return None

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        """Yield text deltas of a cited answer; raise AnswererError after bounded retries.

        With `llm_structured`, the server is asked for the JSON schema of rag/answerers/structured.py and
        the JSON is rendered back to text as it streams; a server that rejects the schema is asked again
        in free text, and remembered."""
        if self.structured():
            try:
                yield from self._stream(question, sources, structured=True)
                return
            except _StructuredRejected:
                structured_output.remember_rejected(self._server_key())
                log.warning("%s rejected structured output (response_format); using free text from now on",
                            safe_url(self.base_url()))
        yield from self._stream(question, sources, structured=False)

    def _stream(self, question: str, sources: list[Source], structured: bool) -> Iterator[str]:
        msgs, shown = self.fit(question, sources)
        fmt: Any = structured_output.response_format([s.n for s in shown]) if structured else openai.omit

        def attempt() -> Iterator[str]:
            client = self._client()
            renderer = structured_output.StreamRenderer() if structured else None
            try:
                resp = client.chat.completions.create(
                    model=self._resolve_model(client), messages=cast(Any, msgs), stream=True,
                    temperature=self.settings.llm_temperature, max_tokens=self.settings.llm_max_tokens,
                    extra_body=self.extra_body(), response_format=fmt)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                if structured:
                    raise _StructuredRejected(f"HTTP {exc.status_code}") from None
                raise
            finished = False
            with resp:
                for chunk in resp:
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        out = renderer.feed(delta) if renderer else delta
                        if out:
                            yield out
                    if choice.finish_reason:
                        finished = True
            if not finished:  # the body ended without a finish_reason: the stream was cut
                raise _Retryable(f"connection to {safe_url(self.base_url())} closed mid-answer")
            if renderer:
                rest = renderer.finish()
                if rest:
                    yield rest

        yield from self._with_retries(attempt, f"{self.name} answer")

    def complete(self, messages: list[dict[str, str]], max_tokens: int = 128) -> str:
        """One non-streamed completion (used for rewriting follow-ups), with the same retries."""

        def attempt() -> Iterator[str]:
            client = self._client()
            resp = client.chat.completions.create(
                model=self._resolve_model(client), messages=cast(Any, messages), stream=False,
                temperature=0.0, max_tokens=max_tokens)
            if not resp.choices:
                raise _Retryable(f"malformed response from {safe_url(self.base_url())}")
            yield resp.choices[0].message.content or ""

        return "".join(self._with_retries(attempt, f"{self.name} completion"))

    def rewrite(self, question: str, history: list[tuple[str, str]]) -> str:
        """A follow-up rewritten into a standalone question, given (question, answer) pairs oldest first."""
        if not history:
            return question
        out = self.complete(prompts.rewrite_messages(question, history), max_tokens=96)
        return prompts.clean_rewrite(out, question)
