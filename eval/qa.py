"""`paperchat eval qa`: run a QA dataset through the real engine and score retrieval, citations, answers,
faithfulness, abstention and latency.

Runs in a throwaway collection (a temp PAPERCHAT_HOME that reuses your embedding cache, so nothing already
embedded is embedded again) unless `use_index` / `--use-index` says to query the configured index as is.

Example:
    >>> from eval.qa import run_qa                                  # doctest: +SKIP
    >>> res = run_qa("seed", out="eval/results/seed-extractive")    # doctest: +SKIP
    >>> res.metrics["answerable"]["hit@1"]                          # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval import qa_metrics as M
from eval.datasets_loaders import KINDS, QADataset, load_dataset, resolve_gold_titles
from rag.relevance import MIN_EVIDENCE, strongest
from rag.settings import Settings
from rag.verify import SUPPORT_THRESHOLD

RANK_DEPTH = 10  # papers retrieved for the ranking metrics (hit@10, MRR@10)
THRESHOLDS = tuple(round(0.20 + 0.025 * i, 3) for i in range(17))  # 0.20 .. 0.60 for the abstention sweep
EVIDENCE_THRESHOLDS = tuple(round(0.45 + 0.02 * i, 2) for i in range(15))  # 0.45 .. 0.73 around MIN_EVIDENCE


@dataclass
class QAResult:
    """What a run produced: aggregate metrics, one row per question, the run's metadata and output dir."""

    metrics: dict[str, Any]
    rows: list[dict[str, Any]]
    meta: dict[str, Any]
    out: Path | None = None
    files: list[Path] = field(default_factory=list)


# --- settings overrides ------------------------------------------------------------------------------
def parse_config(values: list[str] | None) -> dict[str, Any]:
    """Settings overrides from `--config` values: a JSON object, a JSON file, or KEY=VALUE (repeatable)."""
    out: dict[str, Any] = {}
    for v in values or []:
        v = v.strip()
        if v.startswith("{"):
            obj = json.loads(v)
        elif "=" in v:
            key, val = v.split("=", 1)
            obj = {key.strip().replace("-", "_"): None if val.strip().lower() in ("", "null", "none") else val.strip()}
        elif Path(v).is_file():
            obj = json.loads(Path(v).read_text(encoding="utf-8"))
        else:
            raise ValueError(f"--config {v!r}: expected a JSON object, a JSON file or KEY=VALUE")
        if not isinstance(obj, dict):
            raise ValueError(f"--config {v!r}: expected a JSON object")
        out.update(obj)
    return out


# --- the run -----------------------------------------------------------------------------------------
def _titles_by_id(pc: Any) -> dict[str, str]:
    return {p["paper_id"]: p["title"] for p in pc.list_papers()}


def _open_engine(ds: QADataset, base: Settings, use_index: bool, workdir: Path | None,
                 progress: bool) -> tuple[Any, dict[str, Any]]:
    from rag.engine import Paperchat

    if use_index:
        pc = Paperchat(base)
        return pc, {"mode": "existing index", "home": str(base.home.resolve()), "collection": base.collection,
                    "papers": pc.count_papers()}
    assert workdir is not None
    cache_dir = (base.cache_dir or base.home / "cache").resolve()
    settings = base.model_copy(update={"home": workdir / "home", "cache_dir": cache_dir, "chroma_url": None,
                                       "collection": "eval"})
    pc = Paperchat(settings)
    paths = [Path(p) for p in ds.corpus_paths]
    if ds.corpus_records:
        corpus = workdir / "corpus.jsonl"
        with open(corpus, "w", encoding="utf-8") as fh:
            for rec in ds.corpus_records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        paths.append(corpus)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"corpus not found: {', '.join(missing)}")
    t0 = time.perf_counter()
    rep = pc.ingest(paths, progress=progress)
    if hasattr(pc.embed, "wait_query_model"):
        pc.embed.wait_query_model()  # the one-time background export would skew the latencies measured next
    info = {"mode": "throwaway collection", "cache": str(settings.cache_path), "corpus": [str(p) for p in ds.corpus_paths]
            + (["<dataset records>"] if ds.corpus_records else []), "added": rep.added, "rejected": len(rep.rejected),
            "papers": pc.count_papers(), "ingest_s": round(time.perf_counter() - t0, 2)}
    return pc, info


def claim_support_fn(embed: Any) -> Any:
    """`support(claim, cited texts)`: rag/verify.py's score of the claim against its best cited source."""
    from rag.types import Source
    from rag.verify import SupportScorer

    scorer = SupportScorer(embed)

    def support(claim: str, texts: Any) -> float:
        srcs = [Source(i + 1, f"s{i}", "", 1.0, t) for i, t in enumerate(texts)]
        return float(scorer.score([claim], srcs)[0].max())

    return support


def score_row(item: Any, ranked: list[str], ans: Any, top_k: int, judge: Any = None,
              support: Any = None) -> dict[str, float | None]:
    """Per-question metrics from the ranking (paper ids) and the Answer (None for retrieval-only rows)."""
    g = item.gold_ids
    m: dict[str, float | None] = {
        "hit@1": M.hit_at_k(ranked, g, 1), "hit@3": M.hit_at_k(ranked, g, 3), "hit@10": M.hit_at_k(ranked, g, 10),
        "recall@k": M.recall_at_k(ranked, g, top_k), "recall@10": M.recall_at_k(ranked, g, 10),
        "mrr": M.reciprocal_rank(ranked, g, RANK_DEPTH),
    }
    if ans is None:
        return m
    cited = [c.paper_id for c in ans.citations]
    texts = {s.n: s.text for s in ans.sources}
    m.update({
        "citation_precision": M.citation_precision(cited, g), "citation_recall": M.citation_recall(cited, g),
        "no_citation": M.no_citation(cited, ans.abstained),
        "key_fact_hit": M.key_fact_hit("" if ans.abstained else ans.answer, item.key_facts_any),  # declining misses
        "token_f1": M.answer_f1("" if ans.abstained else ans.answer, item.answer),
        "faithfulness_lexical": M.lexical_faithfulness(ans.answer, texts, ans.abstained),
        "faithfulness_llm": judge.faithfulness(ans.answer, texts, ans.abstained) if judge else None,
        "supported_claims": (M.supported_claims(ans.answer, texts, ans.abstained, support, SUPPORT_THRESHOLD)
                             if support else None),
        "yes_no_agreement": M.yes_no_agreement(ans.answer, item.extra.get("final_decision"), ans.abstained),
    })
    return m


def _row(item: Any, hits: list[Any], ans: Any, metrics: dict[str, Any], timings: dict[str, float],
         min_relevance: float = 0.0) -> dict[str, Any]:
    row: dict[str, Any] = {
        "qid": item.qid, "kind": item.kind, "question": item.question, "gold_ids": item.gold_ids,
        "gold_titles": item.gold_titles, "gold_ranks": M.gold_ranks([h.paper_id for h in hits], item.gold_ids),
        "retrieved": [{"paper_id": h.paper_id, "dense": h.dense, "title": h.title[:60]} for h in hits],
        "best_dense_top10": max((h.dense for h in hits), default=None),
    }
    if item.extra:
        row.update(item.extra)
    if ans is not None:
        row.update({
            "abstained": ans.abstained, "backend": ans.backend, "notice": ans.notice, "answer": ans.answer,
            "claims": [{"text": c.text, "citations": c.citations, "support": c.support, "supported": c.supported}
                       for c in ans.claims],
            "cited_ids": [c.paper_id for c in ans.citations],
            "best_dense": max((s.dense for s in ans.sources), default=None),  # one of the relevance gate's inputs
            "reference": item.answer, "key_facts_any": item.key_facts_any,
        })
        # what rag.relevance.relevant() compared (with sentence rescoring on, it also weighed displaced papers)
        evidence, stands = strongest(ans.sources, min_relevance)
        row.update({"gate_evidence": round(evidence, 4), "gate_standout": stands})
    row["metrics"] = metrics
    row["timings_ms"] = timings
    return row


PERCENTILES = (0, 10, 25, 50, 75, 90, 100)


def _groups(rows: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    """The rows that have `key`, split into answerable and out-of-corpus questions."""
    return {g: [r for r in rows if r.get(key) is not None and (r.get("kind") == "out_of_corpus") == (g == "out_of_corpus")]
            for g in ("answerable", "out_of_corpus")}


def _spread(vals: list[float]) -> dict[str, Any]:
    return {"n": len(vals), **{f"p{p}": _r(M.percentile(vals, p)) for p in PERCENTILES}}


def _share(rows: list[dict[str, Any]], refused: Callable[[dict[str, Any]], bool]) -> float | None:
    return _r(sum(refused(r) for r in rows) / len(rows)) if rows else None


def _dense_distribution(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Best dense cosine (max Source.dense of the answer's sources) for answerable vs out-of-corpus questions,
    and the abstention rates a pure threshold on it would give (the engine also abstains when the answerer
    finds nothing)."""
    groups = _groups(rows, "best_dense")
    out: dict[str, Any] = {name: _spread([r["best_dense"] for r in rs]) for name, rs in groups.items()}

    def refused(t: float) -> Callable[[dict[str, Any]], bool]:
        return lambda r: r["best_dense"] < t

    out["threshold_sweep"] = [{"threshold": t, "false_abstention": _share(groups["answerable"], refused(t)),
                               "correct_abstention": _share(groups["out_of_corpus"], refused(t))} for t in THRESHOLDS]
    return out


def _gate_distribution(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The relevance gate's evidence (rag.relevance.strongest) for answerable vs out-of-corpus questions, how many
    passed by a standout paper, and the abstention rates the gate would give at other MIN_EVIDENCE thresholds."""
    groups = _groups(rows, "gate_evidence")
    out: dict[str, Any] = {"min_evidence": MIN_EVIDENCE}
    for name, rs in groups.items():
        out[name] = {**_spread([r["gate_evidence"] for r in rs]), "standout": sum(bool(r["gate_standout"]) for r in rs)}

    def refused(t: float) -> Callable[[dict[str, Any]], bool]:
        return lambda r: not r["gate_standout"] and r["gate_evidence"] < t

    out["threshold_sweep"] = [{"threshold": t, "false_abstention": _share(groups["answerable"], refused(t)),
                               "correct_abstention": _share(groups["out_of_corpus"], refused(t))}
                              for t in EVIDENCE_THRESHOLDS]
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def run_qa(dataset: str | Path | QADataset, out: str | Path | None = None, config: dict[str, Any] | None = None,
           corpus: list[str | Path] | None = None, limit: int | None = None, use_index: bool = False,
           settings: Settings | None = None, progress: bool = True, judge: bool = True) -> QAResult:
    """Run every question of `dataset` through the engine and score it; write the report to `out` when given.

    Args:
        dataset: a QADataset, a seed-format JSONL path, or a built-in name (seed, pubmedqa, scifact).
        out: report directory (report.json, report.md, rows.jsonl, PNG plots); None writes nothing.
        config: Settings overrides (e.g. {"llm": "gguf", "top_k": 8}); applied on top of `settings`/env.
        corpus: files or directories to ingest instead of the dataset's own corpus.
        limit: only the first N questions.
        use_index: query the configured index instead of a throwaway collection (nothing is ingested).
        settings: base settings (default: from the environment).
        progress: show tqdm progress bars on stderr.
        judge: use an LLM faithfulness judge when an LLM backend is configured.

    Returns:
        QAResult with `metrics` (all, answerable, per kind, latency, abstention calibration), `rows`, `meta`.
    """
    from tqdm import tqdm

    base = settings or Settings()
    if config:
        base = Settings(**{**base.model_dump(exclude_unset=True), **config})
    ds = dataset if isinstance(dataset, QADataset) else load_dataset(dataset)
    if corpus:  # replaces the dataset's own corpus
        ds.corpus_paths, ds.corpus_records = [Path(c) for c in corpus], []
    ds.limit(limit)
    if not ds.items:
        raise ValueError(f"dataset {ds.name} has no questions")
    workdir = None if use_index else Path(tempfile.mkdtemp(prefix="paperchat-eval-"))
    t_start = time.time()
    from eval.report import machine

    load_start = machine()["load_avg"]
    try:
        pc, index_info = _open_engine(ds, base, use_index, workdir, progress)
        unresolved: list[str] = []
        if any(it.gold_titles for it in ds.items):
            unresolved = resolve_gold_titles(ds.items, _titles_by_id(pc))
        the_judge = None
        if judge and not ds.retrieval_only and pc.settings.llm != "extractive":
            from eval.faithfulness import make_judge

            the_judge = make_judge(pc.settings, pc.answerer())
        support = None if ds.retrieval_only else claim_support_fn(pc.embed)
        top_k = pc.settings.top_k
        depth = max(RANK_DEPTH, top_k)
        rows: list[dict[str, Any]] = []
        errors = 0
        bar = tqdm(ds.items, desc=f"eval {ds.name}", unit="q", file=sys.stderr, disable=not progress)
        for item in bar:
            t0 = time.perf_counter()
            try:
                hits = pc.retrieve(item.question, k=depth)
                t_rank = (time.perf_counter() - t0) * 1000
                ans = None if ds.retrieval_only else pc.ask(item.question)
            except Exception as exc:  # noqa: BLE001 - one failing question must not end the run
                errors += 1
                rows.append({"qid": item.qid, "kind": item.kind, "question": item.question, "gold_ids": item.gold_ids,
                             "error": f"{type(exc).__name__}: {exc}", "metrics": {}, "timings_ms": {}})
                continue
            ranked = [h.paper_id for h in hits]
            timings = dict(ans.timings_ms) if ans is not None else {"retrieve": round(t_rank, 2), "total": round(t_rank, 2)}
            rows.append(_row(item, hits, ans, score_row(item, ranked, ans, top_k, the_judge, support), timings,
                             pc.settings.min_relevance))
        bar.close()
        metrics = summarize(rows, top_k, ds.retrieval_only)
        meta = {
            "dataset": {"name": ds.name, "source": ds.source, "sha256": ds.sha256, "questions": len(ds.items),
                        "retrieval_only": ds.retrieval_only, "unresolved_gold_titles": unresolved},
            "config": pc.settings.redacted(), "backend": "retrieval-only" if ds.retrieval_only else pc.answerer().name,
            "judge": {"lexical": f"overlap_score >= {M.SUPPORT_THRESHOLD} with a cited source",
                      "llm": the_judge.name if the_judge else None,
                      **({"llm_calls": the_judge.calls, "llm_errors": the_judge.errors} if the_judge else {})},
            "index": index_info, "errors": errors, "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t_start)),
            "duration_s": round(time.time() - t_start, 1),
            "machine": {**machine(), "load_avg_start": load_start},
        }
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    result = QAResult(metrics=metrics, rows=rows, meta=meta)
    if out is not None:
        from eval.report import write_report

        result.out = Path(out)
        result.files = write_report(result.out, result)
    return result


def summarize(rows: list[dict[str, Any]], top_k: int, retrieval_only: bool = False) -> dict[str, Any]:
    """Aggregate metrics: all questions, answerable ones, each kind; latency; abstention calibration."""
    ok = [r for r in rows if "error" not in r]
    kinds = sorted({r["kind"] for r in ok}, key=lambda k: (KINDS.index(k) if k in KINDS else len(KINDS), k))
    metrics: dict[str, Any] = {"top_k": top_k, "rank_depth": RANK_DEPTH, "all": M.aggregate(ok),
                               "answerable": M.aggregate([r for r in ok if r["kind"] != "out_of_corpus"]),
                               "by_kind": {k: M.aggregate([r for r in ok if r["kind"] == k]) for k in kinds},
                               "latency_ms": M.latency_summary(r["timings_ms"] for r in ok)}
    if not retrieval_only:
        metrics["best_dense"] = _dense_distribution(ok)
        metrics["gate"] = _gate_distribution(ok)
    return metrics


# --- command line ------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Run a QA dataset through paperchat and write report.json, report.md, rows.jsonl and plots."
    p.add_argument("--dataset", required=True,
                   help="seed-format JSONL file, or a built-in: seed, pubmedqa, scifact (retrieval only), beir:DIR")
    p.add_argument("--config", action="append", default=[],
                   help='settings overrides: KEY=VALUE, a JSON object or a JSON file (repeatable), e.g. llm=gguf')
    p.add_argument("--corpus", nargs="+", action="extend", default=[],
                   help="files/directories to ingest instead of the dataset's corpus (default for JSONL: data/sample)")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--out", required=True, type=Path, help="report directory")
    p.add_argument("--use-index", action="store_true",
                   help="query the configured index (PAPERCHAT_HOME / collection) instead of a throwaway collection")
    p.add_argument("--no-judge", action="store_true", help="skip the LLM faithfulness judge")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    res = run_qa(args.dataset, out=args.out, config=parse_config(args.config), corpus=args.corpus or None,
                 limit=args.limit, use_index=args.use_index, progress=not args.quiet, judge=not args.no_judge)
    from eval.report import headline

    print(headline(res))
    print(f"wrote {', '.join(str(f) for f in res.files)}")
    return 1 if res.meta["errors"] == len(res.rows) else 0
