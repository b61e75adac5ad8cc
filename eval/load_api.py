"""Load script: N threads asking the Python API at once for a fixed time (0 errors expected).

    python -m eval.load_api --threads 8 --duration 60 [--home DIR]

Uses one shared Paperchat (the way a server embeds it); each question gets a unique suffix so the
embedding of a repeated question is never the only thing measured. Prints errors and latency percentiles.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from eval.metrics import percentile

QUESTIONS = [
    "Which paper explains why grokking happens in deep networks?", "How can large models be edited quickly?",
    "What limits pointer networks?", "neural vocoder speech synthesis", "What is the boiling point of ethanol?",
    "Which methods enhance low-light images?", "How do diffusion models generalize?", "graph neural networks survey",
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--home", type=Path, help="an existing index (default: a temp one with the sample papers)")
    args = ap.parse_args()
    import tempfile

    from rag.engine import Paperchat

    root = Path(__file__).resolve().parent.parent
    home = args.home or Path(tempfile.mkdtemp(prefix="paperchat-load-"))
    pc = Paperchat(home=home)
    if args.home is None:
        pc.ingest([root / "data" / "sample"])
    pc.ask(QUESTIONS[0])  # warm up models
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + args.duration

    def worker(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            q = f"{QUESTIONS[(i + n) % len(QUESTIONS)]} ({i}-{n})"
            n += 1
            t = time.perf_counter()
            try:
                ans = pc.ask(q)
                assert all(1 <= c.n <= len(ans.sources) for c in ans.citations)
            except Exception as exc:  # counted, never fatal: the point is to see them
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                lat.append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"threads {args.threads}, {args.duration:.0f} s: {len(lat)} answers, {len(errors)} errors, "
          f"{len(lat) / args.duration:.1f} answers/s, p50 {percentile(lat, 50):.0f} ms, "
          f"p95 {percentile(lat, 95):.0f} ms, max {max(lat, default=0):.0f} ms")
    for e in errors[:5]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
