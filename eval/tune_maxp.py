"""Sentence-level dense evidence (MaxP) vs the chunk-level hybrid, on a BEIR split (prints a table).

    python -m eval.tune_maxp --beir ../shared/data/scifact-train --split train --home /tmp/maxp/home

Every chunk ingest makes is split into sentences with the ingest splitter (chunks are sentence-aligned, so these
are the abstract's sentences) and each sentence is embedded as chunks are: `title. sentence`, with the
project's ingest encoder (PAPERCHAT_EMBED_PRECISION applies). Sentence vectors are kept in --vectors
(npy, keyed by the sentence texts and the precision) so variants re-run without embedding again.
A paper's dense score is then its best sentence (MaxP), the mean of its two best sentences, or the mean of
its best sentence and best chunk; each is fused with BM25 by the product's normalised-score fusion and
compared with the product's own hybrid ranking (`Paperchat.retriever("hybrid")`) in the same run.
Per-query nDCG@10 differences get a paired bootstrap 95% interval (noise on this query set).

Late chunking: the same sentences' vectors pooled from their chunk's own forward pass (the contextual token
vectors over the sentence's tokens, alone or with the title's; ingest.encoders.span_pool), at no extra
forward pass; `--no-separate` skips the separately embedded ones. The product's own sentence-evidence path
(PAPERCHAT_SENTENCE_EVIDENCE: the late title+sentence vectors from the ingest's sidecar, only the fused
candidates rescored) is a row of its own; the baseline is the product's chunk-only hybrid.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.beir import find, load_qrels, load_queries
from eval.metrics import ndcg_at_k, ranking_report
from ingest.chunking import embed_text
from ingest.sentences import split_sentences
from ingest.store import paper_id_of
from rag.retrieval.fusion import score_fusion


def machine() -> str:
    """CPU flags of interest and the load average, for the table's header."""
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = line
            break
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    have = " ".join(f for f in wanted if f" {f}" in flags)
    return f"cpu flags: {have or '(none of ' + ' '.join(wanted) + ')'}; loadavg {Path('/proc/loadavg').read_text().strip()}"


def read_chunks(collection: Any, page: int = 500) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """(chunk ids, paper ids, embed texts' title, chunk texts) and the stored chunk vectors, all pages."""
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    vecs: list[np.ndarray] = []
    offset = 0
    while True:
        got = collection.get(include=["documents", "metadatas", "embeddings"], limit=page, offset=offset)
        if not got["ids"]:
            break
        ids.extend(got["ids"])
        texts.extend(d or "" for d in got["documents"])
        titles.extend(str(m.get("title", "")) for m in got["metadatas"])
        vecs.append(np.asarray(got["embeddings"], dtype=np.float32))
        offset += len(got["ids"])
    return ids, titles, texts, np.concatenate(vecs)


def corpus_chunks(corpus: Path, window_tokens: Any) -> list[tuple[str, str, str]]:
    """(paper id, title, chunk text) of every chunk ingest would make of the corpus."""
    from ingest.chunking import chunk_paper
    from ingest.readers import Located, read_path

    out: list[tuple[str, str, str]] = []
    for item in read_path(corpus):
        if isinstance(item, Located):
            out.extend((item.paper.paper_id, item.paper.title, n.text)
                       for n in chunk_paper(item.paper, window_tokens=window_tokens))
    return out


def sentence_units(chunks: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """(paper id, embed text) per sentence of every chunk."""
    pids: list[str] = []
    units: list[str] = []
    for pid, title, text in chunks:
        for s in split_sentences(text):
            pids.append(pid)
            units.append(embed_text(title, s))
    return pids, units


def late_vectors(pc: Any, chunks: list[tuple[str, str, str]]) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """Late-chunked sentence vectors of every chunk, from the chunk's own forward pass (cached by the embedder).

    Returns the paper id per sentence, the vectors pooled over the sentence's tokens, those pooled over the
    title's and the sentence's tokens, and the seconds it took."""
    from ingest.chunking import sentence_spans

    pids: list[str] = []
    alone: list[np.ndarray] = []
    titled: list[np.ndarray] = []
    t = time.perf_counter()
    step = 2048
    for i in range(0, len(chunks), step):
        part = chunks[i:i + step]
        spans = [sentence_spans(title, text) for _, title, text in part]
        units = [[(s,) for s in sp] + [((0, len(title)), s) for s in sp] for (_, title, _), sp in zip(part, spans)]
        _, mats = pc.embed.get_text_and_unit_embeddings([embed_text(title, text) for _, title, text in part], units)
        for (pid, _, _), sp, m in zip(part, spans, mats):
            pids.extend([pid] * len(sp))
            alone.append(m[: len(sp)])
            titled.append(m[len(sp):])
        print(f"  chunks late-pooled: {min(i + step, len(chunks))}/{len(chunks)} ({time.perf_counter() - t:.0f} s)",
              file=sys.stderr, flush=True)
    return pids, np.concatenate(alone), np.concatenate(titled), time.perf_counter() - t


def sentence_vectors(pc: Any, units: list[str], folder: Path) -> tuple[np.ndarray, float | None]:
    """Vectors for the sentence units, from folder/<key>.npy when present (else embedded and saved)."""
    precision = pc.settings.embed_precision
    from ingest.embeddings import resolve_precision

    key = hashlib.sha256("\x1e".join([resolve_precision(precision), pc.embed.model_name, *units]).encode()).hexdigest()[:16]
    path = folder / f"sentences-{key}.npy"
    if path.exists():
        return np.load(path), None
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    vecs: list[list[float]] = []
    step = 2048
    for i in range(0, len(units), step):
        vecs.extend(pc.embed.get_text_embedding_batch(units[i:i + step]))
        print(f"  sentences embedded: {min(i + step, len(units))}/{len(units)} "
              f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t
    arr = np.asarray(vecs, dtype=np.float32)
    np.save(path, arr)
    return arr, secs


def group(pids: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Unique papers, row order sorted by paper, and reduceat starts (rows must be reordered by `order`)."""
    papers, inverse = np.unique(np.asarray(pids), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(papers)))
    return list(papers), order, starts


def per_paper(sims: np.ndarray, order: np.ndarray, starts: np.ndarray, inverse_sorted: np.ndarray,
              top2: bool = False) -> np.ndarray:
    """Best (or mean of the best two) unit cosine per paper."""
    s = sims[order]
    best = np.maximum.reduceat(s, starts)
    if not top2:
        return best
    # second best: mask one occurrence of the best per paper, take the max again (single-unit papers keep best)
    is_best = s == best[inverse_sorted]
    idx = np.flatnonzero(is_best)
    _, first_of_paper = np.unique(inverse_sorted[idx], return_index=True)  # one best row per paper
    first = np.zeros_like(is_best)
    first[idx[first_of_paper]] = True
    rest = np.where(first, -np.inf, s)
    second = np.maximum.reduceat(rest, starts)
    second = np.where(np.isfinite(second), second, best)
    return (best + second) / 2


def rare_share(pc: Any, corpus: Path, queries: dict[str, str], max_df: int = 5) -> dict[str, float]:
    """Per query, the share of its BM25 terms (the index's tokenizer) found in at most `max_df` papers."""
    from ingest.readers import Located, read_path

    tok = pc.lexical._tok  # the index's own tokenizer (lowercase, stop words, stemmer)
    df: dict[str, int] = {}
    for item in read_path(corpus):
        if isinstance(item, Located):
            for t in set(tok(f"{item.paper.title} {item.paper.abstract}")):
                df[t] = df.get(t, 0) + 1
    out: dict[str, float] = {}
    for qid, text in queries.items():
        terms = set(tok(text))
        out[qid] = sum(df.get(t, 0) <= max_df for t in terms) / len(terms) if terms else 0.0
    return out


def top_papers(scores: np.ndarray, papers: list[str], k: int) -> dict[str, float]:
    """The k best papers as id -> score."""
    idx = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
    return {papers[i]: float(scores[i]) for i in idx}


def bootstrap_ci(diff: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap 95% interval of the mean of per-query differences."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def ndcg_diff(run: dict[str, list[str]], qrels: dict[str, dict[str, int]], qids: list[str],
              base_nd: np.ndarray) -> np.ndarray:
    """Per-query nDCG@10 of a run minus the baseline's (`base_nd`, in `qids` order)."""
    return np.array([ndcg_at_k(run[q], qrels[q]) for q in qids]) - base_nd


def change(diff: np.ndarray) -> dict[str, float]:
    """Mean of per-query differences with its paired-bootstrap 95% interval, rounded for tables."""
    lo, hi = bootstrap_ci(diff)
    return {"delta": round(float(diff.mean()), 4), "ci_lo": round(lo, 4), "ci_hi": round(hi, 4)}


def delta_row(run: dict[str, list[str]], qrels: dict[str, dict[str, int]], qids: list[str],
              base_nd: np.ndarray) -> dict[str, float]:
    """ranking_report of a run plus its mean per-query nDCG@10 change vs the baseline's, with a bootstrap 95% CI."""
    m = ranking_report(run, qrels)
    m.update(change(ndcg_diff(run, qrels, qids, base_nd)))
    return m


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--beir", type=Path, required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--home", type=Path, required=True, help="collection home (kept between runs)")
    ap.add_argument("--vectors", type=Path, help="sentence-vector cache folder (default: HOME/maxp)")
    ap.add_argument("--limit", type=int, help="only the first N queries")
    ap.add_argument("--out", type=Path, help="write the table as JSON")
    ap.add_argument("--no-separate", action="store_true", help="skip separately embedded sentences (late only)")
    args = ap.parse_args()
    from rag.engine import Paperchat
    from rag.settings import Settings

    print(machine(), file=sys.stderr)
    pc = Paperchat(home=args.home, collection="beir", cache_dir=Settings().cache_path.parent, sentence_evidence=True)
    corpus = find(args.beir, "corpus.jsonl")
    chunks = corpus_chunks(corpus, pc.embed.window_tokens)
    l_pids, l_alone, l_titled, l_secs = late_vectors(pc, chunks)  # caches the chunk vectors ingest needs too
    print(f"late pooling pass: {l_secs:.1f} s for {len(chunks)} chunks", file=sys.stderr)
    s_pids, units = sentence_units(chunks)  # embedded before ingest: see --help
    s_vecs, secs = ((l_alone, None) if args.no_separate else
                    sentence_vectors(pc, units, args.vectors or args.home / "maxp"))
    pc.ingest([corpus], progress=True)
    qrels = load_qrels(args.beir, args.split)
    queries = load_queries(args.beir, set(qrels))
    if args.limit:
        queries = dict(list(queries.items())[: args.limit])

    chunk_ids, titles, texts, chunk_vecs = read_chunks(pc.store.collection)
    n_papers = len(set(s_pids))
    print(f"{n_papers} papers, {len(chunk_ids)} chunks, {len(units)} sentences "
          f"({len(units) / len(chunk_ids):.2f} per chunk); wordpieces: chunks "
          f"{sum(pc.embed.window_tokens(embed_text(t, x)) for t, x in zip(titles, texts))}, "
          f"sentences {sum(pc.embed.window_tokens(u) for u in units)}", file=sys.stderr)
    if secs is not None:
        print(f"sentence embedding: {secs:.1f} s, {len(units) / secs:.1f} sentences/s, "
              f"{n_papers / secs:.2f} abstracts/s", file=sys.stderr)

    c_papers, c_order, c_starts = group([paper_id_of(c) for c in chunk_ids])
    s_papers, s_order, s_starts = group(s_pids)
    if len(l_pids) != len(s_pids) or group(l_pids)[0] != s_papers:
        raise SystemExit("late and separate sentence sets differ")
    if c_papers != s_papers:
        raise SystemExit("chunk and sentence paper sets differ")
    papers = c_papers
    c_inv = np.repeat(np.arange(len(papers)), np.diff(np.append(c_starts, len(chunk_ids))))
    s_inv = np.repeat(np.arange(len(papers)), np.diff(np.append(s_starts, len(units))))

    s = pc.settings
    cand, weights = s.candidates, [s.dense_weight, s.lexical_weight]
    retr = pc.retriever("hybrid", top_k=100)
    retr.sentences = None  # the baseline: chunks only (the product before sentence evidence)
    product = pc.retriever("hybrid", top_k=100)  # sentence evidence from the ingest's sidecar, as `ask` uses it
    runs: dict[str, dict[str, list[str]]] = {}
    dense_runs: dict[str, dict[str, list[str]]] = {}

    def add(name: str, qid: str, dense: dict[str, float], lex: dict[str, float], w: list[float] | None = None,
            extra: list[dict[str, float]] | None = None) -> None:
        fused = score_fusion([dense, *(extra or []), lex], w or weights)
        runs.setdefault(name, {})[qid] = [p for p, _ in fused[:100]]
        dense_runs.setdefault(name, {})[qid] = sorted(dense, key=lambda p: -dense[p])[:100]

    rare = rare_share(pc, corpus, queries)
    t = time.perf_counter()
    for qid, text in queries.items():
        q = np.asarray(pc.embed.get_query_embedding(text), dtype=np.float32)
        lex = dict(pc.lexical.search(text, cand))
        runs.setdefault("default (product hybrid)", {})[qid] = [h.paper_id for h in retr.hits(text, q.tolist())]
        dense_runs.setdefault("default (product hybrid)", {})[qid] = sorted(
            (d := retr.dense(q.tolist(), retr.filters)), key=lambda p: -d[p])[:100]
        if product.sentences is not None:
            name = "product: sentence evidence (candidates rescored)"
            runs.setdefault(name, {})[qid] = [h.paper_id for h in product.hits(text, q.tolist())]
            e = product.evidence(q.tolist(), d, lex)
            dense_runs.setdefault(name, {})[qid] = sorted(e, key=lambda p: -e[p])[:100]
        chunk = per_paper(chunk_vecs @ q, c_order, c_starts, c_inv)
        sent = per_paper(s_vecs @ q, s_order, s_starts, s_inv)
        sent2 = per_paper(s_vecs @ q, s_order, s_starts, s_inv, top2=True)
        chunk_d = top_papers(chunk, papers, cand)
        sent_d = top_papers(sent, papers, cand)
        add("best chunk (exact search)", qid, chunk_d, lex)
        add("best sentence (MaxP)", qid, sent_d, lex)
        add("mean of 2 best sentences", qid, top_papers(sent2, papers, cand), lex)
        add("mean(best sentence, best chunk)", qid, top_papers((sent + chunk) / 2, papers, cand), lex)
        add("max(best sentence, best chunk)", qid, top_papers(np.maximum(sent, chunk), papers, cand), lex)
        late = per_paper(l_alone @ q, s_order, s_starts, s_inv)
        late_t = per_paper(l_titled @ q, s_order, s_starts, s_inv)
        add("late: best sentence (MaxP)", qid, top_papers(late, papers, cand), lex)
        add("late: max(best sentence, best chunk)", qid, top_papers(np.maximum(late, chunk), papers, cand), lex)
        add("late+title: best sentence (MaxP)", qid, top_papers(late_t, papers, cand), lex)
        late_max = top_papers(np.maximum(late_t, chunk), papers, cand)
        add("late+title: max(best sentence, best chunk)", qid, late_max, lex)
        for a in (0.4, 0.8):  # query-adaptive: more BM25 weight when the query has rare exact terms
            add(f"late+title max, BM25 weight 1 + {a} x (rare share - 0.5)", qid, late_max, lex,
                [1.0, 1.0 + a * (rare[qid] - 0.5)])
        add("3-way: chunk 0.5 + sentence 0.5 + BM25 1", qid, chunk_d, lex, [0.5, 0.5, 1.0], [sent_d])
        add("MaxP, dense 0.6 / BM25 0.4", qid, sent_d, lex, [0.6, 0.4])
        add("MaxP, dense 0.4 / BM25 0.6", qid, sent_d, lex, [0.4, 0.6])
    q_secs = time.perf_counter() - t

    base = runs["default (product hybrid)"]
    qids = [q for q in qrels if q in base]
    base_nd = np.array([ndcg_at_k(base[q], qrels[q]) for q in qids])
    table: dict[str, dict[str, float]] = {}
    print(f"\n{machine()}\n{len(qids)} queries, {len(papers)} papers; queries scored in {q_secs:.1f} s")
    print(f"{'variant (fused with BM25)':42} {'nDCG@10':>8} {'R@100':>7} {'MRR@10':>7} {'hit@1':>6} "
          f"{'dense nDCG':>10} {'d nDCG vs default (95% CI)':>28}")
    for name, r in runs.items():
        m = delta_row(r, qrels, qids, base_nd)
        m["dense_ndcg@10"] = ranking_report(dense_runs[name], qrels)["ndcg@10"]
        table[name] = m
        print(f"{name:42} {m['ndcg@10']:8.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} {m['hit@1']:6.3f} "
              f"{m['dense_ndcg@10']:10.4f} {m['delta']:+8.4f} [{m['ci_lo']:+.4f}, {m['ci_hi']:+.4f}]")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "sentences": len(units), "chunks": len(chunk_ids),
                                        "sentence_embed_seconds": secs, "late_seconds": l_secs,
                                        "separate": not args.no_separate, "rows": table}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
