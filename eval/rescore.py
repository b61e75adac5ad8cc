"""Add the claim-level metrics to a finished `eval qa` run (e.g. one made before they existed).

Recomputes, from `rows.jsonl` and the dataset's corpus, per answered question: supported_claims (rag/verify.py's
calibrated score of each claim against its cited sources), yes_no_agreement (PubMedQA expert label), and
prints them beside the run's own citation metrics, so a BEFORE run and an AFTER run are compared on the
same definitions.

    python -m eval.rescore eval/results/seed-gguf-qwen1.5b-before --dataset seed
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from eval import qa_metrics as M
from eval.datasets_loaders import load_dataset
from eval.qa import claim_support_fn
from rag.verify import SUPPORT_THRESHOLD


def corpus_texts(dataset: str) -> dict[str, str]:
    """paper id -> abstract for the dataset's corpus (records or files, read by the ingest readers)."""
    ds = load_dataset(dataset)
    out = {}
    for rec in ds.corpus_records:
        from eval.datasets_loaders import paper_id_of

        out[paper_id_of(rec["id"])] = rec["abstract"]
    if ds.corpus_paths:
        from ingest.readers import read_path
        from ingest.readers.base import Located

        for p in ds.corpus_paths:
            for item in read_path(p):
                if isinstance(item, Located):
                    out[item.paper.paper_id] = item.paper.abstract
    return out


def rescore(run: Path, dataset: str, embed: Any) -> dict[str, Any]:
    rows = [json.loads(x) for x in (run / "rows.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    texts_by_id = corpus_texts(dataset)
    by_tail = {pid.split(":")[-1]: t for pid, t in texts_by_id.items()}  # ids from older runs (pubmed:N vs pmid:N)
    support = claim_support_fn(embed)
    out_rows = []
    for r in rows:
        if "answer" not in r:
            continue
        texts = {i: texts_by_id.get(pid) or by_tail.get(pid.split(":")[-1], "")
                 for i, pid in enumerate(r.get("cited_ids", []), start=1)}
        m = dict(r.get("metrics", {}))
        m["supported_claims"] = M.supported_claims(r["answer"], texts, r["abstained"], support, SUPPORT_THRESHOLD)
        m["yes_no_agreement"] = M.yes_no_agreement(r["answer"], r.get("final_decision"), r["abstained"])
        out_rows.append({**r, "metrics": m})
    agg = M.aggregate([r for r in out_rows if r.get("kind") != "out_of_corpus"])
    return {"run": str(run), "answerable": agg, "rows": out_rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--cache", type=Path, default=None, help="embedding cache (default: PAPERCHAT_HOME's)")
    args = ap.parse_args(argv)
    from ingest.embeddings import LocalEmbedding
    from rag.settings import Settings

    embed = LocalEmbedding(cache_path=args.cache or Settings().cache_path)
    for run in args.runs:
        res = rescore(run, args.dataset, embed)
        a = res["answerable"]
        keys = ("n", "citation_precision", "citation_recall", "no_citation", "supported_claims", "yes_no_agreement",
                "faithfulness_lexical", "key_fact_hit")
        print(json.dumps({"run": str(run), **{k: a.get(k) for k in keys}}))
        (run / "rescore.json").write_text(json.dumps({k: a.get(k) for k in a}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
