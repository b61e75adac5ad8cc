"""Which API key may go to which server, and how backend settings change.

Rules (issue 17):
    * The LLM key (`llm_api_key`) belongs to the base URL it was configured with (`llm_api_key_url`,
      recorded when the key is set). It is sent to that URL only, and it is dropped when the URL changes
      without a new key: an empty key box never means "send the current key to this new URL".
    * `OPENAI_API_KEY` from the environment goes only to the OpenAI API (https://api.openai.com).
    * Embeddings have their own key (`embed_api_key`) and never receive the LLM key.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from rag.settings import OPENAI_BASE_URL, Settings

OPENAI_HOST = "api.openai.com"


def url_identity(url: str | None) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of a base URL, normalised; None means the OpenAI API."""
    parts = urlsplit((url or OPENAI_BASE_URL).strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a malformed port never matches anything
        port = -1
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def same_url(a: str | None, b: str | None) -> bool:
    """True when two base URLs name the same server and path (None = the OpenAI API)."""
    return url_identity(a) == url_identity(b)


def is_openai_api(url: str | None) -> bool:
    """True for the OpenAI API itself (https://api.openai.com/...), or None (the client's default)."""
    scheme, host, _, _ = url_identity(url)
    return scheme == "https" and host == OPENAI_HOST


def llm_key(settings: Settings, url: str | None) -> str | None:
    """The key that may be sent to the LLM server at `url` (None = the OpenAI API), or None.

    The configured key only to the URL it was configured with; OPENAI_API_KEY only to the OpenAI API."""
    if settings.llm_api_key is not None and same_url(url, settings.llm_api_key_url):
        return settings.llm_api_key.get_secret_value() or None
    if is_openai_api(url):
        return os.environ.get("OPENAI_API_KEY") or None
    return None


def embed_key(settings: Settings) -> str | None:
    """The key for the embedding server: `embed_api_key`, or OPENAI_API_KEY for the OpenAI API; never the LLM key."""
    if settings.embed_api_key is not None:
        return settings.embed_api_key.get_secret_value() or None
    if settings.embed_base_url and is_openai_api(settings.embed_base_url):
        return os.environ.get("OPENAI_API_KEY") or None
    return None


def secrets(settings: Settings) -> list[str]:
    """Every key a message about this backend must never contain (for redaction)."""
    keys = [settings.llm_api_key, settings.embed_api_key]
    out = [k.get_secret_value() for k in keys if k is not None]
    out.append(os.environ.get("OPENAI_API_KEY") or "")
    return [k for k in out if len(k) >= 4]


def with_llm_fields(settings: Settings, fields: dict[str, Any]) -> Settings:
    """`settings` with these `llm*` fields changed, the key rule applied.

    A new key is bound to the (new) base URL. Without a new key, a changed base URL drops the current key."""
    bad = sorted(k for k in fields if not k.startswith("llm") or k == "llm_api_key_url")
    if bad:
        raise ValueError(f"not an LLM setting: {', '.join(bad)}")
    data = {**settings.model_dump(), **fields}
    if fields.get("llm_api_key"):
        data["llm_api_key_url"] = data.get("llm_base_url") or OPENAI_BASE_URL
    elif same_url(data.get("llm_base_url"), settings.llm_base_url):
        data["llm_api_key"] = settings.llm_api_key  # an empty key box keeps the key for the same URL only
    else:
        data["llm_api_key"] = data["llm_api_key_url"] = None
    return Settings(**data)
