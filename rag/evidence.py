"""Compressed evidence: each source as its title plus the sentences most relevant to the question.

A local model on a laptop CPU spends most of its time reading the prompt (prefill): five whole abstracts
are ~1.5k tokens. Here each source keeps only its best sentences for the question, within a per-source
budget counted with tiktoken (cl100k); the whole abstract is sent when it fits. Kept sentences stay in
their original order, with " ... " where sentences were left out.

A sentence's relevance is the extractive answerer's measure without its style terms: 0.75 x MiniLM cosine
with the question + 0.25 x share of the question's content terms it contains.

The same ranking gives the evidence shown before a written answer streams in (`top_sentences`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ingest.chunking import count_tokens
from ingest.sentences import split_sentences
from rag.text import overlap_score
from rag.types import Source

EVIDENCE_TOKENS = 300  # default per-source budget (Settings.evidence_tokens)
EVIDENCE_RATIO = 0.75  # default Settings.evidence_ratio: the extractive answerer's PAPER_RATIO
GAP = " ... "
ENCODE_BATCH = 64  # stays on the ONNX query encoder (no torch import)


@dataclass
class Ranked:
    """The sentences of one source with their relevance to the question (original order)."""

    source: Source
    sentences: list[str]
    scores: list[float]


def rank_sentences(question: str, sources: Sequence[Source], embed: Any) -> list[Ranked]:
    """Every sentence of every source scored for the question (term overlap only when embed is None)."""
    sents = [split_sentences(s.text) or [s.text] for s in sources]
    lex = [[overlap_score(question, t) for t in ss] for ss in sents]
    if embed is None or not any(sents):
        return [Ranked(s, ss, lx) for s, ss, lx in zip(sources, sents, lex)]
    flat = [t for ss in sents for t in ss]
    vecs: list[Any] = []
    for i in range(0, len(flat), ENCODE_BATCH):
        vecs.extend(embed.get_text_embedding_batch(flat[i:i + ENCODE_BATCH]))
    v = np.asarray(vecs, dtype=np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    q = np.asarray(embed.get_query_embedding(question), dtype=np.float32)
    cos = v @ (q / max(float(np.linalg.norm(q)), 1e-9))
    out, start = [], 0
    for s, ss, lx in zip(sources, sents, lex):
        c = cos[start:start + len(ss)]
        start += len(ss)
        out.append(Ranked(s, ss, [0.75 * float(ci) + 0.25 * li for ci, li in zip(c, lx)]))
    return out


def compress_one(r: Ranked, budget: int) -> str:
    """The source text within `budget` tokens: whole when it fits, else its best sentences in order."""
    if budget <= 0 or count_tokens(r.source.text) <= budget:
        return r.source.text
    order = sorted(range(len(r.sentences)), key=lambda i: -r.scores[i])
    keep: list[int] = []
    used = 0
    for i in order:
        cost = count_tokens(r.sentences[i]) + 2
        if used + cost > budget:
            if keep:
                continue  # a shorter, lower-ranked sentence may still fit
            return r.sentences[i]  # one sentence longer than the budget: keep it (fit_sources truncates)
        keep.append(i)
        used += cost
    keep.sort()
    parts: list[str] = []
    for j, i in enumerate(keep):
        if j == 0 and i > 0:
            parts.append("...")
        elif j > 0 and i > keep[j - 1] + 1:
            parts.append("...")
        parts.append(r.sentences[i])
    if keep and keep[-1] < len(r.sentences) - 1:
        parts.append("...")
    return " ".join(parts)


def select(sources: Sequence[Source], ratio: float = EVIDENCE_RATIO) -> list[Source]:
    """The sources worth showing a model: the top-ranked one, and those whose retrieval score is at least
    `ratio` of the best (the rule the extractive answerer uses for what it may cite). Papers far below the
    best are distractors: a small model cites them, and reading them costs prefill time. 0 keeps all."""
    if not sources or ratio <= 0:
        return list(sources)
    top = max(s.score for s in sources)
    first = min(s.n for s in sources)
    return [s for s in sources if s.n == first or top <= 0 or s.score >= ratio * top]


def compress(question: str, sources: Sequence[Source], embed: Any, budget: int = EVIDENCE_TOKENS) -> list[Source]:
    """Copies of `sources` whose text is the evidence for `question` (numbering and titles unchanged)."""
    if budget <= 0:
        return list(sources)
    long = [s for s in sources if count_tokens(s.text) > budget]
    if not long:
        return list(sources)
    ranked = {r.source.n: r for r in rank_sentences(question, long, embed)}
    return [replace(s, text=compress_one(ranked[s.n], budget)) if s.n in ranked else s for s in sources]


def top_sentences(question: str, sources: Sequence[Source], embed: Any, per_source: int = 1) -> list[tuple[int, str]]:
    """(source n, sentence) of the best `per_source` sentences of each source, in source order."""
    out: list[tuple[int, str]] = []
    for r in rank_sentences(question, sources, embed):
        best = sorted(range(len(r.sentences)), key=lambda i: -r.scores[i])[:per_source]
        out.extend((r.source.n, r.sentences[i]) for i in sorted(best))
    return out
