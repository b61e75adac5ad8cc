"""All paperchat settings in one typed object; every field is also an env var PAPERCHAT_<NAME>."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

OPENAI_BASE_URL = "https://api.openai.com/v1"


class Settings(BaseSettings):
    """paperchat configuration (env vars `PAPERCHAT_*`, or keyword arguments)."""

    model_config = SettingsConfigDict(env_prefix="PAPERCHAT_", extra="forbid", validate_assignment=True)

    home: Path = Field(Path(".paperchat"), description="Data directory: Chroma, BM25 index, embedding cache.")
    collection: str = Field("papers", description="Chroma collection name.")
    chroma_url: str | None = Field(None, description="URL of a `chroma run` server; unset = embedded Chroma under home.")
    cache_dir: Path | None = Field(None, description="Embedding cache directory (default: home/cache).")

    embed_base_url: str | None = Field(None, description="OpenAI-protocol /v1/embeddings server (vLLM, TEI, Infinity); unset = the bundled MiniLM.")
    embed_api_key: SecretStr | None = Field(None, description="Key for embed_base_url (never the LLM key).")
    embed_model: str = Field("all-MiniLM-L6-v2", description="Embedding model name sent to embed_base_url.")
    embed_precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="Local model precision for ingest (auto: bf16 where the CPU has native bf16, e.g. "
        "AVX512-BF16/AMX, else int8 through onnxruntime).")

    max_question_chars: int = Field(2000, ge=100, description="Longest question the UI and its /chat API accept (the Python API retrieves with this prefix).")
    max_turns: int = Field(50, ge=1, description="Turns a chat session keeps in memory.")
    top_k: int = Field(5, ge=1, le=100, description="Papers passed to the answerer.")
    candidates: int = Field(100, ge=10, le=1000, description="Candidates each retriever returns before fusion.")
    fusion: Literal["rrf", "score"] = Field("score", description="How dense and BM25 rankings are combined (score: min-max normalised weighted sum; best on SciFact train).")
    sentence_evidence: bool = Field(
        False, description="Rank a paper by its best sentence or chunk (MaxP): ingest also stores each sentence's "
        "vector, pooled from its chunk's forward pass (no extra model runs), and retrieval rescores the fused "
        "candidates with them. Off by default until it is measured on the full SciFact train set (README); "
        "collections written without them fall back to chunks (`paperchat doctor` says so).")
    sentence_rescore: int = Field(
        0, ge=0, le=100, description="Papers at the head of the fused ranking rescored by their best sentence "
        "(MaxP), embedded at question time and cached: SciFact train nDCG@10 0.737 -> 0.747 at 5, 0.749 at 10, "
        "for ~0.2 s (5) or ~0.5 s (10) more the first time a question's papers are met, and PubMedQA-dev hit@1 "
        "0.986 -> 0.978 (README). 0 = off, the default.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in fusion.")
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in fusion.")
    lexical_engine: Literal["sqlite", "bm25s"] = Field(
        "sqlite", description="BM25 engine: 'sqlite' (incremental: adding N papers costs time ~ N) or 'bm25s' "
                              "(rebuilt in full after each ingest). Same tokens and scores.")
    min_relevance: float = Field(0.25, description="Abstain unless a retrieved paper has a dense cosine of at least "
                                 "this and dense + 0.3 x term coverage >= 0.59, or one paper stands out (rag/relevance.py).")
    reranker: Literal["none", "cross-encoder", "llm"] = Field("none", description="Rerank step after fusion.")
    reranker_path: Path | None = Field(None, description="Local path of a sentence-transformers CrossEncoder.")

    llm: Literal["extractive", "openai", "gguf"] = Field(
        "extractive", description="Answer backend (unset: gguf when llm_gguf is set, openai when llm_base_url is).")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible base URL (vLLM, Ollama, llama.cpp).")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the OpenAI-protocol server "
                           "(left at the default with a base URL: the server's first listed model).")
    llm_api_key: SecretStr | None = Field(None, description="API key, sent only to the base URL it was configured "
                                          "with (OPENAI_API_KEY is used for the OpenAI API only).")
    llm_api_key_url: str | None = Field(None, description="The base URL llm_api_key belongs to (default: llm_base_url "
                                        "when the key is set, else the OpenAI API).")
    llm_gguf: Path | None = Field(None, description="GGUF model file for the local llama.cpp backend.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before an LLM request is abandoned.")
    llm_retries: int = Field(2, ge=0, le=10, description="Retries after a failed LLM request.")
    llm_temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    llm_max_tokens: int = Field(512, ge=16, description="Most tokens in an answer.")
    llm_context: int = Field(4096, ge=512, description="Model context window in tokens (sources are fitted to it).")
    llm_threads: int = Field(2, ge=1, le=256, description="CPU threads of the local llama.cpp server (GGUF backend); "
                             "1 per server keeps a loaded machine from stalling its threads at each step.")
    llm_structured: bool = Field(
        False, description="Ask the LLM server for JSON whose every sentence cites source numbers from the valid set "
        "(response_format json_schema: llama.cpp, OpenAI, vLLM, Ollama); a server that rejects it gets free text.")
    evidence_tokens: int = Field(
        300, ge=0, description="Per-source budget (tiktoken cl100k) of the evidence sent to an LLM: the title plus "
        "the sentences most relevant to the question; the whole abstract when it fits. 0 = whole abstracts.")
    evidence_ratio: float = Field(
        0.75, ge=0, le=1, description="Sources shown to an LLM: the top one and those whose retrieval score is at "
        "least this share of the best (the extractive answerer's rule); 0 = all top_k sources.")
    unsupported: Literal["mark", "remove"] = Field(
        "mark", description="What happens to a sentence of a written answer that no shown source supports: "
        "mark it (kept, shown as not found in the sources) or remove it.")

    def __init__(self, **values: Any) -> None:
        check_env()
        super().__init__(**values)

    @model_validator(mode="after")
    def _implied_backend(self) -> Settings:
        """Setting only a GGUF path or a base URL is enough to pick the backend."""
        if "llm" not in self.model_fields_set and self.llm == "extractive":
            implied = "gguf" if self.llm_gguf else "openai" if self.llm_base_url else None
            if implied:
                object.__setattr__(self, "llm", implied)
        if self.llm_api_key is not None and self.llm_api_key_url is None:  # the key belongs to this URL
            object.__setattr__(self, "llm_api_key_url", self.llm_base_url or OPENAI_BASE_URL)
        return self

    @property
    def cache_path(self) -> Path:
        return (self.cache_dir or self.home / "cache") / "embeddings.sqlite"

    def redacted(self) -> dict[str, object]:
        """Settings as a JSON-able dict with secrets masked."""
        out = self.model_dump(mode="json")
        if self.llm_api_key is not None:
            out["llm_api_key"] = "***"
        if self.embed_api_key is not None:
            out["embed_api_key"] = "***"
        return out


# PAPERCHAT_* variables that are not settings fields but are read elsewhere on purpose.
EXTRA_ENV = ("PAPERCHAT_AUTH",)  # ui/auth.py: user:password for a non-loopback serve
EXTRA_ENV_PREFIXES = ("PAPERCHAT_TEST_",)  # test-suite knobs (seed, network log)


def known_env() -> list[str]:
    """Every PAPERCHAT_* variable paperchat reads."""
    return sorted([f"PAPERCHAT_{name.upper()}" for name in Settings.model_fields] + list(EXTRA_ENV))


def check_env(environ: dict[str, str] | None = None) -> None:
    """Raise ValueError for a PAPERCHAT_* variable that nothing reads (a typo would otherwise be ignored)."""
    env = os.environ if environ is None else environ
    known = set(known_env())
    unknown = sorted(k for k in env if k.upper().startswith("PAPERCHAT_") and k.upper() not in known
                     and not k.upper().startswith(EXTRA_ENV_PREFIXES))
    if unknown:
        raise ValueError(f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"valid: {', '.join(known_env())} (and PAPERCHAT_TEST_* in the test suite)")


def validated(settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    """Settings with `overrides` applied and validated (a plain model_copy(update=) would skip validation)."""
    if settings is None:
        return Settings(**overrides)
    if not overrides:
        return settings
    return Settings(**{**settings.model_dump(), **overrides})
