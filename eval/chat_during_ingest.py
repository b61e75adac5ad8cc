"""Chat latency while an ingest runs in the same process, against chat latency with no ingest, in one run.

    python -m eval.chat_during_ingest [--records 2000] [--chats 4] [--baseline-s 30] [--json]

One shared Paperchat over the sample papers (extractive answers: the embedder and the index are what is
measured). Phase 1: `--chats` threads ask questions for `--baseline-s` seconds. Phase 2: the same threads
ask while `pc.ingest()` writes `--records` arXiv records (a fresh embedding cache, so they are really
embedded). Readers never take the writer's lock, so chat keeps answering; the figures show what the
shared CPU costs it. Prints CPU model/flags and load average before and after.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent
ARXIV = ROOT.parent / "shared" / "data" / "arxiv-10k.jsonl.gz"
QUESTIONS = [
    "Which paper explains why grokking happens in deep networks?", "How can large models be edited quickly?",
    "What limits pointer networks?", "neural vocoder speech synthesis", "Which methods enhance low-light images?",
    "How do diffusion models generalize?", "graph neural networks survey", "What is the boiling point of ethanol?",
]


def cpu_line() -> str:
    """CPU model, the SIMD/matrix flags that matter for the embedder, cores and load average."""
    model, flags = platform.processor(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), model)
        have = set(next(ln for ln in text.splitlines() if ln.startswith("flags")).split(":", 1)[1].split())
        flags = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile") if f in have]
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"cpu: {model} [{' '.join(flags)}]; {os.cpu_count()} cores; load average {load}"


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {"phase": self.name, "answers": len(lat), "errors": len(self.errors), "seconds": round(self.seconds, 1),
                "p50_ms": round(percentile(lat, 50), 1) if lat else None,
                "p95_ms": round(percentile(lat, 95), 1) if lat else None,
                "max_ms": round(max(lat), 1) if lat else None}


def chat_while(pc: Any, chats: int, running: Callable[[], bool], phase: Phase) -> None:
    """`chats` threads asking questions (each with a unique suffix) for as long as `running()` is true."""
    lock = threading.Lock()

    def worker(i: int) -> None:
        for n in itertools.count():
            if not running():
                return
            q = f"{QUESTIONS[(i + n) % len(QUESTIONS)]} ({i}-{n})"
            t = time.perf_counter()
            try:
                ans = pc.ask(q)
                assert all(1 <= c.n <= len(ans.sources) for c in ans.citations)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    phase.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                phase.latencies_ms.append((time.perf_counter() - t) * 1000)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(chats)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    phase.seconds = time.perf_counter() - t0


def arxiv_records(n: int, out: Path, source: Path = ARXIV) -> Path:
    with gzip.open(source, "rt", encoding="utf-8") as fh, open(out, "w", encoding="utf-8") as w:
        for line in itertools.islice(fh, n):
            w.write(line)
    return out


def run(pc: Any, papers: Path, chats: int, baseline_s: float) -> tuple[Phase, Phase, Any]:
    """Baseline chat phase, then chat during `pc.ingest([papers])`; returns both phases and the IngestReport."""
    base = Phase("no ingest")
    stop = time.monotonic() + baseline_s
    chat_while(pc, chats, lambda: time.monotonic() < stop, base)
    during = Phase("during ingest")
    done = threading.Event()
    report: list[Any] = []

    def ingest() -> None:
        try:
            report.append(pc.ingest([papers]))
        finally:
            done.set()

    writer = threading.Thread(target=ingest, daemon=True)
    writer.start()
    chat_while(pc, chats, lambda: not done.is_set(), during)
    writer.join()
    return base, during, report[0] if report else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.chat_during_ingest")
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--chats", type=int, default=4)
    ap.add_argument("--baseline-s", type=float, default=30.0)
    ap.add_argument("--arxiv", type=Path, default=ARXIV)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from rag.engine import Paperchat

    work = Path(tempfile.mkdtemp(prefix="paperchat-chat-ingest-"))
    print(cpu_line(), flush=True)
    pc = Paperchat(home=work / "home", cache_dir=work / "cache")  # a fresh cache: the records are really embedded
    pc.ingest([ROOT / "data" / "sample"])
    pc.ask(QUESTIONS[0])  # load the models
    papers = arxiv_records(args.records, work / "arxiv.jsonl", args.arxiv)
    base, during, report = run(pc, papers, args.chats, args.baseline_s)
    rows = [base.summary(), during.summary()]
    out = {"chats": args.chats, "records": args.records, "ingest": report.to_dict() if report else None,
           "phases": rows, "cpu_after": cpu_line()}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        for r in rows:
            print(f"{r['phase']:>14}: {r['answers']:5d} answers in {r['seconds']:6.1f} s, p50 {r['p50_ms']} ms, "
                  f"p95 {r['p95_ms']} ms, max {r['max_ms']} ms, errors {r['errors']}")
        if report:
            print(f"ingest: {report.summary()}")
        print(cpu_line())
    for e in (base.errors + during.errors)[:5]:
        print(f"error: {e}")
    return 0 if not (base.errors or during.errors) else 1


if __name__ == "__main__":
    raise SystemExit(main())
