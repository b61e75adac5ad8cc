"""The one retry policy for OpenAI-protocol calls (embeddings, LLM answers, the judge): the openai client's own.

The client retries connection errors, timeouts, 408/409/429/5xx with exponential backoff and honours a
server's `Retry-After` (seconds, HTTP date or `retry-after-ms`). One thing is added, through a public
httpx response hook: when the server asks for a longer wait than `max_wait`, the response is marked
`x-should-retry: false` (a header the client obeys), so the caller fails at once and can fall back
instead of hanging on a long wait.
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


def openai_client(base_url: str | None, api_key: str, timeout: float | httpx.Timeout, retries: int,
                  max_wait: float = 10.0) -> Any:
    """An `openai.OpenAI` whose built-in retries are the whole retry policy (see the module docstring)."""
    import openai

    http = httpx.Client(timeout=timeout, event_hooks={"response": [capped_retry_hook(max_wait)]})
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=retries, http_client=http)
