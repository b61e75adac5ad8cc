"""Load test for the chat UI: N concurrent gradio_client chat sessions against a running `paperchat serve`.

    paperchat serve --port 7860 &
    python -m eval.load_ui --url http://127.0.0.1:7860/ --sessions 20 --duration 60

Each session is its own client (its own server-side conversation), asks questions one after another through the
UI's `/chat` endpoint (streamed), and starts a new conversation every few turns. Prints requests, errors,
throughput and latency percentiles; exits non-zero if any request failed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

QUESTIONS = [
    "Which paper explains why grokking happens in deep networks?",
    "What limits pointer networks?",
    "How can large language models be edited quickly?",
    "What is multimodal masked modeling?",
    "How are neural representations used for videos?",
    "How does the neural tangent kernel behave for wide networks?",
    "What makes training of deep linear networks nonlinear?",
    "Which methods compress and accelerate neural networks?",
]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    first_output: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _check(result: Any) -> str | None:
    """Why a /chat result is not a proper answer, or None."""
    try:
        chat, panel, _ = result
        last = chat[-1]
        content = last["content"] if isinstance(last, dict) else last
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        return f"unexpected result shape ({exc!r})"
    if "pc-sources-panel" not in str(panel):
        return "no sources panel"
    if "pc-error" in str(panel) or "Something went wrong" in str(content):
        return f"error answer: {str(content)[:200]}"
    return None


def session(url: str, idx: int, deadline: float, turns_per_conversation: int, k: int, unique: bool,
            stats: Stats) -> None:
    from gradio_client import Client

    client = None
    turn = 0
    while time.monotonic() < deadline:
        if client is None or turn >= turns_per_conversation:
            client = Client(url, verbose=False, download_files=False)
            turn = 0
        question = QUESTIONS[(idx + turn) % len(QUESTIONS)]
        if unique:  # defeat the embedding cache: real users rarely repeat a question word for word
            question = f"{question} (session {idx}, request {len(stats.latencies) + len(stats.errors)})"
        t0 = time.perf_counter()
        first = None
        try:
            job = client.submit(question, k, None, None, [], [], api_name="/chat")
            for _ in job:  # streamed updates
                if first is None:
                    first = time.perf_counter() - t0
            why = _check(job.result(timeout=300))
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            why = f"{type(exc).__name__}: {exc}"
        dt = time.perf_counter() - t0
        with stats.lock:
            if why:
                stats.errors.append(f"session {idx}: {why}")
            else:
                stats.latencies.append(dt)
                if first is not None:
                    stats.first_output.append(first)
        turn += 1


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860/")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (requests in flight finish)")
    ap.add_argument("--turns", type=int, default=4, help="turns per conversation before starting a new one")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeat", action="store_true",
                    help="ask the same 8 questions verbatim (cached query embeddings) instead of unique variants")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args(argv)

    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + args.duration
    threads = [threading.Thread(target=session, daemon=True,
                                args=(args.url, i, deadline, args.turns, args.k, not args.repeat, stats))
               for i in range(args.sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    lat = stats.latencies
    summary = {
        "url": args.url, "sessions": args.sessions, "unique_questions": not args.repeat,
        "duration_s": round(wall, 1),
        "requests": len(lat) + len(stats.errors), "ok": len(lat), "errors": len(stats.errors),
        "throughput_rps": round(len(lat) / wall, 2),
        "latency_s": {"p50": round(percentile(lat, 50), 3), "p95": round(percentile(lat, 95), 3),
                      "p99": round(percentile(lat, 99), 3), "max": round(max(lat), 3) if lat else None,
                      "mean": round(statistics.fmean(lat), 3) if lat else None},
        "first_update_s": {"p50": round(percentile(stats.first_output, 50), 3),
                           "p95": round(percentile(stats.first_output, 95), 3)},
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        ls = summary["latency_s"]
        print(f"{summary['sessions']} sessions, {summary['duration_s']} s: {summary['requests']} chat turns, "
              f"{summary['errors']} errors, {summary['throughput_rps']} turns/s")
        print(f"latency p50 {ls['p50']} s, p95 {ls['p95']} s, p99 {ls['p99']} s, max {ls['max']} s "
              f"(first streamed update p50 {summary['first_update_s']['p50']} s)")
    for e in stats.errors[:20]:
        print("error:", e, file=sys.stderr)
    return 1 if stats.errors or not lat else 0


if __name__ == "__main__":
    sys.exit(main())
