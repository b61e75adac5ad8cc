"""Embeddings from any OpenAI-protocol `/v1/embeddings` server (vLLM, TEI, Infinity, OpenAI), batched, retried
by the openai client itself (ingest/openai_retry.py: backoff, Retry-After honoured up to a cap)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr

from ingest.embeddings import CachedEmbedding, EmbeddingCache


class RemoteEmbedding(CachedEmbedding):
    """OpenAI-protocol embeddings, normalised, cached by content hash like the local model."""

    base_url: str = ""
    batch_size: int = 128
    retries: int = 3
    timeout: float = 60.0
    _client: Any = PrivateAttr(default=None)
    _dim: int | None = PrivateAttr(default=None)

    def __init__(self, base_url: str, model_name: str, api_key: str | None = None,
                 cache_path: Path | None = None, **kw: Any) -> None:
        super().__init__(base_url=base_url, model_name=model_name, embed_batch_size=kw.pop("embed_batch_size", 512), **kw)
        from ingest.openai_retry import openai_client

        self._client = openai_client(base_url, api_key or "not-needed", self.timeout, self.retries)
        if cache_path is not None:
            self._cache = EmbeddingCache(cache_path, f"remote:{model_name}")

    @classmethod
    def class_name(cls) -> str:
        return "PaperchatRemoteEmbedding"

    @property
    def dim(self) -> int:
        """Vector size, probed once from the server."""
        if self._dim is None:
            self._dim = len(self._encode(["dimension probe"])[0])
        return self._dim

    def window_tokens(self, text: str) -> int:
        """Remote models have their own windows; chunking keeps to the tiktoken budget only."""
        return 0

    def _call(self, batch: list[str]) -> list[list[float]]:
        import openai

        try:  # the client retries (connection errors, timeouts, 429, 5xx) with backoff and Retry-After
            resp = self._client.with_options(max_retries=self.retries).embeddings.create(
                model=self.model_name, input=batch)
        except openai.APIError as exc:
            raise RuntimeError(f"embedding server {self.base_url} failed: {type(exc).__name__}") from None
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]

    def _encode(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            vecs = np.asarray(self._call(texts[i:i + self.batch_size]), dtype=np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True) + 1e-12
            out.extend(vecs.tolist())
        return out
