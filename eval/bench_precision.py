"""Encode speed of the embedding precisions against the plain pipeline's embedder, interleaved in one process.

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python -m eval.bench_precision   # AVX2-only CPU for torch

The 65 sample abstracts are encoded by llama-index's HuggingFaceEmbedding (what the plain pipeline of
eval.bench runs), paperchat's torch fp32 and paperchat's int8 ONNX, in turn, three times; each side keeps its
best time, so load that changes during the run hits every side alike (eval.bench runs its sides one after
the other). Encoding only: no chunking, no Chroma. onnxruntime picks its kernels by cpuid whatever the caps.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from eval.bench import cpu_line
    from ingest.embeddings import LocalEmbedding, bundled_model_path
    from ingest.readers import Located, read_path

    print(cpu_line(), flush=True)
    texts = [f"{x.paper.title}\n{x.paper.abstract}" for x in read_path(ROOT / "data" / "sample")
             if isinstance(x, Located)]
    plain = HuggingFaceEmbedding(model_name=str(bundled_model_path()), device="cpu")
    fp32 = LocalEmbedding(precision="fp32")
    int8 = LocalEmbedding(cache_path=Path(tempfile.mkdtemp(prefix="paperchat-int8-")) / "e.sqlite", precision="int8")
    sides: dict[str, Callable[[], Any]] = {
        "plain HuggingFaceEmbedding": lambda: plain.get_text_embedding_batch(texts),
        "paperchat fp32 (torch)": lambda: fp32._model().encode(texts),
        "paperchat int8 (onnxruntime)": lambda: int8._model().encode(texts)}
    for encode in sides.values():  # load models, warm kernels
        encode()
    best = {k: float("inf") for k in sides}
    for _ in range(3):
        for name, encode in sides.items():
            t = time.perf_counter()
            encode()
            best[name] = min(best[name], time.perf_counter() - t)
    print(cpu_line())
    base = best["plain HuggingFaceEmbedding"]
    for name, s in best.items():
        print(f"{name:30} {s:6.2f} s  {len(texts) / s:6.1f} abstracts/s  x{base / s:.2f} vs plain")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
