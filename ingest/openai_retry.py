"""The one retry policy for OpenAI-protocol calls (embeddings, LLM answers, the judge): the openai client's own.

The client retries connection errors, timeouts, 408/409/429/5xx with exponential backoff and honours a
server's `Retry-After` (seconds, HTTP date or `retry-after-ms`). Two things can be added, both through the
`x-should-retry: false` header the client obeys:
- a Retry-After longer than `max_wait` is not waited for: the caller fails at once and can fall back;
- `retry_timeouts=False`: a request that timed out is not sent again (an answer backend that hangs
  for `timeout` seconds should fall back after one timeout, not after `retries + 1` of them). The
  timeout becomes a 504 response marked `x-paperchat-timeout`.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds the server asked us to wait (`retry-after-ms`, `retry-after` as seconds or HTTP date)."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        ra = headers.get("retry-after")
        if ra is None:
            return None
        try:
            return max(0.0, float(ra))
        except ValueError:
            when = email.utils.parsedate_to_datetime(ra)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def capped_retry_hook(max_wait: float) -> Any:
    """An httpx response hook: a Retry-After above `max_wait` means "do not retry"."""
    def hook(response: httpx.Response) -> None:
        wait = retry_after_seconds(response.headers)
        if wait is not None and wait > max_wait:
            response.headers["x-should-retry"] = "false"
    return hook


TIMEOUT_HEADER = "x-paperchat-timeout"


class _TimeoutIsFinal(httpx.BaseTransport):
    """Turns a request timeout into a 504 the client does not retry."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.inner.handle_request(request)
        except httpx.TimeoutException:
            return httpx.Response(504, headers={"x-should-retry": "false", TIMEOUT_HEADER: "1"},
                                  content=b'{"error": {"message": "timed out"}}', request=request)

    def close(self) -> None:
        self.inner.close()


def openai_client(base_url: str | None, api_key: str, timeout: float | httpx.Timeout, retries: int,
                  max_wait: float = 10.0, retry_timeouts: bool = True) -> Any:
    """An `openai.OpenAI` whose built-in retries are the whole retry policy (see the module docstring)."""
    import openai

    transport: httpx.BaseTransport = httpx.HTTPTransport()
    if not retry_timeouts:
        transport = _TimeoutIsFinal(transport)
    http = httpx.Client(timeout=timeout, transport=transport, event_hooks={"response": [capped_retry_hook(max_wait)]})
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=retries, http_client=http)
