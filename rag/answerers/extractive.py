"""Offline answerer: the sentences of the retrieved abstracts that best answer the question, each cited.

How sentences are chosen (each rule has one reason, none is tuned to a question set):
    * Only papers whose retrieval score is close to the best one (>= PAPER_RATIO of it) may be cited: a
      single-paper answer is not padded with a sentence from a weakly retrieved paper, while papers that
      retrieval ranks about as high as the best (multi-paper questions) can each be covered.
    * The top-ranked paper is always cited (retrieval, and a reranker when configured, judged the whole
      abstract; one well-matching sentence elsewhere must not override that).
    * The budget of MAX_SENTENCES goes first to one sentence per eligible paper (coverage of distinct
      papers), then to further sentences of the cited papers, all above RELATIVE_FLOOR of the best score.
    * A sentence's score is embedding similarity plus term overlap with the question, a light prior from
      its paper's retrieval score, and a small preference for contribution sentences ("we propose ...",
      "results show ...") over background ones (an abstract's opening, "While ...", "Recent ...").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from ingest.sentences import split_sentences
from rag.answerers.base import NO_ANSWER
from rag.citations import neutralise
from rag.text import overlap_score
from rag.types import Source

MAX_SENTENCES = 3
MAX_PAPERS = 3  # one sentence each at most fills the budget
RELATIVE_FLOOR = 0.75  # a sentence must score at least this share of the best sentence
PAPER_RATIO = 0.75  # a paper is citable when its retrieval score is at least this share of the best paper's
PRIOR = 0.05  # weight of the paper's relative retrieval score in a sentence's score
STYLE = 0.03  # bonus for a contribution sentence, malus for a background one

_CONTRIBUTION = re.compile(
    r"\b(?:we|our|here|this (?:paper|work|study|article|book)|the proposed|in conclusion|conclu\w*|"
    r"results? (?:show|suggest|indicate|demonstrate)|(?:show|suggest|indicate|demonstrate)s? that)\b", re.I)
_BACKGROUND = re.compile(
    r"^(?:while|although|though|despite|however|recent(?:ly)?|in recent years|previous(?:ly)?|prior|existing|"
    r"traditional(?:ly)?|unfortunately|currently|nowadays|many|most)\b", re.I)


def style_score(position: int, sentence: str) -> float:
    """+1 for a contribution sentence, -1 for background (or an abstract's opening without a contribution cue)."""
    if _CONTRIBUTION.search(sentence):
        return 1.0
    if position == 0 or _BACKGROUND.search(sentence):
        return -1.0
    return 0.0


class ExtractiveAnswerer:
    """Scores every sentence of the sources by embedding similarity and term overlap with the question."""

    name = "extractive"

    def __init__(self, embed: Any) -> None:
        self.embed = embed

    def select(self, question: str, sources: list[Source]) -> list[tuple[Source, int, str, float]]:
        """(source, position, sentence, score) of the chosen sentences, in source order."""
        if not sources:
            return []
        top = max(s.score for s in sources)
        first = min(s.n for s in sources)
        citable = [s for s in sources if s.n == first or top <= 0 or s.score >= PAPER_RATIO * top]
        citable = sorted(citable, key=lambda s: s.n)[:MAX_PAPERS]
        cands: list[tuple[Source, int, str]] = []
        for src in citable:
            for i, sent in enumerate(split_sentences(src.text)):
                if len(sent) >= 25:
                    cands.append((src, i, sent))
        if not cands:
            return []
        q = np.asarray(self.embed.get_query_embedding(question))
        vecs = np.asarray(self.embed.get_text_embedding_batch([f"{s.title}. {t}" for s, _, t in cands]))
        cos = vecs @ q
        by_paper: dict[int, list[tuple[float, Source, int, str]]] = {}
        for (src, i, sent), c in zip(cands, cos):
            prior = PRIOR * (src.score / top if top > 0 else 1.0)
            score = 0.75 * float(c) + 0.25 * overlap_score(question, sent) + prior + STYLE * style_score(i, sent)
            by_paper.setdefault(src.n, []).append((score, src, i, sent))
        for rows in by_paper.values():
            rows.sort(key=lambda x: -x[0])
        floor = RELATIVE_FLOOR * max(rows[0][0] for rows in by_paper.values())
        picked: list[tuple[float, Source, int, str]] = []
        # coverage first: the best sentence of each citable paper (the top-ranked paper always)
        for n in sorted(by_paper):
            best = by_paper[n][0]
            if n == first or best[0] >= floor:
                picked.append(best)
        # then more sentences of the cited papers, best first
        cited = {row[1].n for row in picked}
        rest = sorted((row for n in cited for row in by_paper[n][1:]), key=lambda x: -x[0])
        for row in rest:
            if len(picked) >= MAX_SENTENCES or row[0] < floor:
                break
            picked.append(row)
        picked.sort(key=lambda x: (x[1].n, x[2]))
        return [(src, i, sent, score) for score, src, i, sent in picked]

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        """All of them: the extractive answerer reads every retrieved abstract."""
        return sources

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        picked = self.select(question, sources)
        if not picked:
            yield NO_ANSWER
            return
        for j, (src, _, sent, _) in enumerate(picked):
            body = neutralise(sent).rstrip()  # an abstract's own "[2]" must not become a citation
            end = body[-1] if body[-1] in ".!?" else "."
            body = body.rstrip(".!?")
            yield ("" if j == 0 else " ") + f"{body} [{src.n}]{end}"
