"""One loaded embedding model for the whole test session (loading it costs seconds on a busy CPU)."""

from __future__ import annotations

import functools
from pathlib import Path

from ingest.embeddings import LocalEmbedding


@functools.lru_cache(maxsize=None)
def embedding_model(cache_dir: Path) -> LocalEmbedding:
    """The bundled MiniLM with the session's embedding cache; shared by tests that only test the index.

    Loaded here (torch import and weights, ~4 s of CPU): mostly inside a module fixture, so in the test
    that gets tests/conftest.py's BUILD_TIMEOUT rather than in whichever test first embeds."""
    emb = LocalEmbedding(cache_path=cache_dir / "embeddings.sqlite")
    emb._model()
    return emb
