"""Scale benchmark: one collection grown to 75k arXiv papers, measured on the way.

    python -m eval.scale --records ../shared/data/arxiv-75k.jsonl.gz --work /tmp/pc-scale \\
        --points 10000,25000,50000,75000 [--vectors real|recycled] [--stages slice,grow,add100,server,kill]

Stages (each appends to <work>/results.json; rerunning skips what is recorded there, and an ingest cut
short resumes where it stopped, because ingest skips papers already stored unchanged):
  slice   plain llama-index vs paperchat on the first 2,000 records, each side in its own process with an
          empty home and embedding cache (abstracts/s, peak RSS)
  grow    `paperchat ingest` of the first P records for each point P (progress bar with ETA on stderr; the
          papers below the previous point are unchanged and skipped), then in a new query process: hybrid
          retrieval p50/p95, RSS, and cold `paperchat ask` (best of 3)
  add100  paperchat indexing the first 2,000 records from scratch, then 100 new records added to the big
          collection, both embedded by the model with empty caches, in the same run: wall and CPU time and
          their ratio (the issue's <= 10%; --profile: a cProfile of the add in CPU seconds)
  server  the same Chroma data behind `chroma run` on 127.0.0.1: a new client's hybrid p50/p95, how long a
          client with an empty home takes to build its lexical index from the server, and to sync after
          another client added 100 papers
  kill    on a fresh copy of the big collection (--kill-base), kill -9 of an ingest of 2,000 records new to it
          (the slice's, under new ids and titles) at a random point (--seed), rerun: exact paper and chunk
          counts (the copy's own plus a clean chunking of the records; the rerun reports no duplicates) and
          `paperchat doctor` ok
  query   (not in the default list; measured on every run) the query process of the existing collection in
          <work>/home: cold `paperchat ask` CPU time, peak RSS and wall (--repeat runs), hybrid p50/p95 and
          RSS; --baseline-src DIR measures another commit's code the same way, interleaved

--vectors recycled: chunk vectors are not computed by the model but reused from a pool of real MiniLM
vectors (from the slice stage) with a little noise, so the Chroma, BM25 and query-side figures at 75k can
be measured without hours of embedding; ingest rates are then NOT embedding rates (the report says so).
Queries always use the real model. CPU model, flags and load average are printed with every stage.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import sys
import time
from pathlib import Path
from typing import Any

from eval.bench import OURS, PLAIN, QUERIES, run_side
from eval.bench_lexical import cpu_line
from eval.metrics import percentile

ROOT = Path(__file__).resolve().parent.parent

# child prelude: with SCALE_BENCH_POOL set, chunk vectors come from a pool of real vectors (+ noise)
POOL = r'''
import json, os, resource, sys, time
pool = os.environ.get("SCALE_BENCH_POOL")
if pool:
    import hashlib
    import numpy as np
    import ingest.embeddings as E
    vecs = np.load(pool)
    def _encode(self, texts):
        out = []
        for t in texts:
            h = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big")
            v = vecs[h % len(vecs)] + np.random.default_rng(h).normal(0, 0.02, vecs.shape[1]).astype(np.float32)
            out.append((v / np.linalg.norm(v)).tolist())
        return out
    E.LocalEmbedding._encode = _encode
'''

# runs rag.cli in a child and prints its peak RSS last
CLI = POOL + r'''
from rag.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
sys.exit(rc)
'''

# an ingest timed like eval.bench's: the model is loaded first, then Paperchat.ingest is timed
INGEST = POOL + r'''
from rag.engine import Paperchat
pc = Paperchat(home=sys.argv[2], chroma_url=sys.argv[3] or None)
pc.embed.get_text_embedding_batch(["warm up"])
prof = os.environ.get("SCALE_PROFILE")
if prof:
    import cProfile
    profiler = cProfile.Profile(time.process_time)  # CPU seconds: wall is mostly queueing on a loaded machine
    profiler.enable()
t, c = time.perf_counter(), time.process_time()
report = pc.ingest([sys.argv[1]])
wall, cpu = time.perf_counter() - t, time.process_time() - c
if prof:
    profiler.disable()
    profiler.dump_stats(prof)
print(json.dumps({"ingest_s": wall, "cpu_s": cpu, "summary": report.summary(), "added": report.added,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
'''

# a query process: open the collection, time hybrid retrieval, report RSS
QUERY = r'''
import json, resource, sys, time
t0 = time.perf_counter()
from rag.engine import Paperchat
home, url, queries = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3])
pc = Paperchat(home=home, chroma_url=url)
retr = pc.retriever("hybrid", top_k=5)
retr.hits(queries[0])
open_s = time.perf_counter() - t0
lat, cpu = [], []
for q in queries:
    t, c = time.perf_counter(), time.process_time()
    retr.hits(q)
    lat.append((time.perf_counter() - t) * 1000); cpu.append((time.process_time() - c) * 1000)
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
print(json.dumps({"open_s": open_s, "lat_ms": lat, "cpu_ms": cpu, "rss_mb": rss, "papers": pc.stats()["papers"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Results:
    """results.json in the work directory: what has been measured, so a rerun skips it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)
        log(f"{key}: {json.dumps(value)[:600]}")


def env_for(home: Path, cache: Path, pool: Path | None = None, url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PAPERCHAT_HOME": str(home), "PAPERCHAT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1",
           "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)}
    env.pop("PAPERCHAT_CHROMA_URL", None)
    if pool is not None:
        env["SCALE_BENCH_POOL"] = str(pool)
    if url:
        env["PAPERCHAT_CHROMA_URL"] = url
    return env


def normal_priority() -> None:
    """Query timings run at normal priority even when the benchmark runs under nice (if allowed)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass


def cli(args: list[str], env: dict[str, str], progress: bool = True) -> dict[str, Any]:
    """Run `paperchat ARGS` in a child: wall time, exit code, peak RSS; its stderr (progress bar) shows."""
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CLI, *args], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=None if progress else subprocess.DEVNULL, text=True, check=False)
    last = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"rc": out.returncode}
    return {**last, "wall_s": round(time.perf_counter() - t, 2), "stdout": out.stdout[-400:], "out": out.stdout}


def timed_ingest(data: Path, home: Path, env: dict[str, str], url: str | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", INGEST, str(data), str(home), url or ""], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def query_process(home: Path, cache: Path, queries: list[str], url: str | None = None,
                  src: Path = ROOT) -> dict[str, Any]:
    """Hybrid retrieval timed in a new process (code from the source tree `src`)."""
    env = {**env_for(home, cache, url=url), "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", QUERY, str(home), url or "", json.dumps(queries)],
                         env=env, cwd=src, capture_output=True, text=True, check=True,
                         preexec_fn=normal_priority)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {"papers": r["papers"], "open_s": round(r["open_s"], 2),
            "p50_ms": round(percentile(r["lat_ms"], 50), 1), "p95_ms": round(percentile(r["lat_ms"], 95), 1),
            "cpu_p50_ms": round(percentile(r["cpu_ms"], 50), 1), "cpu_p95_ms": round(percentile(r["cpu_ms"], 95), 1),
            "rss_mb": round(r["rss_mb"]), "peak_rss_mb": round(r["peak_rss_mb"])}


def cold_ask(home: Path, cache: Path) -> float:
    """Best of 3 wall times of `paperchat ask` in a new process, question to printed answer."""
    best = 1e9
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rag.cli", "ask", QUERIES[0]], env=env_for(home, cache), cwd=ROOT,
                       capture_output=True, check=True, preexec_fn=normal_priority)
        best = min(best, time.perf_counter() - t)
    return round(best, 2)


# `paperchat ask` as `python -m rag.cli` runs it, writing at exit how long each of its live threads sat runnable
# waiting for a CPU (/proc schedstat, ns): what the load added to its wall time
ASK = r'''
import atexit, json, os, runpy, sys
def _queued():
    waits = {}
    for task in os.listdir("/proc/self/task"):
        try:
            waits[task] = int(open(f"/proc/self/task/{task}/schedstat").read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    with open(os.environ["SCALE_QUEUED_OUT"], "w") as f:
        json.dump({"main": waits.get(str(os.getpid()), 0) / 1e9, "all": sum(waits.values()) / 1e9,
                   "threads": len(waits)}, f)
atexit.register(_queued)
sys.argv = ["paperchat", *sys.argv[1:]]
runpy.run_module("rag.cli", run_name="__main__")
'''


def cold_ask_usage(home: Path, cache: Path, src: Path = ROOT, question: str = QUERIES[0]) -> dict[str, float]:
    """One `paperchat ask` in a new process (code from `src`): its wall time, CPU time (user + sys, all
    threads) and peak RSS from wait4 (CPU and RSS do not depend on what else runs on the machine), and
    the wall time minus the time its threads sat runnable waiting for a CPU: bounds of the wall time on an
    idle machine. Minus the main thread's wait errs high (a thread it waits for may have been queued too);
    minus every live thread's wait errs low (queued threads may have overlapped; threads gone before exit
    are not counted)."""
    out = Path(tempfile.mkstemp(prefix="scale-queued-", suffix=".json")[1])
    env = {**env_for(home, cache), "PYTHONPATH": str(src), "SCALE_QUEUED_OUT": str(out)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", ASK, "ask", question], env=env, cwd=src,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=normal_priority)
    _, status, ru = os.wait4(proc.pid, 0)  # this child's own CPU time and peak RSS
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"paperchat ask failed (rc {proc.returncode}) with the code in {src}")
    try:
        q = json.loads(out.read_text())
    except (OSError, ValueError):
        q = {"main": float("nan"), "all": float("nan"), "threads": 0}
    out.unlink(missing_ok=True)
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2), "rss_mb": round(ru.ru_maxrss / 1024),
            "queued_main_s": round(q["main"], 2), "queued_all_s": round(q["all"], 2),
            "idle_wall_high_s": round(wall - q["main"], 2), "idle_wall_low_s": round(wall - q["all"], 2)}


def write_slice(src: Path, dst: Path, start: int, stop: int) -> int:
    """Records [start, stop) of a JSONL(.gz) file as plain JSONL."""
    if dst.exists():
        return sum(1 for _ in dst.open())
    n = 0
    opener = gzip.open if src.suffix == ".gz" else open
    tmp = dst.with_suffix(".tmp")
    with opener(src, "rt", encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            if i >= stop:
                break
            if i >= start:
                fout.write(line)
                n += 1
    os.replace(tmp, dst)
    return n


def titles(path: Path, n: int, seed: int = 0) -> list[str]:
    rows = [json.loads(line).get("title", "") for line in path.open()]
    return [t for t in random.Random(seed).sample(rows, min(n, len(rows))) if t]


def queries_for(slice_file: Path) -> list[str]:
    """The bench's 20 questions twice, plus 60 titles of stored papers (what a user searching types)."""
    return QUERIES * 2 + titles(slice_file, 60)


# --- stages ---------------------------------------------------------------------------------
def stage_slice(a: argparse.Namespace, res: Results) -> None:
    if "slice" in res:
        return
    data = a.work / "slice-2000.jsonl"
    n = write_slice(a.records, data, 0, a.slice)
    rows: dict[str, Any] = {}
    for name, code in (("paperchat", None), ("plain llama-index", PLAIN)):
        home = a.work / f"slice-{name.split()[0]}"
        shutil.rmtree(home, ignore_errors=True)
        log(f"slice: {name} ingesting {n} records from scratch ({cpu_line()})")
        r = run_side(code or OURS, data, home)  # eval.bench's two sides: model loaded, then ingest timed
        r.pop("lat_ms", None)
        r["abstracts_per_s"] = round(n / r["ingest_s"], 1)
        rows[name] = r
    rows["ratio_abstracts_per_s"] = round(rows["paperchat"]["abstracts_per_s"] / rows["plain llama-index"]["abstracts_per_s"], 2)
    rows["cpu"] = cpu_line()
    res.put("slice", rows)


def stage_query(a: argparse.Namespace, res: Results) -> None:
    """The query process on an existing collection (<work>/home, <work>/cache), measured every run.

    Cold `paperchat ask` (CPU, peak RSS, wall; --repeat runs) and a query process (hybrid p50/p95, RSS).
    With --baseline-src DIR (a source tree of another commit, e.g. from `git archive`), the same figures
    for that code, interleaved run by run so that a changing load hits both sides alike."""
    home, cache = a.work / "home", a.work / "cache"
    if not home.exists():
        raise SystemExit(f"{home} does not exist: run the grow stage first (or copy a home there)")
    sides = {"now": ROOT, **({"baseline": a.baseline_src.resolve()} if a.baseline_src else {})}
    firsts = sorted(a.work.glob("first-*.jsonl"), key=lambda f: int(f.stem.split("-")[1]))
    queries = queries_for(firsts[-1]) if firsts else QUERIES * 2
    asks: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    procs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    log(f"query: {len(sides)} side(s), {a.repeat} rounds ({cpu_line()})")
    for _ in range(a.repeat):
        for name, src in sides.items():
            asks[name].append(cold_ask_usage(home, cache, src))
        for name, src in sides.items():
            if len(procs[name]) < 2:
                procs[name].append(query_process(home, cache, queries, src=src))
    rows: dict[str, Any] = {}
    for name, src in sides.items():
        runs = asks[name]
        rows[name] = {
            "src": str(src),
            "cold_ask": {
                "cpu_s_median": round(percentile([r["cpu_s"] for r in runs], 50), 2),
                "cpu_s_min": min(r["cpu_s"] for r in runs),
                "rss_mb_max": max(r["rss_mb"] for r in runs),
                "wall_s_median": round(percentile([r["wall_s"] for r in runs], 50), 2),
                "wall_s_min": min(r["wall_s"] for r in runs),
                "idle_wall_high_s_median": round(percentile([r["idle_wall_high_s"] for r in runs], 50), 2),
                "idle_wall_low_s_median": round(percentile([r["idle_wall_low_s"] for r in runs], 50), 2),
                "runs": runs},
            "query": min(procs[name], key=lambda q: q["cpu_p95_ms"]),  # the less disturbed of two processes
            "query_rss_mb_max": max(q["rss_mb"] for q in procs[name]),
        }
    rows["cpu"] = cpu_line()
    res.put("query", rows)


# torch's OpenMP threads spin-wait between runs: on a loaded machine that inflates CPU time ~10x (issue 13's
# tests); both sides of the add-100 comparison run without spinning, so their CPU times compare
QUIET_OMP = {"OMP_WAIT_POLICY": "PASSIVE"}


def from_scratch(a: argparse.Namespace, home: Path) -> dict[str, Any]:
    """paperchat indexing the first 2,000 records from scratch (empty home and embedding cache, real model)."""
    data = a.work / "slice-2000.jsonl"
    write_slice(a.records, data, 0, a.slice)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log(f"from scratch: paperchat indexing {a.slice} records into an empty home ({cpu_line()})")
    return timed_ingest(data, home, {**env_for(home, home / "cache"), **QUIET_OMP})


def make_pool(a: argparse.Namespace) -> Path:
    """Real MiniLM chunk vectors of a 2,000-record collection (the recycled-vector pool)."""
    pool = a.work / "pool.npy"
    if not pool.exists():
        import chromadb
        import numpy as np
        from chromadb.config import Settings as CS

        src = a.work / "slice-paperchat"
        if not (src / "chroma").exists():
            src = a.work / "scratch-2000"
            if not (src / "chroma").exists():
                from_scratch(a, src)
        client = chromadb.PersistentClient(path=str(src / "chroma"), settings=CS(anonymized_telemetry=False))
        col = client.get_collection(client.list_collections()[0].name)
        got = col.get(include=["embeddings"], limit=5000)
        np.save(pool, np.asarray(got["embeddings"], dtype=np.float32))
    return pool


def stage_grow(a: argparse.Namespace, res: Results) -> None:
    home, cache = a.work / "home", a.work / "cache"
    pool = make_pool(a) if a.vectors == "recycled" else None
    if pool is not None:
        # the query model (ONNX) is exported by an ingest that embeds for real; with recycled vectors do it here
        from ingest.embeddings import LocalEmbedding

        emb = LocalEmbedding(cache_path=cache / "embeddings.sqlite")
        emb.ensure_query_model()
        emb.wait_query_model(600)
    for p in a.points:
        key = f"grow:{p}"
        if key in res:
            continue
        data = a.work / f"first-{p}.jsonl"
        n = write_slice(a.records, data, 0, p)
        log(f"grow: ingest the first {n} records ({cpu_line()})")
        r = cli(["ingest", str(data), "--home", str(home)], env_for(home, cache, pool))
        if r.get("rc") != 0:
            raise SystemExit(f"ingest failed: {r}")
        row = {"records": n, "ingest_wall_s": r["wall_s"], "ingest_peak_rss_mb": round(r["peak_rss_mb"]),
               "summary": r["stdout"].strip().splitlines()[0][-200:] if r["stdout"].strip() else "",
               "vectors": a.vectors}
        row["query"] = query_process(home, cache, queries_for(data))
        row["cold_ask_s"] = cold_ask(home, cache)
        row["disk_mb"] = {d.name: round(sum(f.stat().st_size for f in d.rglob("*") if f.is_file()) / 1e6)
                          for d in (home / "chroma", home / "bm25") if d.exists()}
        row["cpu"] = cpu_line()
        res.put(key, row)


def stage_add100(a: argparse.Namespace, res: Results) -> None:
    """100 new papers (real model, empty embedding cache) added to the big collection, against paperchat
    indexing 2,000 from scratch the same way, right before it (same load): wall and CPU time, their ratio."""
    if "add100" in res:
        return
    home = a.work / "home"
    last = a.points[-1]
    data = a.work / "extra-100.jsonl"
    write_slice(a.records, data, last, last + 100)
    if sum(1 for _ in data.open()) < 100:  # the file has no 100 records past the last point: use fresh ids
        write_slice(a.records, a.work / "slice-2000.jsonl", 0, a.slice)
        rows = [json.loads(line) for line in (a.work / "slice-2000.jsonl").open()][:100]
        data.write_text("".join(json.dumps({**r, "id": f"scale.{i:05d}", "title": r["title"] + " (new)"}) + "\n"
                                for i, r in enumerate(rows)))
    base = from_scratch(a, a.work / "scratch-2000-add100")
    cache = a.work / "cache-add100"
    shutil.rmtree(cache, ignore_errors=True)
    log(f"add100: adding 100 new papers to the {last} collection ({cpu_line()})")
    env = {**env_for(home, cache), **QUIET_OMP}
    if a.profile:
        env["SCALE_PROFILE"] = str(a.work / "add100.prof")
    r = timed_ingest(data, home, env)
    row = {"add_100_s": round(r["ingest_s"], 2), "add_100_cpu_s": round(r["cpu_s"], 2), "summary": r["summary"],
           "peak_rss_mb": round(r["peak_rss_mb"]), "index_2000_from_scratch_s": round(base["ingest_s"], 2),
           "index_2000_from_scratch_cpu_s": round(base["cpu_s"], 2), "from_scratch_summary": base["summary"],
           "vectors": "real (the model embeds the 100 and the 2,000; empty caches)",
           "ratio_wall": round(r["ingest_s"] / base["ingest_s"], 3),
           "ratio_cpu": round(r["cpu_s"] / base["cpu_s"], 3), "cpu": cpu_line()}
    res.put("add100", row)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stage_server(a: argparse.Namespace, res: Results) -> None:
    if "server" in res:
        return
    home, cache = a.work / "home", a.work / "cache"
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or "chroma"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([chroma, "run", "--path", str(home / "chroma"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        row: dict[str, Any] = {"cpu": cpu_line()}
        c1, c2 = a.work / "client1", a.work / "client2"
        for c in (c1, c2):
            shutil.rmtree(c, ignore_errors=True)
        data = a.work / f"first-{a.points[-1]}.jsonl"
        log("server: first client builds its lexical index from the server")
        t = time.perf_counter()
        r = cli(["stats", "--home", str(c1)], env_for(c1, cache, url=url), progress=False)
        row["client_build_lexical_s"] = round(time.perf_counter() - t, 1)
        row["client_build_peak_rss_mb"] = round(r.get("peak_rss_mb", 0))
        row["query"] = query_process(c1, cache, queries_for(data), url=url)
        cli(["stats", "--home", str(c2)], env_for(c2, cache, url=url), progress=False)
        extra = a.work / "server-extra-100.jsonl"
        rows = [json.loads(line) for line in (a.work / "slice-2000.jsonl").open()][100:200]
        extra.write_text("".join(json.dumps({**x, "id": f"server.{i:05d}", "title": x["title"] + " (server)"}) + "\n"
                                 for i, x in enumerate(rows)))
        pool = make_pool(a) if a.vectors == "recycled" else None
        log("server: client 1 adds 100 papers; client 2 syncs")
        r = cli(["ingest", str(extra), "--home", str(c1)], env_for(c1, a.work / "cache-server", pool, url=url))
        row["client1_add_100_s"] = r["wall_s"]
        t = time.perf_counter()
        r = cli(["stats", "--home", str(c2), "--json"], env_for(c2, cache, url=url), progress=False)
        row["client2_sync_s"] = round(time.perf_counter() - t, 1)
        row["client2_stats"] = r["stdout"][-300:]
        res.put("server", row)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def expected_counts(files: list[Path]) -> tuple[int, int]:
    """Papers and chunks a clean ingest of these files stores (the first of duplicate ids wins)."""
    from ingest.chunking import chunk_paper
    from ingest.embeddings import LocalEmbedding
    from ingest.readers import Located, read_path

    emb = LocalEmbedding()
    seen: set[str] = set()
    chunks = 0
    for f in files:
        for it in read_path(f):
            if isinstance(it, Located) and it.paper.paper_id not in seen:
                seen.add(it.paper.paper_id)
                chunks += len(chunk_paper(it.paper, window_tokens=emb.window_tokens))
    return len(seen), chunks


def kill_records(src: Path, dst: Path) -> int:
    """The kill stage's records: the slice's under new ids and titles no stored paper (or other record) has.

    Ingest dedups by id and by normalised title (titles of 24+ characters and 3+ words, ingest.dedup), so a
    record is new only when both differ: "<title> (kill-stage record N)" is unique and always long enough."""
    rows = [json.loads(line) for line in src.open()]
    dst.write_text("".join(json.dumps({**r, "id": f"killstage.{i:05d}", "title": f"{r['title']} (kill-stage record {i})"})
                           + "\n" for i, r in enumerate(rows)))
    return len(rows)


def lexical_rows(home: Path) -> int:
    """Papers in the home's SQLite lexical table (read-only; 0 while there is none)."""
    import sqlite3

    for db in (home / "bm25").glob("*/bm25.sqlite"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return int(con.execute("SELECT COUNT(*) FROM docs").fetchone()[0])
        finally:
            con.close()
    return 0


def stats_of(home: Path, env: dict[str, str]) -> dict[str, Any]:
    st = cli(["stats", "--json", "--home", str(home)], env, progress=False)
    body = st["out"].strip().splitlines()[:-1]  # the last line is the child wrapper's own report
    return json.loads("\n".join(body)) if body else {}


def stage_kill(a: argparse.Namespace, res: Results) -> None:
    """kill -9 of an ingest of 2,000 new records into a fresh copy of the big collection, a rerun, exact counts.

    Every run starts from a copy of --kill-base (default <work>/home-snap, else <work>/home), so runs do not
    depend on each other; the expected counts are the copy's own plus every record (all new to it)."""
    key = f"kill:seed{a.seed}"
    if key in res:
        return
    base = a.kill_base or (a.work / "home-snap" if (a.work / "home-snap").exists() else a.work / "home")
    home = a.work / "kill-home"
    shutil.rmtree(home, ignore_errors=True)
    log(f"kill: fresh copy of {base}")
    shutil.copytree(base, home, symlinks=True)
    write_slice(a.records, a.work / "slice-2000.jsonl", 0, a.slice)
    data = a.work / "kill-records.jsonl"
    n = kill_records(a.work / "slice-2000.jsonl", data)
    pool = make_pool(a) if a.vectors == "recycled" else None
    env = env_for(home, a.work / "cache-kill", pool)
    shutil.rmtree(a.work / "cache-kill", ignore_errors=True)
    before = stats_of(home, env_for(home, a.work / "cache"))
    new_papers, new_chunks = expected_counts([data])
    proc = subprocess.Popen([sys.executable, "-c", CLI, "ingest", str(data), "--home", str(home), "--quiet"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the kill point: once a random number of the records is committed (the lexical table grows in step with
    # Chroma), plus a random part of a batch's time, so it lands mid-ingest whatever the machine's load
    rnd = random.Random(a.seed)
    target, extra = rnd.randrange(0, n - 256), rnd.uniform(0, 2)
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() < t0 + 1800 and not any((home / "bm25").glob("*DIRTY*")):
        time.sleep(0.05)  # the marker: the writer is about to write its first batch
    while proc.poll() is None and time.monotonic() < t0 + 1800 and lexical_rows(home) - before.get("papers", 0) < target:
        time.sleep(0.1)
    time.sleep(extra)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = lexical_rows(home) - before.get("papers", 0)
    log(f"kill: {'killed' if killed else 'finished before'} at {at_kill} of {n} records committed "
        f"({time.monotonic() - t0:.1f} s); doctor, then rerun")
    left = subprocess.run([sys.executable, "-m", "rag.cli", "doctor", "--no-repair", "--home", str(home)],
                          env=env_for(home, a.work / "cache"), cwd=ROOT, capture_output=True, text=True, check=False)
    r = cli(["ingest", str(data), "--home", str(home), "--json"], env)
    report = json.loads("\n".join(r["out"].strip().splitlines()[:-1]) or "{}")
    after = stats_of(home, env_for(home, a.work / "cache"))
    doc = subprocess.run([sys.executable, "-m", "rag.cli", "doctor", "--no-repair", "--home", str(home)],
                         env=env_for(home, a.work / "cache"), cwd=ROOT, capture_output=True, text=True, check=False)
    want_papers, want_chunks = before.get("papers", 0) + new_papers, before.get("chunks", 0) + new_chunks
    seen = sum(int(report.get(k, 0)) for k in ("added", "updated", "unchanged"))
    row = {"killed": killed, "kill_target": target, "committed_at_kill": at_kill, "records": n, "base": str(base),
           "after_kill_doctor_rc": left.returncode, "after_kill_doctor": left.stdout.strip().splitlines()[:4],
           "base_papers": before.get("papers"), "base_chunks": before.get("chunks"),
           "rerun": {k: report.get(k) for k in ("added", "updated", "unchanged", "duplicates", "rejected")},
           "rerun_s": r["wall_s"], "papers": after.get("papers"), "chunks": after.get("chunks"),
           "expected_papers": want_papers, "expected_chunks": want_chunks,
           "exact": (after.get("papers"), after.get("chunks")) == (want_papers, want_chunks) and seen == n
           and report.get("duplicates") == 0 and not report.get("rejected"),
           "doctor_rc": doc.returncode, "doctor": doc.stdout.strip().splitlines()[-1:] if doc.stdout else [],
           "cpu": cpu_line()}
    res.put(key, row)


def fit(res: Results) -> dict[str, Any]:
    """Least-squares lines through the measured points (papers -> p95, RSS) and their value at 1M."""
    import numpy as np

    pts = sorted((v["records"], v["query"]) for k, v in res.data.items() if k.startswith("grow:"))
    if len(pts) < 2:
        return {}
    x = np.array([p for p, _ in pts], dtype=float)
    out: dict[str, Any] = {"points": [int(p) for p in x]}
    for key in ("p95_ms", "cpu_p95_ms", "rss_mb"):
        y = np.array([q[key] for _, q in pts], dtype=float)
        slope, icpt = np.polyfit(x, y, 1)
        out[key] = {"per_10k": round(slope * 1e4, 2), "at_0": round(icpt, 1), "at_1M": round(icpt + slope * 1e6, 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=Path, default=ROOT.parent / "shared" / "data" / "arxiv-75k.jsonl.gz")
    p.add_argument("--work", type=Path, default=Path("/tmp/paperchat-scale"))
    p.add_argument("--points", default="10000,25000,50000,75000")
    p.add_argument("--vectors", choices=["real", "recycled"], default="real")
    p.add_argument("--stages", default="slice,grow,add100,server,kill")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slice", type=int, default=2000, help="records in the plain-vs-paperchat slice (2000)")
    p.add_argument("--kill-base", type=Path, default=None,
                   help="kill: the collection each run copies (default <work>/home-snap, else <work>/home)")
    p.add_argument("--profile", action="store_true", help="add100: write a cProfile of the add to <work>/add100.prof")
    p.add_argument("--repeat", type=int, default=5, help="cold asks per side in the query stage (5)")
    p.add_argument("--baseline-src", type=Path, default=None,
                   help="query stage: also measure this source tree (e.g. `git archive COMMIT | tar -x -C DIR`)")
    a = p.parse_args(argv)
    a.points = [int(x) for x in a.points.split(",")]
    a.work.mkdir(parents=True, exist_ok=True)
    res = Results(a.work / "results.json")
    log(cpu_line())
    stages = {"slice": stage_slice, "grow": stage_grow, "add100": stage_add100, "server": stage_server,
              "kill": stage_kill, "query": stage_query}
    for name in a.stages.split(","):
        stages[name](a, res)
    res.put("fit", fit(res))
    res.put("peak_rss_mb_this_process", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print(json.dumps(res.data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
