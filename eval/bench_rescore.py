"""What query-time sentence rescoring costs per question, off vs on in one run (prints a table).

    python -m eval.bench_rescore --home DIR --collection NAME --cache DIR --beir ../shared/data/scifact-train

Over an ingested collection: the first --n claims ranked with rescoring off, then on with an embedding cache
holding no sentence vectors (each question's head papers embedded: the cost the first time they are met), then
on again (all read from the cache). The cold pass starts from a copy of --cache's exported ONNX query model
only, so it times what a fresh install pays. `--ask` times whole extractive answers instead (retrieval, gate,
answer), off and on, each from its own cold cache: the answerer embeds its top sources' sentences either way,
the very texts rescoring embeds first, so this is what rescoring adds to a question. CPU flags and load are
printed beside the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eval.beir import load_qrels, load_queries
from eval.metrics import percentile
from eval.tune_maxp import machine


def timed(call: Callable[[str], object], questions: list[str]) -> list[float]:
    """Milliseconds of `call(question)` per question."""
    out: list[float] = []
    for q in questions:
        t = time.perf_counter()
        call(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def cold_cache(src: Path, into: Path) -> Path:
    """`into` holding only the exported fp32 ONNX query model copied from `src` (no cached vectors)."""
    into.mkdir(parents=True, exist_ok=True)
    for f in src.glob("minilm-*.onnx*"):
        if "int8" not in f.name:
            shutil.copy2(f, into / f.name)
    return into


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True, help="home of an ingested collection")
    ap.add_argument("--collection", default="beir")
    ap.add_argument("--cache", type=Path, required=True, help="cache dir holding the exported ONNX query model")
    ap.add_argument("--beir", type=Path, required=True, help="BEIR folder whose queries are asked")
    ap.add_argument("--split", default="train")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--ask", action="store_true", help="time whole extractive answers, off vs on")
    args = ap.parse_args()
    from rag.engine import Paperchat

    qrels = load_qrels(args.beir, args.split)
    questions = list(load_queries(args.beir, set(qrels)).values())[: args.n]
    with tempfile.TemporaryDirectory(prefix="paperchat-rescore-") as tmp:
        if args.ask:
            rows = {}
            for name, n in (("off", 0), ("on", None)):
                pc = Paperchat(home=args.home, collection=args.collection,
                               cache_dir=cold_cache(args.cache, Path(tmp) / name))
                if n is not None:
                    pc = Paperchat.over(pc.collection, pc.settings, sentence_rescore=n)
                pc.ask(questions[-1])  # model load out of the figures
                rows[f"ask, {name}, cold cache"] = timed(pc.ask, questions[:-1])
                rows[f"ask, {name}, cached"] = timed(pc.ask, questions[:-1])
        else:
            pc = Paperchat(home=args.home, collection=args.collection, cache_dir=cold_cache(args.cache, Path(tmp)))
            off = Paperchat.over(pc.collection, pc.settings, sentence_rescore=0)
            timed(off.retriever("hybrid").hits, questions[:5])  # model load and first queries out of the figures
            rows = {"off": timed(off.retriever("hybrid").hits, questions),
                    "on, sentences not cached": timed(pc.retriever("hybrid").hits, questions),
                    "on, sentences cached": timed(pc.retriever("hybrid").hits, questions)}
    print(f"{machine()}\n{len(questions)} questions, top_k 5, head {pc.settings.sentence_rescore}")
    base = percentile(next(iter(rows.values())), 50)
    for name, ms in rows.items():
        p50 = percentile(ms, 50)
        print(f"{name:26} p50 {p50:8.1f} ms  p95 {percentile(ms, 95):8.1f} ms  ({p50 / base:.1f}x first row)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
