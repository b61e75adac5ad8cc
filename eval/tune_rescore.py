"""Query-time sentence rescoring of the ranking's head: how many papers, and which units (prints a table).

    PAPERCHAT_CACHE_DIR=... python -m eval.tune_rescore --beir ../shared/data/scifact-train --split train \\
        --home /tmp/rescore --heads 5,10,20,30,50,100 --pairs

For each query the product's dense and BM25 candidates are fused (rescoring off); then the first K papers get
max(best unit, best chunk) as their dense score and the candidates are fused again, as
`rag/retrieval/best_sentence.py` does. Units: the abstract's sentences (the product), adjacent sentence pairs,
or both (`--pairs`), each embedded as `title. unit` through the embedding cache. Each row is compared with
rescoring off, per query, with a paired-bootstrap 95% interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from eval.beir import load_qrels, load_queries
from eval.metrics import ndcg_at_k
from eval.retrieval import build_engine
from eval.tune_maxp import delta_row, machine
from ingest.chunking import embed_text
from ingest.sentences import split_sentences


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--home", type=Path, required=True, help="collection home (kept between runs)")
    ap.add_argument("--heads", default="5,10,20,30,50,100", help="head sizes K to rescore (comma-separated)")
    ap.add_argument("--pairs", action="store_true", help="also adjacent sentence pairs, alone and with sentences")
    args = ap.parse_args()
    heads = [int(k) for k in args.heads.split(",")]
    print(machine(), file=sys.stderr)
    pc = build_engine(args.beir, args.home, {"sentence_rescore": 0})
    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    retr = pc.retriever("hybrid", top_k=100)
    papers = pc.collection.papers
    kinds = ["sentences", *(["pairs", "sentences + pairs"] if args.pairs else [])]
    runs: dict[str, dict[str, list[str]]] = {"off": {}}
    texts_per_query: dict[str, int] = {}
    for qid, text in queries.items():
        q = np.asarray(pc.embed.get_query_embedding(text), dtype=np.float32)
        dense = retr.dense(q.tolist(), retr.filters)
        lex = dict(pc.lexical.search(text, retr.candidates))
        ranked = [p for p, _ in retr.rank(dense, lex)]
        runs["off"][qid] = ranked[:100]
        head = papers(ranked[: max(heads)])
        units: dict[str, dict[str, list[str]]] = {k: {} for k in kinds}
        for pid, p in head.items():
            ss = split_sentences(p.abstract)
            sent = [embed_text(p.title, s) for s in ss]
            pair = [embed_text(p.title, f"{a} {b}") for a, b in zip(ss, ss[1:])]
            for k, us in (("sentences", sent), ("pairs", pair), ("sentences + pairs", sent + pair)):
                if k in units:
                    units[k][pid] = us
        flat = sorted({u for per in units.values() for us in per.values() for u in us})
        vec = dict(zip(flat, np.asarray(pc.embed.get_text_embedding_batch(flat), dtype=np.float32) @ q)) if flat else {}
        for k in kinds:
            for n in heads:
                d = dict(dense)
                for pid in ranked[:n]:
                    us = units[k].get(pid, [])
                    if us:
                        b = float(max(vec[u] for u in us))
                        d[pid] = max(b, dense.get(pid, b))
                name = f"top {n}, {k}"
                runs.setdefault(name, {})[qid] = [p for p, _ in retr.rank(d, lex)][:100]
                texts_per_query[name] = texts_per_query.get(name, 0) + sum(len(units[k].get(p, [])) for p in ranked[:n])
    qids = [q for q in qrels if q in runs["off"]]
    base = np.array([ndcg_at_k(runs["off"][q], qrels[q]) for q in qids])
    print(f"\n{machine()}\n{len(qids)} queries")
    print(f"{'rescored':28} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'texts/q':>8} {'d nDCG vs off (95% CI)':>26}")
    for name, r in runs.items():
        m = delta_row(r, qrels, qids, base)
        print(f"{name:28} {m['ndcg@10']:8.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} "
              f"{texts_per_query.get(name, 0) / len(qids):8.1f} {m['delta']:+8.4f} [{m['ci_lo']:+.4f}, {m['ci_hi']:+.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
