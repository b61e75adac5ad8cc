"""Score fusion of several rankings into one (reciprocal-rank or normalised-score).

Example:
    >>> rrf([["a", "b"], ["b", "c"]], k=60)[0][0]
    'b'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score(d) = sum_i w_i / (k + rank_i(d)), ranks from 1.

    Args:
        rankings: ranked id lists, best first.
        weights: one weight per ranking (default 1.0 each).
        k: the RRF constant; larger flattens the head.
    Returns:
        (id, score) pairs, best first; ties broken by first appearance.
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Scale scores to [0, 1]; a constant list maps to 1.0."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo < 1e-12:
        return {d: 1.0 for d in scores}
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def score_fusion(runs: Sequence[Mapping[str, float]], weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Weighted sum of min-max-normalised scores; a document missing from a run gets 0 there.

    Args:
        runs: id -> raw score maps, one per retriever.
        weights: one weight per run (default 1.0 each).
    Returns:
        (id, fused score) pairs, best first.
    """
    weights = weights or [1.0] * len(runs)
    fused: dict[str, float] = {}
    for run, w in zip(runs, weights):
        for doc, s in minmax(run).items():
            fused[doc] = fused.get(doc, 0.0) + w * s
    return sorted(fused.items(), key=lambda kv: -kv[1])


def aggregate_max(chunk_scores: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Paper-level scores from chunk-level ones: each paper keeps its best chunk's score.

    Args:
        chunk_scores: (paper_id, chunk score) pairs, any order, papers may repeat.
    Returns:
        paper_id -> best score.
    """
    out: dict[str, float] = {}
    for pid, s in chunk_scores:
        if pid not in out or s > out[pid]:
            out[pid] = s
    return out
