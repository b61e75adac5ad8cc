"""Opening the Collection the settings name, with every library we use kept off the network."""

from __future__ import annotations

import os
from typing import Any

from ingest.collection import ENGINES, Collection, EmbedSpec
from rag.backend_config import embed_key
from rag.settings import Settings


def offline_env() -> None:
    """Make every library we use stay off the network by default."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # see ingest/onnx_runtime.py
    from ingest.chunking import _tiktoken_cache

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", _tiktoken_cache())


def collection_of(settings: Settings, embed: Any = None) -> Collection:
    """The Collection the settings name (home, collection, chroma_url, embedding model)."""
    spec = EmbedSpec(settings.embed_base_url, settings.embed_model, embed_key(settings), settings.embed_precision,
                     settings.cache_path)  # the embedding key, never the LLM key
    col = Collection(settings.home, settings.collection, settings.chroma_url, spec,
                     lexical_engine=ENGINES[settings.lexical_engine], sentence_evidence=settings.sentence_evidence)
    if embed is not None:
        col._embed = embed  # an already loaded model (tests, benchmarks)
    return col
