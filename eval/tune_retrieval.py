"""Compare fusion variants on a BEIR split from one set of dense and BM25 runs (prints a table).

    python -m eval.tune_retrieval --beir ../shared/data/scifact-train --split train --home /tmp/scifact

Dense and BM25 candidates are computed once per query; every variant re-fuses them, so the table
isolates the fusion choice. The index in --home is kept between runs (and embeddings are cached).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.beir import find, load_qrels, load_queries
from eval.metrics import ranking_report
from rag.retrieval.fusion import rrf, score_fusion


def variants(dense: dict[str, float], lex: dict[str, float]) -> dict[str, list[str]]:
    """Named rankings built from one query's dense and BM25 scores."""
    d_rank = sorted(dense, key=lambda p: -dense[p])
    l_rank = sorted(lex, key=lambda p: -lex[p])
    out = {"bm25": l_rank, "dense": d_rank}
    for k in (10, 30, 60):
        out[f"rrf k={k}"] = [p for p, _ in rrf([d_rank, l_rank], k=k)]
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        out[f"score w_dense={w}"] = [p for p, _ in score_fusion([dense, lex], [w, 1 - w])]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from rag.engine import Paperchat
    from rag.settings import Settings

    pc = Paperchat(home=args.home, collection="beir", cache_dir=Settings().cache_path.parent)
    pc.ingest([find(args.beir, "corpus.jsonl")], progress=True)
    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    retr = pc.retriever("hybrid", top_k=100)
    runs: dict[str, dict[str, list[str]]] = {}
    for qid, text in queries.items():
        dense = retr.dense(pc.embed.get_query_embedding(text), retr.filters)
        lex = dict(pc.collection.lexical.search(text, 200))
        for name, ranking in variants(dense, lex).items():
            runs.setdefault(name, {})[qid] = ranking[:100]
    rows = {name: ranking_report(r, qrels) for name, r in runs.items()}
    print(f"{'variant':22} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'hit@1':>6}")
    for name, m in rows.items():
        print(f"{name:22} {m['ndcg@10']:8.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} {m['hit@1']:6.3f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
