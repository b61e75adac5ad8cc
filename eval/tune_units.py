"""Paper evidence from other units than chunks, fused with BM25 as the product fuses (prints a table).

    PAPERCHAT_CACHE_DIR=... python -m eval.tune_units --beir ../shared/data/scifact-train --split train --home /tmp/units

Two designs that would cost no query-time embedding, each compared with the product's hybrid ranking per query
(paired bootstrap):
- lexical MaxP: BM25 over single sentences (the ingest splitter's), a paper's best sentence fused as a third run;
- sentence-first embedding: embed each bare sentence and one title per paper instead of `title. chunk` (about
  the same wordpieces as today), a chunk's vector derived as the normalised mean of its sentences' plus half
  the title's, a paper scored by max(best sentence, best derived chunk[, title]).
The separately embedded `title. sentence` rows (eval.tune_maxp's best, 2.45x the tokens) are the reference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import find, load_qrels, load_queries
from eval.metrics import ndcg_at_k, ranking_report
from eval.retrieval import build_engine
from eval.tune_maxp import corpus_chunks, delta_row, machine
from ingest.bm25sql import Tokenizer
from ingest.chunking import embed_text
from ingest.sentences import split_sentences
from rag.retrieval.fusion import score_fusion


def unit(a: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1."""
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def best_per(sims: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Each owner's best row score (-1 for none)."""
    out = np.full(n, -1.0, np.float32)
    np.maximum.at(out, owner, sims)
    return out


def sentence_bm25(texts: list[str]) -> tuple[Any, dict[str, int], Tokenizer]:
    """A bm25s index over the sentences, tokenised like the product's BM25."""
    import bm25s

    tok, vocab = Tokenizer(), dict[str, int]()
    ids = [[vocab.setdefault(w, len(vocab)) for w in tok(t)] for t in texts]
    index = bm25s.BM25()
    index.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    return index, vocab, tok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--home", type=Path, required=True, help="collection home (kept between runs)")
    args = ap.parse_args()
    print(machine(), file=sys.stderr)
    pc = build_engine(args.beir, args.home, {"sentence_rescore": 0})
    chunks = corpus_chunks(find(args.beir, "corpus.jsonl"), pc.embed.window_tokens)
    papers = sorted({p for p, _, _ in chunks})
    at = {p: i for i, p in enumerate(papers)}
    title = {p: t for p, t, _ in chunks}
    c_p = np.array([at[p] for p, _, _ in chunks])
    s_p, s_c, bare, titled = [], [], [], []
    for ci, (p, t, x) in enumerate(chunks):
        for s in split_sentences(x):
            s_p.append(at[p])
            s_c.append(ci)
            bare.append(s)
            titled.append(embed_text(t, s))
    sp, sc = np.array(s_p), np.array(s_c)

    def embed(texts: list[str], what: str) -> np.ndarray:
        t = time.perf_counter()
        out = np.asarray(pc.embed.get_text_embedding_batch(texts), dtype=np.float32)
        wp = sum(pc.embed.window_tokens(x) for x in texts)
        print(f"{what}: {len(texts)} texts, {wp} wordpieces, {time.perf_counter() - t:.1f} s (cached ones are free)",
              file=sys.stderr)
        return out

    C = embed([embed_text(t, x) for _, t, x in chunks], "chunks (title. chunk)")
    ST = embed(titled, "title. sentence")
    S = embed(bare, "bare sentences")
    T = embed([title[p] for p in papers], "titles")
    derived = np.zeros((len(chunks), C.shape[1]), np.float32)
    np.add.at(derived, sc, S)
    derived = unit(unit(derived) + 0.5 * T[c_p])
    print(f"mean cosine(chunk vector, derived chunk vector) {float(np.mean(np.sum(C * derived, 1))):.4f}", file=sys.stderr)
    bm, vocab, tok = sentence_bm25(bare)

    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    retr = pc.retriever("hybrid", top_k=100)
    cand, n = pc.settings.candidates, len(papers)
    runs: dict[str, dict[str, list[str]]] = {}
    dense_runs: dict[str, dict[str, list[str]]] = {}

    def top(scores: np.ndarray) -> dict[str, float]:
        return {papers[j]: float(scores[j]) for j in np.argpartition(-scores, cand)[:cand]}

    def add(name: str, qid: str, runs_in: list[dict[str, float]], weights: list[float] | None = None) -> None:
        runs.setdefault(name, {})[qid] = [p for p, _ in score_fusion(runs_in, weights)][:100]
        d = runs_in[0]
        dense_runs.setdefault(name, {})[qid] = sorted(d, key=lambda p: -d[p])[:100]

    for qid, text in queries.items():
        q = np.asarray(pc.embed.get_query_embedding(text), dtype=np.float32)
        lex = dict(pc.lexical.search(text, cand))
        dense = retr.dense(q.tolist(), retr.filters)
        add("product hybrid (best chunk + BM25)", qid, [dense, lex])
        chunk, sent_t, sent = best_per(C @ q, c_p, n), best_per(ST @ q, sp, n), best_per(S @ q, sp, n)
        add("reference: max(title. sentence, chunk), 2.45x tokens", qid, [top(np.maximum(sent_t, chunk)), lex])
        add("max(bare sentence, chunk), 2x tokens", qid, [top(np.maximum(sent, chunk)), lex])
        d_chunk = best_per(derived @ q, c_p, n)
        add("sentence-first: derived chunk only", qid, [top(d_chunk), lex])
        add("sentence-first: max(sentence, derived chunk)", qid, [top(np.maximum(sent, d_chunk)), lex])
        add("sentence-first: max(sentence, derived chunk, title)", qid,
            [top(np.maximum(np.maximum(sent, d_chunk), T @ q)), lex])
        words = [vocab[w] for w in tok(text) if w in vocab]
        s_scores = bm.get_scores(words) if words else np.zeros(len(bare))
        s_lex = {papers[i]: float(v) for i, v in enumerate(best_per(s_scores.astype(np.float32), sp, n)) if v > 0}
        for w in (0.25, 0.5, 1.0):
            add(f"lexical MaxP: + sentence BM25 x {w}", qid, [dense, lex, s_lex], [1.0, 1.0, w])

    qids = [q for q in qrels if q in runs["product hybrid (best chunk + BM25)"]]
    base = np.array([ndcg_at_k(runs["product hybrid (best chunk + BM25)"][q], qrels[q]) for q in qids])
    print(f"\n{machine()}\n{len(qids)} queries, {n} papers, {len(chunks)} chunks, {len(bare)} sentences")
    print(f"{'variant (fused with BM25)':52} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'dense nDCG':>10} "
          f"{'d nDCG vs product (95% CI)':>28}")
    for name, r in runs.items():
        m = delta_row(r, qrels, qids, base)
        dn = ranking_report(dense_runs[name], qrels)["ndcg@10"]
        print(f"{name:52} {m['ndcg@10']:8.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} {dn:10.4f} "
              f"{m['delta']:+8.4f} [{m['ci_lo']:+.4f}, {m['ci_hi']:+.4f}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
