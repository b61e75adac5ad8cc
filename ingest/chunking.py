"""Token-aware, sentence-aligned chunking of abstracts into llama-index TextNodes."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.dedup import dedup_metadata
from ingest.records import Paper
from ingest.sentences import split_sentences

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

EMBED_WINDOW = 256  # MiniLM's wordpiece window; longer input is silently truncated
CHUNK_TOKENS = 240  # tiktoken budget per chunk (title excluded)


def _tiktoken_cache() -> str:
    """The BPE files shipped inside llama-index-core, found without importing it (that costs seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llama-index-core is not installed (its tiktoken cache is needed)")
    return str(Path(list(spec.submodule_search_locations)[0]) / "_static" / "tiktoken_cache")


@lru_cache(maxsize=1)
def tiktoken_encoder() -> Callable[[str], list[int]]:
    """cl100k_base encoder loaded from the BPE file that ships inside llama-index-core (no download)."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", _tiktoken_cache())
    import tiktoken

    enc = tiktoken.get_encoding("cl100k_base")
    return enc.encode_ordinary


def count_tokens(text: str) -> int:
    """Number of cl100k tokens in text."""
    return len(tiktoken_encoder()(text))


def embed_text(title: str, chunk: str) -> str:
    """What the embedding model sees for a chunk: the title carried with the text."""
    return f"{title}. {chunk}" if title else chunk


def sentence_spans(title: str, chunk: str) -> list[tuple[int, int]]:
    """Character ranges of the chunk's sentences (the ingest splitter's) inside `embed_text(title, chunk)`."""
    start = len(embed_text(title, chunk)) - len(chunk)
    spans: list[tuple[int, int]] = []
    pos = 0
    for sent in split_sentences(chunk):
        at = chunk.find(sent, pos)
        if at < 0:  # not verbatim (cannot happen: the splitter only strips): skip it
            continue
        spans.append((start + at, start + at + len(sent)))
        pos = at + len(sent)
    return spans


def evidence_units(title: str, chunk: str) -> list[tuple[tuple[int, int], ...]]:
    """What each sentence vector of a chunk pools (ingest.encoders.span_pool): the title's and the sentence's
    tokens of `embed_text(title, chunk)`, as a separately embedded `title. sentence` would see them."""
    head = ((0, len(title)),) if title else ()
    return [(*head, s) for s in sentence_spans(title, chunk)]


def _pack(sentences: list[str], sizes: list[int], budget: int) -> list[str]:
    """Greedy packing of sentences into balanced groups, none over budget."""
    total = sum(sizes)
    n = max(1, math.ceil(total / budget))
    target = total / n
    chunks: list[str] = []
    cur: list[str] = []
    cur_size = 0
    for sent, size in zip(sentences, sizes):
        if cur and (cur_size + size > budget or (cur_size >= target and len(chunks) < n - 1)):
            chunks.append(" ".join(cur))
            cur, cur_size = [], 0
        cur.append(sent)
        cur_size += size
    if cur:
        chunks.append(" ".join(cur))
    return chunks


def _split_long(sentence: str, budget: int) -> list[str]:
    """Cut one over-long sentence into word windows of at most `budget` tokens."""
    words = sentence.split()
    out: list[str] = []
    cur: list[str] = []
    for w in words:
        if cur and count_tokens(" ".join(cur + [w])) > budget:
            out.append(" ".join(cur))
            cur = []
        cur.append(w)
    if cur:
        out.append(" ".join(cur))
    return out


def chunk_texts(text: str, budget: int = CHUNK_TOKENS) -> list[str]:
    """Sentence-aligned chunks of text, each at most `budget` tiktoken tokens."""
    sentences: list[str] = []
    for s in split_sentences(text):
        sentences.extend([s] if count_tokens(s) <= budget else _split_long(s, budget))
    sizes = [count_tokens(s) + 1 for s in sentences]
    return _pack(sentences, sizes, budget)


def chunk_paper(
    paper: Paper,
    budget: int = CHUNK_TOKENS,
    window_tokens: Callable[[str], int] | None = None,
    window: int = EMBED_WINDOW,
) -> list[TextNode]:
    """TextNodes for one paper; when `window_tokens` is given, every embed text fits the model window."""
    title_cost = count_tokens(paper.title) + 2
    b = max(40, budget - title_cost)
    while True:
        chunks = chunk_texts(paper.abstract, b)
        if window_tokens is None or b <= 40:
            break
        if all(window_tokens(embed_text(paper.title, c)) <= window - 2 for c in chunks):
            break
        b = int(b * 0.85)
    return [_node(paper, i, len(chunks), c) for i, c in enumerate(chunks)]


def _node(paper: Paper, i: int, n: int, chunk: str) -> TextNode:
    from llama_index.core.schema import TextNode

    meta: dict[str, object] = {
        "paper_id": paper.paper_id,
        "title": paper.title,
        "chunk": i,
        "n_chunks": n,
        "content_hash": paper.content_hash,
        "authors": "; ".join(paper.authors),
        "url": paper.url or "",
        "date": paper.date or "",
        "categories": " ".join(paper.categories),
        "source": paper.source,
        **dedup_metadata(paper),  # ids and title hash: later ingests find this paper from other sources
    }
    if paper.year is not None:
        meta["year"] = paper.year
    for cat in paper.categories:
        meta[f"cat:{cat}"] = 1  # an int: llama-index MetadataFilter rejects bool values
    return TextNode(
        id_=f"{paper.paper_id}#{paper.content_hash}#{i}",
        text=chunk,
        metadata=meta,
        excluded_embed_metadata_keys=list(meta),
        excluded_llm_metadata_keys=list(meta),
    )
