"""End-to-end abstention on the relevance dev set: the gate's verdict, then the answer backend's own.

    python -m eval.abstention --home /tmp/relcal --config llm_gguf=MODEL.gguf --config llm_timeout=900 \\
        [--collections arxiv10k] [--out rows.jsonl]

`eval.calibrate_relevance` measures the gate alone. Here every dev question is asked through `Paperchat.ask`,
so a question the gate lets through can still be declined by the backend ("The indexed papers do not answer
this question."). Prints, per collection, false abstention on answerable questions and correct abstention on
off-collection ones, split into the gate's refusals and the backend's. Collections are ingested into --home
as `calibrate_relevance` does (the same folders, so an earlier calibration's index is reused).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eval.calibrate_relevance import CORPORA, DEV, engine, load_dev
from eval.qa import parse_config
from eval.tune_maxp import machine
from rag.relevance import relevant


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--dev", type=Path, default=DEV)
    ap.add_argument("--collections", default=",".join(CORPORA), help="comma-separated dev collections to ask over")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="a Paperchat setting (KEY=VALUE, a JSON object or file), as in `paperchat eval qa`")
    ap.add_argument("--out", type=Path, help="one JSON row per question")
    args = ap.parse_args()
    from rag.engine import Paperchat

    wanted = [c.strip() for c in args.collections.split(",") if c.strip()]
    rows = [r for r in load_dev(args.dev) if r["collection"] in wanted]
    try:
        config = parse_config(args.config)  # the same --config values as `paperchat eval qa`
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    print(machine(), file=sys.stderr)
    out = args.out.open("w", encoding="utf-8") if args.out else None
    tally: dict[tuple[str, bool], dict[str, int]] = {}
    for name in wanted:
        engine(args.home, name, CORPORA[name])  # ingested once, as calibrate_relevance does
        pc = Paperchat(home=args.home / name, collection=name, **config)
        for r in (r for r in rows if r["collection"] == name):
            t = time.perf_counter()
            ans = pc.ask(r["question"])
            gate = relevant(r["question"], ans.sources, pc.settings.min_relevance)  # the sources carry its inputs
            by = "answered" if not ans.abstained else "backend" if gate else "gate"
            counts = tally.setdefault((name, r["answerable"]), {"n": 0, "gate": 0, "backend": 0, "answered": 0})
            counts["n"] += 1
            counts[by] += 1
            row = {"collection": name, "question": r["question"], "answerable": r["answerable"], "outcome": by,
                   "backend": ans.backend, "notice": ans.notice, "answer": ans.answer,
                   "cited": [c.paper_id for c in ans.citations],
                   "gold": r.get("paper_id"), "seconds": round(time.perf_counter() - t, 2)}
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
            print(f"{by:8} {'answerable' if r['answerable'] else 'off':10} {row['seconds']:6.1f} s  {r['question'][:70]}",
                  file=sys.stderr, flush=True)
    print(f"\n{machine()}\nbackend settings: {config or 'defaults (extractive)'}")
    print("| collection | answerable: refused by gate / backend (false abstention) | off-collection: refused by gate / "
          "backend (correct abstention) |\n|---|---|---|")
    for name in wanted:
        a = tally.get((name, True), {"n": 0, "gate": 0, "backend": 0})
        o = tally.get((name, False), {"n": 0, "gate": 0, "backend": 0})
        print(f"| {name} | {a['gate']} / {a['backend']} of {a['n']} ({(a['gate'] + a['backend']) / max(a['n'], 1):.3f}) | "
              f"{o['gate']} / {o['backend']} of {o['n']} ({(o['gate'] + o['backend']) / max(o['n'], 1):.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
