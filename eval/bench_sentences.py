"""Cost of sentence evidence: ingest time, CPU and disk, and query latency, with it off and on, same run.

    python -m eval.bench_sentences --beir /tmp/sub --split train [--queries 200]

Each side ingests the BEIR corpus into its own temp home with its own empty embedding cache (the model
runs for every chunk), then times `retriever("hybrid").hits` over the queries (after one warm-up query).
Prints CPU flags and the load average with the table; the sides alternate off, on, off, on with --repeat 2.
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
from eval.tune_maxp import machine


def du(path: Path) -> int:
    """Bytes of the files under path."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def side(beir: Path, queries: dict[str, str], qrels: dict[str, dict[str, int]], evidence: bool) -> dict[str, Any]:
    """Ingest with a cold cache, then query; one side of the comparison."""
    from rag.engine import Paperchat

    with tempfile.TemporaryDirectory(prefix="paperchat-sent-") as tmp:
        home = Path(tmp) / "home"
        pc = Paperchat(home=home, collection="beir", cache_dir=Path(tmp) / "cache", sentence_evidence=evidence)
        pc.embed.ensure_query_model = lambda: None  # no ONNX export child competing with the timings
        pc.embed.get_text_embedding_batch(["warm up"])
        t, c = time.perf_counter(), time.process_time()
        report = pc.ingest([find(beir, "corpus.jsonl")])
        ingest_s, cpu_s = time.perf_counter() - t, time.process_time() - c
        retr = pc.retriever("hybrid", top_k=100)
        retr.hits("warm up")
        lat: list[float] = []
        rankings: dict[str, list[str]] = {}
        for qid, text in queries.items():
            emb = pc.embed.get_query_embedding(text)  # the model's time is the same on both sides: left out
            t = time.perf_counter()
            rankings[qid] = [h.paper_id for h in retr.hits(text, emb)]
            lat.append((time.perf_counter() - t) * 1000)
        st = pc.collection.sentences
        return {"evidence": evidence, "papers": report.papers_total, "chunks": report.chunks_total,
                "ingest_s": round(ingest_s, 1), "ingest_cpu_s": round(cpu_s, 1),
                "chroma_mb": round(du(home / "chroma") / 1e6, 1),
                "sentences_mb": round(du(home / "sentences") / 1e6, 1),
                "sentence_rows": st.count() if st is not None else 0,
                "hits_p50_ms": round(percentile(lat, 50), 2), "hits_p95_ms": round(percentile(lat, 95), 2),
                "ndcg@10": ranking_report(rankings, qrels)["ndcg@10"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--queries", type=int, default=200, help="first N queries timed")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    qrels = load_qrels(args.beir, args.split)
    queries = dict(list(load_queries(args.beir, set(qrels)).items())[: args.queries])
    print(machine(), file=sys.stderr)
    rows = []
    for _ in range(args.repeat):
        for evidence in (False, True):
            rows.append(side(args.beir, queries, qrels, evidence))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(machine())
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
