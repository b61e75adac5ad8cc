"""Write an evaluation run to disk: report.json, report.md, rows.jsonl and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import json
import platform
import re
import subprocess
from importlib import metadata
from itertools import takewhile
from pathlib import Path
from typing import Any

PACKAGES = ("paperchat", "chromadb", "llama-index-core", "sentence-transformers", "torch", "numpy", "bm25s",
            "openai", "xllamacpp", "tiktoken", "matplotlib")
QUALITY = ("hit@1", "hit@3", "hit@10", "recall@k", "mrr", "citation_precision", "citation_recall", "no_citation",
           "key_fact_hit", "token_f1", "faithfulness_lexical", "faithfulness_llm", "supported_claims",
           "yes_no_agreement", "correct_abstention", "false_abstention")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "fma")


def machine() -> dict[str, Any]:
    """CPU model, cores, the SIMD flags that matter for llama.cpp and torch, and the load average now."""
    import os

    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and model in ("unknown", "", "x86_64"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in CPU_FLAGS if f in flags], "load_avg": load}


def versions() -> dict[str, str | None]:
    """Python, platform, git commit and the installed versions of the packages that change results."""
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _label(name: str, top_k: int) -> str:
    return name.replace("recall@k", f"recall@{top_k}")


def headline(res: Any) -> str:
    """A few lines for the terminal: the main numbers over answerable questions and abstention."""
    m, a = res.metrics, res.metrics["answerable"]
    keys = [k for k in ("hit@1", "hit@10", "mrr", "citation_precision", "citation_recall", "key_fact_hit",
                        "token_f1", "faithfulness_lexical", "faithfulness_llm") if a.get(k) is not None]
    line = "  ".join(f"{_label(k, m['top_k'])} {a[k]:.3f}" for k in keys)
    ab = m["all"]
    tail = ""
    if ab.get("correct_abstention") is not None or ab.get("false_abstention") is not None:
        tail = f"\nabstention: correct {_fmt(ab.get('correct_abstention'))}  false {_fmt(ab.get('false_abstention'))}"
    extra = "  ".join(f"{k} {a[k]:.3f}" for k in ("no_citation", "supported_claims", "yes_no_agreement")
                      if a.get(k) is not None)
    lat = m["latency_ms"]["total"]
    ttft = m["latency_ms"].get("first_token")
    first = f"  first token p50 {_fmt(ttft['p50'], 1)} ms  p95 {_fmt(ttft['p95'], 1)} ms" if ttft else ""
    mach = res.meta.get("machine") or {}
    where = (f"\nmachine: {mach.get('cpu')}, {mach.get('cores')} cores, flags {' '.join(mach.get('flags', []))}; "
             f"load avg start {mach.get('load_avg_start')} end {mach.get('load_avg')}") if mach else ""
    return (f"{res.meta['dataset']['name']} ({len(res.rows)} questions, backend {res.meta['backend']}): {line}"
            f"{chr(10) + extra if extra else ''}{tail}"
            f"\nlatency total p50 {_fmt(lat['p50'], 1)} ms  p95 {_fmt(lat['p95'], 1)} ms{first}{where}")


def markdown(res: Any) -> str:
    """The human-readable report: metric table by question kind, latency, abstention calibration, misses."""
    m, meta = res.metrics, res.meta
    ds = meta["dataset"]
    cfg = meta["config"]
    cols = ["all", "answerable"] + [k for k in m["by_kind"] if len(m["by_kind"]) > 1]
    table = {c: (m[c] if c in ("all", "answerable") else m["by_kind"][c]) for c in cols}
    kinds = ", ".join(f"{k} {v['n']}" for k, v in m["by_kind"].items())
    lines = [f"# QA evaluation: {ds['name']}", "",
             f"- questions: {ds['questions']} ({kinds}); "
             f"dataset sha256 `{ds['sha256'][:16]}`",
             f"- backend: `{meta['backend']}`; LLM judge: `{meta['judge']['llm'] or 'none'}`; "
             f"lexical judge: {meta['judge']['lexical']}",
             f"- retrieval: top_k {cfg['top_k']}, fusion {cfg['fusion']}, min_relevance {cfg['min_relevance']}, "
             f"reranker {cfg['reranker']}; index: {meta['index'].get('mode')} ({meta['index'].get('papers')} papers)",
             f"- run: {meta['started']}, {meta['duration_s']} s, errors {meta['errors']}, "
             f"commit {meta['versions'].get('git_commit')}",
             *([f"- machine: {meta['machine'].get('cpu')}, {meta['machine'].get('cores')} cores, flags "
                f"{' '.join(meta['machine'].get('flags', []))}; load average at start "
                f"{meta['machine'].get('load_avg_start')}, at end {meta['machine'].get('load_avg')}"]
              if meta.get("machine") else []), "",
             "| metric | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines.append("| n | " + " | ".join(_fmt(table[c].get("n")) for c in cols) + " |")
    for name in QUALITY:
        if any(table[c].get(name) is not None for c in cols):
            lines.append(f"| {_label(name, m['top_k'])} | " + " | ".join(_fmt(table[c].get(name)) for c in cols) + " |")
    lines += ["", "Latency (ms):", "", "| stage | p50 | p95 | mean |", "|---|---|---|---|"]
    for st, v in m["latency_ms"].items():
        lines.append(f"| {st} | {_fmt(v['p50'], 1)} | {_fmt(v['p95'], 1)} | {_fmt(v['mean'], 1)} |")
    bd = m.get("best_dense")
    if bd:
        lines += ["", "Best dense cosine of the retrieved sources (one input of the relevance gate, below):", "",
                  "| group | n | min | p10 | p25 | p50 | p75 | p90 | max |", "|---|---|---|---|---|---|---|---|---|"]
        for g in ("answerable", "out_of_corpus"):
            d = bd[g]
            lines.append(f"| {g} | {d['n']} | " + " | ".join(_fmt(d[f'p{p}']) for p in (0, 10, 25, 50, 75, 90, 100)) + " |")
        lines += ["", "If abstention were only `best dense < t`:", "",
                  "| t | false abstention (answerable) | correct abstention (out of corpus) |", "|---|---|---|"]
        for s in bd["threshold_sweep"]:
            lines.append(f"| {s['threshold']:.3f} | {_fmt(s['false_abstention'])} | {_fmt(s['correct_abstention'])} |")
    if m.get("gate"):
        lines += ["", *gate_section(m["gate"])]
    lines += ["", *misses(res.rows)]
    return "\n".join(lines).rstrip() + "\n"


CALIBRATION = Path(__file__).resolve().parent / "results" / "relevance-calibration.md"


def gate_section(g: dict[str, Any], calibration: Path = CALIBRATION) -> list[str]:
    """The relevance gate in this run (its evidence by group, other thresholds) and its dev-set calibration table."""
    out = ["## Relevance gate", "",
           "rag/relevance.py answers when some source's evidence, max(dense, focus) + 0.3 x coverage, reaches "
           f"{g['min_evidence']} (with dense or focus >= min_relevance), or when one paper stands out in meaning.", "",
           "| group | n | one paper stands out | evidence min | p10 | p25 | p50 | p75 | p90 | max |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("answerable", "out_of_corpus"):
        d = g[name]
        out.append(f"| {name} | {d['n']} | {d['standout']} | "
                   + " | ".join(_fmt(d[f'p{p}']) for p in (0, 10, 25, 50, 75, 90, 100)) + " |")
    out += ["", "The gate in this run at other evidence thresholds (the standout rule kept):", "",
            "| min evidence | false abstention (answerable) | correct abstention (out of corpus) |", "|---|---|---|"]
    for s in g["threshold_sweep"]:
        mark = " (default)" if abs(s["threshold"] - g["min_evidence"]) < 1e-9 else ""
        out.append(f"| {s['threshold']:.2f}{mark} | {_fmt(s['false_abstention'])} | {_fmt(s['correct_abstention'])} |")
    if calibration.exists():  # the table the defaults were chosen from (python -m eval.calibrate_relevance)
        text = calibration.read_text(encoding="utf-8").splitlines()
        head = next((i for i, line in enumerate(text) if line.startswith("| gate |")), None)
        if head is not None:
            rows = list(takewhile(lambda line: line.startswith("|"), text[head:]))
            made = re.search(r"\((.*)\)\s*$", text[0])  # "(relevance_dev.jsonl: 226 questions, ...)"
            out += ["", f"Calibration on the relevance dev set (eval/results/{calibration.name}"
                        + (f"; {made.group(1)}" if made else "") + "):", "", *rows]
    return out


def misses(rows: list[dict[str, Any]], most: int = 25) -> list[str]:
    """Bullet lists of the questions to look at: retrieval misses, false and missed abstentions, key-fact misses."""
    def q(r: dict[str, Any]) -> str:
        return f"`{r['qid']}` {r['question'][:110]}"

    groups = {
        "Gold paper not in the top 10": [r for r in rows if r["metrics"].get("hit@10") == 0.0],
        "Gold paper retrieved but not first": [r for r in rows if r["metrics"].get("hit@1") == 0.0
                                               and r["metrics"].get("hit@10") == 1.0],
        "Answerable but declined": [r for r in rows if r.get("abstained") and r["kind"] != "out_of_corpus"],
        "Out of corpus but answered": [r for r in rows if r.get("abstained") is False and r["kind"] == "out_of_corpus"],
        "Answered without any key fact": [r for r in rows if r["metrics"].get("key_fact_hit") == 0.0
                                          and not r.get("abstained")],
        "Errors": [r for r in rows if "error" in r],
    }
    out = ["## Questions to inspect (details in rows.jsonl)"]
    for title, rs in groups.items():
        if not rs:
            continue
        out += ["", f"{title} ({len(rs)}):", ""]
        for r in rs[:most]:
            notes = []
            if r.get("gold_ranks"):
                notes.append("gold ranks " + ", ".join(_fmt(v) for v in r["gold_ranks"].values()))
            if r.get("best_dense") is not None:
                notes.append(f"best dense {r['best_dense']:.3f}")
            out.append(f"- {q(r)}" + (f" — {'; '.join(notes)}" if notes else ""))
        if len(rs) > most:
            out.append(f"- ... and {len(rs) - most} more")
    return out


def plots(out: Path, res: Any) -> list[Path]:
    """metrics.png (quality metrics by question kind), latency.png (histograms), dense.png (abstention calibration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = res.metrics
    files: list[Path] = []
    groups = ["answerable"] + [k for k in m["by_kind"] if k != "out_of_corpus" and len(m["by_kind"]) > 1]
    names = [n for n in QUALITY if n not in ("correct_abstention", "false_abstention")
             and any(_get(m, g).get(n) is not None for g in groups)]
    if names:
        fig, ax = plt.subplots(figsize=(9, 0.42 * len(names) * max(1, len(groups)) ** 0.5 + 1.6))
        h = 0.8 / len(groups)
        for i, g in enumerate(groups):
            vals = [_get(m, g).get(n) or 0.0 for n in names]
            ys = [j + i * h for j in range(len(names))]
            ax.barh(ys, vals, height=h, label=f"{g} (n={_get(m, g).get('n')})")
            for y, v in zip(ys, vals):
                ax.text(v + 0.01, y, f"{v:.2f}", va="center", fontsize=7)
        labels = [_label(n, m["top_k"]) for n in names]
        for j, n in enumerate(("correct_abstention", "false_abstention"), start=len(names)):
            v = m["all"].get(n)
            if v is not None:  # rates over all questions: one grey bar each
                ax.barh([j + h * (len(groups) - 1) / 2], [v], height=h, color="0.55")
                ax.text(v + 0.01, j + h * (len(groups) - 1) / 2, f"{v:.2f}", va="center", fontsize=7)
                labels.append(n)
        ax.set_yticks([j + h * (len(groups) - 1) / 2 for j in range(len(labels))])
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.1)
        ab = m["all"]
        extra = ""
        if ab.get("correct_abstention") is not None or ab.get("false_abstention") is not None:
            extra = f"; abstention correct {_fmt(ab.get('correct_abstention'))}, false {_fmt(ab.get('false_abstention'))}"
        ax.set_title(f"{res.meta['dataset']['name']} - {res.meta['backend']}{extra}", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        files.append(out / "metrics.png")
        fig.savefig(files[-1], dpi=90)
        plt.close(fig)
    rows = [r for r in res.rows if r.get("timings_ms")]
    if rows:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for st in ("retrieve", "first_token", "answer", "total"):
            vals = [r["timings_ms"][st] for r in rows if r["timings_ms"].get(st) is not None]
            if st not in m["latency_ms"]:
                continue
            if vals:
                ax.hist(vals, bins=30, alpha=0.55, label=f"{st} (p50 {m['latency_ms'][st]['p50']:.0f} ms)")
        ax.set_xlabel("milliseconds")
        ax.set_ylabel("questions")
        ax.set_title("latency per question", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        files.append(out / "latency.png")
        fig.savefig(files[-1], dpi=90)
        plt.close(fig)
    ans = [r["best_dense"] for r in res.rows if r.get("best_dense") is not None and r["kind"] != "out_of_corpus"]
    ooc = [r["best_dense"] for r in res.rows if r.get("best_dense") is not None and r["kind"] == "out_of_corpus"]
    if ans or ooc:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        bins = [i / 40 for i in range(0, 41)]
        if ans:
            ax.hist(ans, bins=bins, alpha=0.6, label=f"answerable (n={len(ans)})")
        if ooc:
            ax.hist(ooc, bins=bins, alpha=0.6, label=f"out of corpus (n={len(ooc)})")
        t = res.meta["config"]["min_relevance"]
        ax.axvline(t, color="k", linestyle="--", linewidth=1, label=f"min_relevance {t}")
        ax.set_xlabel("best dense cosine among retrieved sources")
        ax.set_ylabel("questions")
        ax.legend(fontsize=7)
        fig.tight_layout()
        files.append(out / "dense.png")
        fig.savefig(files[-1], dpi=90)
        plt.close(fig)
    return files


def _get(m: dict[str, Any], group: str) -> dict[str, Any]:
    return m[group] if group in ("all", "answerable") else m["by_kind"].get(group, {})


def write_report(out: Path, res: Any) -> list[Path]:
    """Write report.json, report.md, rows.jsonl and the plots into `out`; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res.meta["versions"] = versions()
    report = {**res.meta, "metrics": res.metrics}
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / "rows.jsonl", "w", encoding="utf-8") as fh:
        for r in res.rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(res), encoding="utf-8")
    return [out / "report.json", out / "report.md", out / "rows.jsonl", *plots(out, res)]
