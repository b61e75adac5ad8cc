"""Calibrate the claim-support score of rag/verify.py on labelled (claim, abstract) pairs.

Pairs (built here, deterministic):
    * PubMedQA-dev: the first sentence of an item's LONG_ANSWER (the paper's conclusion, which is not part of
      the abstract text we index) vs its own abstract = supported; vs the most similar other abstract (highest
      content-term overlap among the 500) = unsupported.
    * SciFact train: a claim vs an abstract its annotators marked SUPPORT = supported; vs the most similar
      abstract among the other claims' cited ones (excluding its own) = unsupported. CONTRADICT pairs are left
      out: a similarity score cannot tell a contradiction from support, and verify.py does not claim to.

Hard negatives (topically close abstracts) are what a mis-citation looks like in practice; random ones would
make the task too easy. Pairs alternate into a calibration half and a held-out half; the weight of the
semantic part and the threshold are grid-searched for balanced accuracy on the calibration half and reported
on both. The re-attribution margin is the smallest one that moves a correct, supported citation to the
paired hard negative in at most 2% of the supported claims.

    python -m eval.calibrate_support --n 200 --out eval/results/support-calibration
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.datasets_loaders import PUBMEDQA, SCIFACT, _open_text, load_pubmedqa
from ingest.sentences import split_sentences
from rag.text import terms
from rag.types import Source
from rag.verify import MIN_CLAIM_TERMS, SupportScorer


_TERMS: dict[str, frozenset[str]] = {}


def _overlap(claim: str, doc_id: str, text: str) -> float:
    """overlap_score(claim, text) with the text's terms computed once."""
    if doc_id not in _TERMS:
        _TERMS[doc_id] = frozenset(terms(text))
    q = set(terms(claim))
    return len(q & _TERMS[doc_id]) / len(q) if q else 0.0


def _hardest(claim: str, pool: list[tuple[str, str]], exclude: set[str]) -> tuple[str, str]:
    """The (id, text) in pool with the highest term overlap with the claim, outside `exclude`."""
    return max((p for p in pool if p[0] not in exclude), key=lambda p: _overlap(claim, p[0], p[1]))


def pubmedqa_pairs(n: int) -> list[dict[str, Any]]:
    ds = load_pubmedqa(PUBMEDQA)
    abstracts = [(r["id"], r["abstract"]) for r in ds.corpus_records]
    by_id = dict(abstracts)
    out = []
    for item, rec in zip(ds.items, ds.corpus_records):
        sents = [s for s in split_sentences(item.answer) if len(terms(s)) >= MIN_CLAIM_TERMS]
        if not sents:
            continue
        claim = sents[0]
        neg_id, _ = _hardest(claim, abstracts, {rec["id"]})
        out.append({"set": "pubmedqa", "claim": claim, "pos": (rec["id"], by_id[rec["id"]]),
                    "neg": (neg_id, by_id[neg_id])})
        if len(out) >= n:
            break
    return out


def scifact_pairs(n: int, folder: Path = SCIFACT) -> list[dict[str, Any]]:
    claims: list[tuple[str, str, str, set[str]]] = []
    with _open_text(folder / "queries.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            sup = [doc for doc, ev in (q.get("metadata") or {}).items() if any(e.get("label") == "SUPPORT" for e in ev)]
            cited = set((q.get("metadata") or {}).keys())
            if sup:
                claims.append((q["_id"], q["text"], sup[0], cited))
    needed = {d for _, _, _, cited in claims for d in cited}
    corpus: dict[str, str] = {}
    with _open_text(folder / "corpus.jsonl.gz") as fh:
        for line in fh:
            d = json.loads(line)
            if d["_id"] in needed:
                corpus[d["_id"]] = f"{d.get('title', '')}. {d.get('text', '')}".strip()
    pool = list(corpus.items())
    out: list[dict[str, Any]] = []
    for qid, text, doc, cited in claims:
        if doc not in corpus:
            continue
        neg_id, neg_text = _hardest(text, pool, cited)
        out.append({"set": "scifact", "claim": text, "claim_id": qid, "pos": (doc, corpus[doc]), "neg": (neg_id, neg_text)})
        if len(out) >= n:
            break
    return out


def score_pairs(pairs: list[dict[str, Any]], embed: Any) -> tuple[np.ndarray, np.ndarray]:
    """(semantic, lexical) support of [pair, (pos, neg)]."""
    scorer = SupportScorer(embed)
    sem = np.zeros((len(pairs), 2))
    lex = np.zeros((len(pairs), 2))
    for i, p in enumerate(pairs):
        srcs = [Source(1, p["pos"][0], "", 1.0, p["pos"][1]), Source(2, p["neg"][0], "", 1.0, p["neg"][1])]
        s, lx, _, _ = scorer.components([p["claim"]], srcs)
        sem[i], lex[i] = s[0], lx[0]
    return sem, lex


def balanced_accuracy(pos: np.ndarray, neg: np.ndarray, thr: float) -> float:
    return float(((pos >= thr).mean() + (neg < thr).mean()) / 2)


def calibrate(sem: np.ndarray, lex: np.ndarray, fit: np.ndarray) -> dict[str, Any]:
    """Grid search weight and threshold for balanced accuracy on the `fit` rows."""
    best: tuple[float, float, float] = (-1.0, 0.0, 0.0)
    for w in np.round(np.arange(0, 1.0001, 0.05), 2):
        s = w * sem + (1 - w) * lex
        for thr in np.round(np.arange(0.2, 0.9001, 0.01), 2):
            ba = balanced_accuracy(s[fit, 0], s[fit, 1], thr)
            if ba > best[0] + 1e-9:
                best = (ba, float(w), float(thr))
    return {"balanced_accuracy_fit": round(best[0], 4), "weight": best[1], "threshold": best[2]}


def margin_for(s: np.ndarray, thr: float, max_wrong: float = 0.01) -> dict[str, float]:
    """Smallest margin moving a supported correct citation to the hard negative in <= max_wrong of claims."""
    supported = s[:, 0] >= thr
    for m in np.round(np.arange(0.0, 0.5001, 0.01), 2):
        wrong = supported & (s[:, 1] >= thr) & (s[:, 1] - s[:, 0] >= m)
        if wrong.sum() <= max_wrong * max(1, supported.sum()):
            # a mis-citation (the claim cites the negative): fixed when the true source clears thr and either the
            # cited one does not, or the true one is better by the margin
            fixed = (s[:, 0] >= thr) & ((s[:, 1] < thr) | (s[:, 0] - s[:, 1] >= m))
            return {"margin": float(m), "wrong_moves": round(float(wrong.sum() / max(1, supported.sum())), 4),
                    "miscitations_fixed": round(float(fixed.mean()), 4)}
    return {"margin": 0.5, "wrong_moves": float("nan"), "miscitations_fixed": float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="claims per dataset (each gives one supported and one unsupported pair)")
    ap.add_argument("--cache", type=Path, default=Path(".paperchat/cache/embeddings.sqlite"), help="embedding cache")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--weight", type=float, default=None,
                    help="evaluate this semantic weight (default: the best on the calibration half)")
    args = ap.parse_args(argv)
    from ingest.embeddings import LocalEmbedding

    t0 = time.perf_counter()
    pairs = pubmedqa_pairs(args.n) + scifact_pairs(args.n)
    embed = LocalEmbedding(cache_path=args.cache)
    sem, lex = score_pairs(pairs, embed)
    idx = np.arange(len(pairs))
    fit, held = idx % 2 == 0, idx % 2 == 1
    res = calibrate(sem, lex, fit)
    res["grid"] = {}
    for gw in (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        sg = gw * sem + (1 - gw) * lex
        gt = max(np.round(np.arange(0.2, 0.9001, 0.01), 2), key=lambda x: balanced_accuracy(sg[fit, 0], sg[fit, 1], x))
        res["grid"][str(gw)] = {"threshold": float(gt), "fit": round(balanced_accuracy(sg[fit, 0], sg[fit, 1], gt), 4),
                                "heldout": round(balanced_accuracy(sg[held, 0], sg[held, 1], gt), 4)}
    if args.weight is not None:  # evaluate a chosen weight (its threshold fitted on the calibration half)
        res["weight"], res["threshold"] = args.weight, res["grid"].get(str(args.weight), {}).get("threshold") or \
            float(max(np.round(np.arange(0.2, 0.9001, 0.01), 2), key=lambda x: balanced_accuracy(
                (args.weight * sem + (1 - args.weight) * lex)[fit, 0], (args.weight * sem + (1 - args.weight) * lex)[fit, 1], x)))
    w, thr = res["weight"], res["threshold"]
    s = w * sem + (1 - w) * lex
    res["balanced_accuracy_heldout"] = round(balanced_accuracy(s[held, 0], s[held, 1], thr), 4)
    res["balanced_accuracy_all"] = round(balanced_accuracy(s[:, 0], s[:, 1], thr), 4)
    for name in ("pubmedqa", "scifact"):
        rows = np.array([p["set"] == name for p in pairs])
        res[f"balanced_accuracy_{name}"] = round(balanced_accuracy(s[rows, 0], s[rows, 1], thr), 4)
    for label, comp in (("lexical_only", lex), ("semantic_only", sem)):
        t = max(np.round(np.arange(0.2, 0.9001, 0.01), 2), key=lambda x: balanced_accuracy(comp[fit, 0], comp[fit, 1], x))
        res[label] = {"threshold": float(t),
                      "balanced_accuracy_heldout": round(balanced_accuracy(comp[held, 0], comp[held, 1], t), 4)}
    res.update(margin_for(s, thr))
    res.update({"pairs": 2 * len(pairs), "claims": len(pairs), "seconds": round(time.perf_counter() - t0, 1),
                "positives_supported": round(float((s[:, 0] >= thr).mean()), 4),
                "negatives_rejected": round(float((s[:, 1] < thr).mean()), 4)})
    print(json.dumps(res, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        with open(args.out / "pairs.jsonl", "w", encoding="utf-8") as fh:
            for p, se, lx in zip(pairs, sem, lex):
                # SciFact is CC BY-NC: its claims are named by id, never copied (PubMedQA is MIT: text kept)
                claim = {"claim_id": p["claim_id"]} if "claim_id" in p else {"claim": p["claim"]}
                fh.write(json.dumps({"set": p["set"], **claim, "pos_id": p["pos"][0], "neg_id": p["neg"][0],
                                     "sem": [round(float(x), 4) for x in se], "lex": [round(float(x), 4) for x in lx]}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
