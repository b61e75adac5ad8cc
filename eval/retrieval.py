"""`paperchat eval retrieval --beir DIR --split train|test`: BEIR retrieval metrics in a throwaway collection.

`--against KEY=VALUE` also ranks the same queries over the same collection with those settings changed (the
baseline) and prints the per-query nDCG@10 change with a paired-bootstrap 95% interval: before and after in one run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.beir import find, load_qrels, load_queries
from eval.metrics import percentile, ranking_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beir", type=Path, required=True, help="BEIR folder (corpus.jsonl[.gz], queries.jsonl, qrels/)")
    p.add_argument("--split", default="test")
    p.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default="hybrid")
    p.add_argument("--out", type=Path, help="write metrics and top-100 rankings as JSON")
    p.add_argument("--limit", type=int, help="evaluate only the first N queries")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="settings override, e.g. rrf_k=30")
    p.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                   help="a baseline in the same run: these settings changed, e.g. sentence_rescore=0")


def build_engine(beir: Path, home: Path, overrides: dict[str, Any]) -> Any:
    """A Paperchat over the BEIR corpus in `home`, sharing the user's embedding cache."""
    from rag.engine import Paperchat
    from rag.settings import Settings

    user = Settings()
    pc = Paperchat(home=home, collection="beir", cache_dir=user.cache_path.parent, **overrides)
    t = time.perf_counter()
    report = pc.ingest([find(beir, "corpus.jsonl")], progress=True)
    print(f"indexed {report.papers_total} docs, {report.chunks_total} chunks in {time.perf_counter() - t:.1f} s",
          file=sys.stderr)
    return pc


def evaluate(pc: Any, queries: dict[str, str], qrels: dict[str, dict[str, int]], mode: str,
             depth: int = 100) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Metrics and rankings for one retrieval mode over the queries."""
    from tqdm import tqdm

    retriever = pc.retriever(mode, top_k=depth)
    rankings: dict[str, list[str]] = {}
    lat: list[float] = []
    for qid, text in tqdm(queries.items(), desc=f"queries ({mode})", file=sys.stderr):
        t = time.perf_counter()
        hits = retriever.hits(text, top_k=depth)
        lat.append((time.perf_counter() - t) * 1000)
        rankings[qid] = [h.paper_id for h in hits]
    metrics = ranking_report(rankings, qrels)
    metrics["latency_p50_ms"] = round(percentile(lat, 50), 2)
    metrics["latency_p95_ms"] = round(percentile(lat, 95), 2)
    return metrics, rankings


def paired_delta(run: dict[str, list[str]], base: dict[str, list[str]], qrels: dict[str, dict[str, int]]
                 ) -> dict[str, float]:
    """Mean per-query nDCG@10 change of `run` vs `base`, its paired-bootstrap 95% interval, queries better/worse."""
    import numpy as np

    from eval.metrics import ndcg_at_k
    from eval.tune_maxp import change, ndcg_diff

    qids = [q for q in qrels if q in run and q in base]
    diff = ndcg_diff(run, qrels, qids, np.array([ndcg_at_k(base[q], qrels[q]) for q in qids]))
    c = change(diff)
    return {"delta_ndcg@10": c["delta"], "ci_lo": c["ci_lo"], "ci_hi": c["ci_hi"],
            "better": int((diff > 0).sum()), "worse": int((diff < 0).sum())}


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = value.strip()
    return out


def run(args: argparse.Namespace) -> int:
    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])
    with tempfile.TemporaryDirectory(prefix="paperchat-beir-") as tmp:
        t0 = time.perf_counter()
        pc = build_engine(args.beir, Path(tmp), parse_sets(args.set))
        index_s = time.perf_counter() - t0
        if args.against:
            from rag.engine import Paperchat

            base = Paperchat.over(pc.collection, pc.settings, **parse_sets(args.against))
            base_metrics, base_rankings = evaluate(base, queries, qrels, args.mode)
        metrics, rankings = evaluate(pc, queries, qrels, args.mode)
    metrics["index_seconds"] = round(index_s, 1)
    out: dict[str, Any] = dict(metrics)
    if args.against:
        out["baseline"] = {"settings": parse_sets(args.against), **base_metrics,
                           **paired_delta(rankings, base_rankings, qrels)}
    print(json.dumps({"mode": args.mode, "split": args.split, **out}, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"mode": args.mode, "split": args.split, "beir": str(args.beir),
                                        "settings": pc.settings.redacted(), **out, "rankings": rankings}))
    return 0
