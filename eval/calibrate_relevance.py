"""Calibrate the relevance gate (rag/relevance.py) on a dev set of answerable and off-collection questions.

    python -m eval.calibrate_relevance --home /tmp/relcal                      # dev set, grid, table
    python -m eval.calibrate_relevance --home /tmp/relcal --check seed,pubmedqa  # plus held-out false abstention

The dev set (eval/datasets/relevance_dev.jsonl) names the collection each question is asked over: `sample`
(data/sample), `scifact` (the SciFact train corpus) or `arxiv10k` (../shared/data/arxiv-10k.jsonl.gz). Each
collection is ingested once into --home (the embedding cache is shared with the user's). For every question the top-k sources are retrieved once; the grid
then re-applies the gate to their (dense, coverage) pairs, so the table isolates the gate's parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eval.datasets_loaders import SAMPLE_CORPUS, SCIFACT, SHARED_DATA, _find, load_dataset

DEV = Path(__file__).resolve().parent / "datasets" / "relevance_dev.jsonl"
CORPORA = {"sample": [SAMPLE_CORPUS], "scifact": [SCIFACT], "arxiv10k": [SHARED_DATA / "arxiv-10k.jsonl.gz"]}
MIN_RELEVANCE = (0.20, 0.25, 0.30, 0.35)
WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
THRESHOLDS = tuple(round(0.40 + 0.01 * i, 2) for i in range(51))
MAX_FALSE_ABSTENTION = 0.02


KEYWORD_DROP = frozenset("in of the and to by a an that are for from is".split())


def claim_question(claim: str, style: str, typo: tuple[str, str] | None = None) -> str:
    """A SciFact train claim asked in one of the dev set's phrasings. SciFact is CC BY-NC: the dev set stores
    only claim ids and phrasings, and the questions are rebuilt from ../shared at run time."""
    body = claim.rstrip(".")
    low = body[0].lower() + body[1:]
    if style == "claim":
        return claim
    if style == "keywords":
        words = [w.strip(",.") for w in body.split() if w.strip(",.").lower() not in KEYWORD_DROP]
        head = words[0]
        if head[1:].isalpha() and head[1:].islower():  # "Insulin" -> "insulin"; "GATA3", "M2-like" stay
            words[0] = head.lower()
        return " ".join(words)
    if style == "typo":
        if typo is None:
            raise ValueError("a typo question needs its (word, typo) pair")
        return " ".join(typo[1] if w == typo[0] else w for w in f"is it true that {low}".split())
    prefix = {"is_there_evidence": "Is there evidence that", "what_is_known": "What is known about whether",
              "does": "Do studies show that"}[style]
    return f"{prefix} {low}?"


def load_dev(path: Path) -> list[dict[str, Any]]:
    """The dev set's rows, SciFact claims rebuilt from their ids (see claim_question)."""
    from eval.beir import load_queries

    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    ids = {r["claim_id"] for r in rows if "claim_id" in r}
    claims = load_queries(SCIFACT, ids) if ids else {}
    for r in rows:
        if "claim_id" in r:
            r["question"] = claim_question(claims[r["claim_id"]], r["style"], tuple(r["typo"]) if "typo" in r else None)
    return rows


def engine(home: Path, name: str, paths: list[Path], records: list[dict[str, Any]] | None = None) -> Any:
    """A Paperchat over one corpus in home/name (ingested once; re-runs find it unchanged)."""
    from rag.engine import Paperchat
    from rag.settings import Settings

    pc = Paperchat(home=home / name, collection=name, cache_dir=Settings().cache_path.parent)
    if records is not None:
        data = home / f"{name}.jsonl"
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths = [data]
    pc.ingest([_find(p, "corpus.jsonl") if p.is_dir() and p.name.startswith("scifact") else p for p in paths],
              progress=True)
    return pc


GATE_INPUTS = ("paper_id", "dense", "focus", "coverage", "lexical", "sentence")


def probe(pc: Any, question: str, k: int) -> tuple[list[list[float]], bool, list[dict[str, Any]]]:
    """(dense evidence, coverage) of the top-k sources, the previous gate's verdict on them, and each source's
    gate inputs (written to features.json for analyses beyond this grid).

    The previous gate: best dense >= 0.35, and below 0.45 also half the question's terms in some abstract."""
    from rag.relevance import closeness
    from rag.text import overlap_score

    sources = pc.retrieve(question, k)
    best = max((s.dense for s in sources), default=0.0)
    old = best >= 0.45 or (best >= 0.35 and any(overlap_score(question, f"{s.title}. {s.text}") >= 0.5
                                                 for s in sources))
    pool = [*sources, *getattr(sources, "gate_also", ())]  # what rag.relevance.relevant() weighs
    inputs = [{f: getattr(s, f) for f in GATE_INPUTS} | {"shown": s in sources} for s in pool]
    return [[closeness(s), s.coverage] for s in pool], old, inputs


def passes(feats: list[list[float]], min_rel: float, weight: float, thr: float) -> bool:
    """rag.relevance.relevant() on (dense evidence, coverage) pairs."""
    from rag.relevance import STANDOUT_MARGIN, STANDOUT_MIN

    if any(d >= min_rel and d + weight * c >= thr for d, c in feats):
        return True
    close = sorted((d for d, _ in feats), reverse=True)
    return len(close) >= 2 and close[0] >= max(STANDOUT_MIN, min_rel) and close[0] - close[1] >= STANDOUT_MARGIN


def rates(rows: list[dict[str, Any]], min_rel: float, weight: float, thr: float) -> tuple[float, float]:
    """(false abstention on answerable, correct abstention on off-collection questions)."""
    ans = [r for r in rows if r["answerable"]]
    off = [r for r in rows if not r["answerable"]]
    fa = sum(not passes(r["feats"], min_rel, weight, thr) for r in ans) / max(len(ans), 1)
    ca = sum(not passes(r["feats"], min_rel, weight, thr) for r in off) / max(len(off), 1)
    return fa, ca


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--dev", type=Path, default=DEV)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--check", default="", help="held-out sets for false abstention: seed, pubmedqa (comma-separated)")
    ap.add_argument("--out", type=Path, help="write the table as Markdown")
    ap.add_argument("--corpus", action="append", default=[], metavar="NAME=PATH",
                    help="ask a collection's questions over another corpus file (e.g. a SciFact subset)")
    args = ap.parse_args()
    from rag.relevance import COVERAGE_WEIGHT, MIN_EVIDENCE
    from rag.settings import Settings

    rows = load_dev(args.dev)
    corpora = {**CORPORA, **{k: [Path(v)] for k, _, v in (c.partition("=") for c in args.corpus)}}
    engines = {name: engine(args.home, name, corpora[name]) for name in sorted({r["collection"] for r in rows})}
    for r in rows:
        r["feats"], r["old"], r["sources"] = probe(engines[r["collection"]], r["question"], args.k)
    grid = []
    for m in MIN_RELEVANCE:
        for w in WEIGHTS:
            for t in THRESHOLDS:
                fa, ca = rates(rows, m, w, t)
                grid.append((m, w, t, fa, ca))
    ok = [g for g in grid if g[3] <= MAX_FALSE_ABSTENTION]
    best = max(ok, key=lambda g: (g[4], -g[3])) if ok else None
    default = (Settings().min_relevance, COVERAGE_WEIGHT, MIN_EVIDENCE)
    n_ans = sum(r["answerable"] for r in rows)
    lines = [f"# Relevance gate calibration ({args.dev.name}: {len(rows)} questions, {n_ans} answerable, "
             f"{len(rows) - n_ans} off-collection; top {args.k} sources)", "",
             "Corpora: " + ", ".join(f"{n} = {', '.join(str(p) for p in corpora[n])}" for n in engines), "",
             "| collection | answerable | off-collection |", "|---|---|---|"]
    for name in engines:
        sub = [r for r in rows if r["collection"] == name]
        lines.append(f"| {name} | {sum(r['answerable'] for r in sub)} | {sum(not r['answerable'] for r in sub)} |")
    lines += ["", "| gate | min_relevance | coverage weight | min evidence | false abstention | correct abstention |",
              "|---|---|---|---|---|---|"]
    old_fa = sum(not r["old"] for r in rows if r["answerable"]) / max(n_ans, 1)
    old_ca = sum(not r["old"] for r in rows if not r["answerable"]) / max(len(rows) - n_ans, 1)
    lines.append(f"| previous (dense band + half the terms) | 0.35 | - | - | {old_fa:.3f} | {old_ca:.3f} |")
    fa, ca = rates(rows, *default)
    lines.append(f"| **default** | {default[0]} | {default[1]} | {default[2]} | {fa:.3f} | {ca:.3f} |")
    for w in WEIGHTS:  # the best threshold per coverage weight at min_relevance 0.25 (0.0 = dense only)
        cand = [g for g in ok if g[0] == 0.25 and g[1] == w]
        if cand:
            g = max(cand, key=lambda g: (g[4], -g[3]))
            lines.append(f"| best at weight {w} | {g[0]} | {g[1]} | {g[2]} | {g[3]:.3f} | {g[4]:.3f} |")
    if best:
        lines.append(f"| best of the grid (false abstention <= {MAX_FALSE_ABSTENTION}) | {best[0]} | {best[1]} | "
                     f"{best[2]} | {best[3]:.3f} | {best[4]:.3f} |")
    wrong = [r for r in rows if r["answerable"] != passes(r["feats"], *default)]
    lines += ["", "Misjudged by the default gate (best dense, coverage of that source):", ""]
    for r in wrong:
        d, c = max(r["feats"], key=lambda f: f[0] + default[1] * f[1]) if r["feats"] else (0.0, 0.0)
        kind = "answerable, abstained" if r["answerable"] else "off-collection, answered"
        lines.append(f"- {kind} ({r['collection']}): {r['question']!r} dense {d:.3f}, coverage {c:.3f}")
    held_out: list[dict[str, Any]] = []
    for name in [c.strip() for c in args.check.split(",") if c.strip()]:
        ds = load_dataset(name)
        pc = engine(args.home, f"check-{name}", ds.corpus_paths, ds.corpus_records or None)
        ans = [it for it in ds.items if it.kind != "out_of_corpus"]
        off = [it for it in ds.items if it.kind == "out_of_corpus"]
        probes = {it.qid: probe(pc, it.question, args.k) for it in ds.items}
        held_out += [{"set": ds.name, "qid": it.qid, "question": it.question, "answerable": it.kind != "out_of_corpus",
                      "sources": probes[it.qid][2]} for it in ds.items]
        f_new = sum(not passes(probes[it.qid][0], *default) for it in ans)
        f_old = sum(not probes[it.qid][1] for it in ans)
        line = (f"- held out, {ds.name}: false abstention {f_new}/{len(ans)} = {f_new / max(len(ans), 1):.3f} "
                f"(previous gate {f_old}/{len(ans)})")
        if off:
            c_new = sum(not passes(probes[it.qid][0], *default) for it in off)
            c_old = sum(not probes[it.qid][1] for it in off)
            line += f"; correct abstention {c_new}/{len(off)} (previous gate {c_old}/{len(off)})"
        lines.append(line)
        print(line, file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    (args.home / "features.json").write_text(json.dumps({"dev": rows, "held_out": held_out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
