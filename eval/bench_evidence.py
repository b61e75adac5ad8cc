"""What compressed evidence and prefix caching save: prompt tokens and llama.cpp prefill time, same run.

For the first N PubMedQA-dev questions (all 500 abstracts indexed, top_k sources each, the same retrieval for
every variant) it builds the answer prompt with:

    whole, all top_k   every retrieved source's whole abstract (what main sent)
    whole, ratio R     only sources scoring >= R x the best (PAPERCHAT_EVIDENCE_RATIO), whole abstracts
    ratio R, budget=B  those, as title + the most relevant sentences within B tiktoken tokens each

and prints the mean prompt tokens (tiktoken cl100k; the model's own count from llama.cpp when --gguf is
given). With --gguf it sends each prompt to a local llama.cpp server with max_tokens=1 and reads the server's
own `timings.prompt_n` / `prompt_ms`: once with `cache_prompt` off (every token prefilled) and once with it on
after a warm-up request (the fixed instructions and worked example come first, so only the sources and the
question are prefilled). CPU flags and load average are printed beside the figures: on a loaded machine
compare variants within the run, not with other runs.

    python -m eval.bench_evidence --n 20 --budgets 300,150 --gguf /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from eval.datasets_loaders import load_pubmedqa
from eval.report import machine
from ingest.chunking import count_tokens
from rag.settings import Settings


def prefill(url: str, messages: list[dict[str, str]], cache: bool) -> dict[str, float]:
    """llama.cpp's own prompt timing for one request that generates a single token."""
    r = httpx.post(f"{url}/chat/completions", timeout=900,
                   json={"messages": messages, "max_tokens": 1, "temperature": 0, "cache_prompt": cache})
    r.raise_for_status()
    t = r.json().get("timings", {})
    return {"prompt_n": float(t.get("prompt_n", 0)), "prompt_ms": float(t.get("prompt_ms", 0))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--budgets", default="300,150", help="per-source token budgets to compare with whole abstracts")
    ap.add_argument("--ratio", type=float, default=0.75, help="evidence_ratio of the compressed variants")
    ap.add_argument("--gguf", type=Path, default=None, help="measure prefill with this model (llama.cpp)")
    ap.add_argument("--home", type=Path, default=None, help="index directory (default: a temp one)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="embedding cache directory")
    args = ap.parse_args(argv)
    from rag.answerers.openai_compat import OpenAIAnswerer
    from rag.engine import Paperchat

    before = machine()
    ds = load_pubmedqa()
    home = args.home or Path(tempfile.mkdtemp(prefix="paperchat-bench-evidence-"))
    home.mkdir(parents=True, exist_ok=True)
    pc = Paperchat(home=home, cache_dir=args.cache_dir or home / "cache")
    if pc.count_papers() < len(ds.corpus_records):
        corpus = home / "pubmedqa.jsonl"
        corpus.write_text("".join(json.dumps(r) + "\n" for r in ds.corpus_records), encoding="utf-8")
        pc.ingest([corpus])
    items = ds.items[: args.n]
    retrieved = [pc.retrieve(it.question, args.k) for it in items]
    # (name, evidence_ratio, evidence_tokens): main sent every top_k source whole
    variants = [("whole, all top_k (main)", 0.0, 0), (f"whole, ratio {args.ratio:g}", args.ratio, 0)]
    variants += [(f"ratio {args.ratio:g}, budget={b}", args.ratio, int(b)) for b in args.budgets.split(",") if b.strip()]
    url = None
    if args.gguf:
        from rag.answerers.gguf import start_server

        url = start_server(args.gguf, 4096)
    rows: dict[str, dict[str, list[float]]] = {}
    for name, ratio, budget in variants:
        a = OpenAIAnswerer(Settings(llm="openai", llm_base_url="http://127.0.0.1:9/v1", evidence_tokens=budget,
                                    evidence_ratio=ratio), embed=pc.embed)
        stats: dict[str, list[float]] = {"tiktoken": [], "sources_tiktoken": [], "shown": []}
        t0 = time.perf_counter()
        msgs_all = []
        for it, srcs in zip(items, retrieved):
            msgs, shown = a.fit(it.question, srcs)
            msgs_all.append(msgs)
            stats["tiktoken"].append(sum(count_tokens(m["content"]) for m in msgs))
            stats["sources_tiktoken"].append(count_tokens(msgs[-1]["content"]))
            stats["shown"].append(len(shown))
        stats["build_ms"] = [(time.perf_counter() - t0) * 1000 / max(1, len(items))]
        if url:
            for cache in (False, True):
                key = "cached" if cache else "uncached"
                if cache:
                    prefill(url, msgs_all[0], True)  # warm the shared prefix once
                for msgs in msgs_all:
                    t = prefill(url, msgs, cache)
                    stats.setdefault(f"{key}_prompt_n", []).append(t["prompt_n"])
                    stats.setdefault(f"{key}_prompt_ms", []).append(t["prompt_ms"])
        rows[name] = stats
    print(f"PubMedQA-dev, first {len(items)} questions, top {args.k} sources each (same retrieval for every variant)")
    mach = machine()
    print(f"machine: {mach['cpu']}, {mach['cores']} cores, flags {' '.join(mach['flags'])}; "
          f"load avg at start {before['load_avg']}, at end {mach['load_avg']}")
    base = statistics.mean(rows[variants[0][0]]["tiktoken"])
    header = "| variant | prompt tokens (tiktoken) | vs whole | sources+question tokens | sources shown |"
    extra = "" if not url else " model prompt tokens, uncached | prefill ms, uncached | model tokens prefilled, cached prefix | prefill ms, cached prefix |"
    print(header + extra)
    print("|---" * (5 + (4 if url else 0)) + "|")
    out = {}
    for name, st in rows.items():
        m = {k: round(statistics.mean(v), 1) for k, v in st.items() if v}
        out[name] = m
        line = (f"| {name} | {m['tiktoken']:.0f} | {m['tiktoken'] / base:.2f}x | {m['sources_tiktoken']:.0f} | "
                f"{m['shown']:.1f} |")
        if url:
            line += (f" {m['uncached_prompt_n']:.0f} | {m['uncached_prompt_ms']:.0f} | {m['cached_prompt_n']:.0f} | "
                     f"{m['cached_prompt_ms']:.0f} |")
        print(line)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
