"""Offline answerer: the sentences of the retrieved abstracts that best answer the question, each cited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ingest.sentences import split_sentences
from rag.answerers.base import NO_ANSWER
from rag.text import overlap_score
from rag.types import Source

MAX_SENTENCES = 3
PER_PAPER = 2
RELATIVE_FLOOR = 0.75


class ExtractiveAnswerer:
    """Scores every sentence of the sources by embedding similarity and term overlap with the question."""

    name = "extractive"

    def __init__(self, embed: Any) -> None:
        self.embed = embed

    def select(self, question: str, sources: list[Source]) -> list[tuple[Source, int, str, float]]:
        """(source, position, sentence, score) of the chosen sentences, in source order."""
        cands: list[tuple[Source, int, str]] = []
        for src in sources:
            for i, sent in enumerate(split_sentences(src.text)):
                if len(sent) >= 25:
                    cands.append((src, i, sent))
        if not cands:
            return []
        q = np.asarray(self.embed.get_query_embedding(question))
        vecs = np.asarray(self.embed.get_text_embedding_batch([f"{s.title}. {t}" for s, _, t in cands]))
        cos = vecs @ q
        scored = []
        for (src, i, sent), c in zip(cands, cos):
            prior = 0.05 * (1.0 / src.n)  # retrieval rank as a light prior
            scored.append((float(0.75 * c + 0.25 * overlap_score(question, sent) + prior), src, i, sent))
        scored.sort(key=lambda x: -x[0])
        best = scored[0][0]
        picked: list[tuple[Source, int, str, float]] = []
        per: dict[int, int] = {}
        for score, src, i, sent in scored:
            if len(picked) >= MAX_SENTENCES or score < RELATIVE_FLOOR * best:
                break
            if per.get(src.n, 0) >= PER_PAPER:
                continue
            per[src.n] = per.get(src.n, 0) + 1
            picked.append((src, i, sent, score))
        picked.sort(key=lambda x: (x[0].n, x[1]))
        return picked

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        picked = self.select(question, sources)
        if not picked:
            yield NO_ANSWER
            return
        for j, (src, _, sent, _) in enumerate(picked):
            body = sent.rstrip()
            end = body[-1] if body[-1] in ".!?" else "."
            body = body.rstrip(".!?")
            yield ("" if j == 0 else " ") + f"{body} [{src.n}]{end}"
