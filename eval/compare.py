"""`paperchat eval compare A B`: metric deltas between two runs (report directories or report.json files)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SKIP = {"threshold_sweep", "top_k", "rank_depth"}
LOWER_IS_BETTER = ("latency_ms", "no_citation", "false_abstention")


def load_report(path: str | Path) -> dict[str, Any]:
    """A run's report.json, given the file or its directory."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no report.json")
    return json.loads(p.read_text(encoding="utf-8"))


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict as dotted names (`answerable.hit@1`, `latency_ms.total.p50`)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        if k in SKIP or str(k).endswith("_n"):
            continue
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, A, B, B - A) for every metric in either report's `metrics`, in A's order, then B-only ones."""
    fa, fb = flatten(a.get("metrics", {})), flatten(b.get("metrics", {}))
    names = list(fa) + [n for n in fb if n not in fa]
    return [(n, fa.get(n), fb.get(n), (fb[n] - fa[n]) if n in fa and n in fb else None) for n in names]


def _f(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:+.0f}" if sign else f"{v:.0f}"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def table(a: Mapping[str, Any], b: Mapping[str, Any], changed_only: bool = False) -> str:
    """A plain-text table of the deltas; a trailing marker says better (+) or worse (-) for B."""
    rows = deltas(a, b)
    if changed_only:
        rows = [r for r in rows if r[3] is None or abs(r[3]) > 1e-9]
    width = max((len(r[0]) for r in rows), default=10)
    lines = [f"{'metric':<{width}}  {'A':>9}  {'B':>9}  {'B-A':>9}"]
    for name, va, vb, d in rows:
        mark = ""
        if d and not name.endswith((".n", ".n_out_of_corpus", ".n_answerable")):
            better = d < 0 if any(t in name for t in LOWER_IS_BETTER) else d > 0
            mark = "  better" if better else "  worse"
        lines.append(f"{name:<{width}}  {_f(va):>9}  {_f(vb):>9}  {_f(d, True):>9}{mark}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Print metric deltas between two evaluation runs (B - A)."
    p.add_argument("a", help="run A: report directory or report.json")
    p.add_argument("b", help="run B: report directory or report.json")
    p.add_argument("--changed", action="store_true", help="only metrics that differ")
    p.add_argument("--json", action="store_true", help="print the deltas as JSON")


def run(args: argparse.Namespace) -> int:
    a, b = load_report(args.a), load_report(args.b)
    if args.json:
        print(json.dumps([{"metric": n, "a": va, "b": vb, "delta": d} for n, va, vb, d in deltas(a, b)], indent=1))
        return 0
    for tag, r, path in (("A", a, args.a), ("B", b, args.b)):
        ds = r.get("dataset", {})
        print(f"{tag}: {path}  dataset {ds.get('name')} ({str(ds.get('sha256', ''))[:12]}), backend {r.get('backend')}")
    if a.get("dataset", {}).get("sha256") != b.get("dataset", {}).get("sha256"):
        print("note: the runs used different datasets")
    print(table(a, b, args.changed))
    return 0
