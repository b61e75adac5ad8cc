"""Ranking metrics (BEIR conventions): nDCG@k, recall@k, MRR@k, hit@k, latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded relevance (gain = rel, log2 discount), as in BEIR/pytrec_eval."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 100) -> float:
    """Share of relevant documents found in the top k."""
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none)."""
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def hit_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """1.0 when any relevant document is in the top k."""
    return 1.0 if any(rels.get(d, 0) > 0 for d in ranked[:k]) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ranking_report(rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean metrics over the queries that have qrels."""
    qids = [q for q in qrels if q in rankings]
    if not qids:
        return {}
    def mean(f) -> float:  # type: ignore[no-untyped-def]
        return round(sum(f(rankings[q], qrels[q]) for q in qids) / len(qids), 4)
    return {
        "ndcg@10": mean(lambda r, g: ndcg_at_k(r, g, 10)),
        "recall@100": mean(lambda r, g: recall_at_k(r, g, 100)),
        "mrr@10": mean(lambda r, g: mrr_at_k(r, g, 10)),
        "hit@1": mean(lambda r, g: hit_at_k(r, g, 1)),
        "hit@10": mean(lambda r, g: hit_at_k(r, g, 10)),
        "queries": float(len(qids)),
    }
