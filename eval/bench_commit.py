"""Interrupted-ingest exposure: seconds of embedded work between commits, paced commits vs whole batches.

Ingests the same synthetic papers twice into fresh homes with fresh embedding caches (one model loaded
once): the baseline commits whole read batches (256 papers, the old behaviour), the paced run commits every
~COMMIT_SECONDS. Prints papers/s, commits, time to the first commit and the longest gap between commits
(what a Ctrl-C can lose, and how long the progress bar can sit still), with CPU flags and load average.

    python -m eval.bench_commit --papers 600
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from eval.bench_lexical import cpu_line


def corpus(n: int) -> list[dict[str, object]]:
    """n distinct arXiv-style records (every text new to the cache); a quarter long enough for two chunks."""
    topics = ["sparse attention", "graph networks", "speech recognition", "protein folding", "code generation",
              "reinforcement learning", "segmentation", "translation", "forecasting", "federated learning"]
    out: list[dict[str, object]] = []
    for i in range(n):
        t = topics[i % len(topics)]
        sents = [f"We study {t} in setting {i} and report results on benchmark {i * 7 % 113}.",
                 f"Variant {i} improves accuracy by {i % 29 + 1} points over baselines on task {i % 17}.",
                 f"Ablations show that component {i % 11} matters most when data for {t} is scarce."]
        if i % 4 == 0:
            sents += [f"Sentence {k} of abstract {i} discusses {t}, limitation {k} and compute cost {i + k}."
                      for k in range(9)]
        out.append({"id": f"2402.{i:05d}", "title": f"{t.capitalize()}: study {i}", "abstract": " ".join(sents)})
    return out


def run(path: Path, work: Path, embed_model: object, commit_seconds: float) -> dict[str, float]:
    from ingest.collection import Collection
    from ingest.embeddings import EmbeddingCache
    from ingest.pipeline import ingest_paths

    embed_model._cache = EmbeddingCache(work / "cache.sqlite", embed_model.model_name)  # type: ignore[attr-defined]
    col = Collection(work / "home", embed=embed_model)
    stamps: list[float] = []
    t0 = time.perf_counter()
    report = ingest_paths([path], col.store, col.embed, progress=False,
                          on_progress=lambda n, _: stamps.append(time.perf_counter()), commit_seconds=commit_seconds)
    total = time.perf_counter() - t0
    gaps = [b - a for a, b in zip([t0, *stamps], stamps)]
    return {"seconds": total, "papers_per_s": report.added / total, "commits": len(stamps),
            "first_commit_s": gaps[0] if gaps else total, "max_gap_s": max(gaps) if gaps else total,
            "added": report.added}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=600)
    ap.add_argument("--commit-seconds", type=float, default=None, help="default: ingest.pipeline.COMMIT_SECONDS")
    args = ap.parse_args(argv)
    import json

    from ingest.embeddings import LocalEmbedding
    from ingest.pipeline import COMMIT_SECONDS

    target = args.commit_seconds or COMMIT_SECONDS
    print(cpu_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="paperchat-bench-commit-") as tmp:
        root = Path(tmp)
        data = root / "papers.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in corpus(args.papers)))
        model = LocalEmbedding(cache_path=root / "warm.sqlite")
        model.get_text_embedding_batch(["warm up the model"] * 8)
        rows = {"whole batches (baseline)": run(data, root / "a", model, 1e9),
                f"paced ({target:g} s)": run(data, root / "b", model, target)}
    print(f"{args.papers} papers; load average after: {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())}")
    print(f"{'run':28} {'s':>7} {'papers/s':>9} {'commits':>8} {'first s':>8} {'max gap s':>10}")
    for name, r in rows.items():
        print(f"{name:28} {r['seconds']:7.1f} {r['papers_per_s']:9.1f} {r['commits']:8.0f} "
              f"{r['first_commit_s']:8.1f} {r['max_gap_s']:10.1f}")
    base, new = rows.values()
    print(f"throughput paced/baseline: {new['papers_per_s'] / base['papers_per_s']:.2f}x; longest gap "
          f"{base['max_gap_s']:.1f} s -> {new['max_gap_s']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
