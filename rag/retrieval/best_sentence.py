"""Query-time sentence evidence: a paper's best sentence cosine with the question (MaxP), for the head of a ranking.

SciFact claims and most questions match one sentence of an abstract, which a whole-chunk vector dilutes.
Embedding every sentence at ingest costs 2.45x the tokens and 5x the vectors (README, eval/tune_maxp.py);
embedding only the sentences of the fused top 5 at question time (~45 short texts, cached on disk by
content, the same `title. sentence` texts the extractive answerer embeds next) gives most of the gain:
SciFact train nDCG@10 0.737 -> 0.746 (0.749 for the top 10, at twice the first-time cost; README,
eval/tune_rescore.py, eval/bench_rescore.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ingest.chunking import embed_text
from ingest.sentences import split_sentences

ENCODE_BATCH = 64  # stays on the ONNX query encoder (no torch import on the query path)
PaperTexts = Callable[[list[str]], Mapping[str, tuple[str, str]]]  # paper ids -> {id: (title, abstract)}


def best_sentence_scores(embed: Any, query: list[float], papers: Mapping[str, tuple[str, str]]) -> dict[str, float]:
    """paper_id -> best cosine of `title. sentence` with the (normalised) query vector, over its abstract."""
    owners: list[str] = []
    texts: list[str] = []
    for pid, (title, abstract) in papers.items():
        for s in split_sentences(abstract):
            owners.append(pid)
            texts.append(embed_text(title, s))
    if not texts:
        return {}
    vecs: list[Any] = []
    for i in range(0, len(texts), ENCODE_BATCH):
        vecs.extend(embed.get_text_embedding_batch(texts[i:i + ENCODE_BATCH]))
    cos = np.asarray(vecs, dtype=np.float32) @ np.asarray(query, dtype=np.float32)
    out: dict[str, float] = {}
    for pid, c in zip(owners, cos.tolist()):
        if c > out.get(pid, -2.0):
            out[pid] = c
    return out


def rescore_head(embed: Any, query: list[float], ranked: list[str], dense: dict[str, float], n: int,
                 texts_of: PaperTexts) -> tuple[dict[str, float], dict[str, float]]:
    """Dense scores with the first `n` ranked papers raised to max(best sentence, best chunk), and those
    papers' best sentence cosines."""
    head = ranked[:n]
    if not head:
        return dense, {}
    best = best_sentence_scores(embed, query, texts_of(head))
    out = dict(dense)
    for pid, b in best.items():
        out[pid] = max(b, dense.get(pid, b))
    return out, best
