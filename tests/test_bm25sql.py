"""The incremental SQLite BM25 index: same scores as bm25s, exact after adds/updates/deletes, crash-safe."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ingest.bm25sql import IndexDoc, SqliteBm25, Tokenizer
from tests.conftest import ROOT

WORDS = ["attention", "graph", "speech", "protein", "code", "reinforcement", "segmentation", "translation",
         "forecasting", "federated", "diffusion", "retrieval", "quantization", "robot", "recommender", "causal",
         "weather", "theorem", "transformer", "kernel", "sparse", "dense", "contrastive", "distillation", "adapters",
         "curriculum", "bayesian", "optimisation", "benchmark", "dataset", "studies", "studied", "studying",
         "networks", "learning", "models"]
QUERIES = ["sparse attention transformer", "protein folding with diffusion models", "studies of speech",
           "graph graph networks", "the of and", "bayesian optimisation benchmark dataset", "unknownword"]


def doc(i: int, rnd: random.Random, version: int = 0) -> IndexDoc:
    n = rnd.randint(3, 60)
    text = f"Paper {i} v{version}. " + " ".join(rnd.choice(WORDS) for _ in range(n))
    return IndexDoc(f"p{i}", text, 2000 + i % 25, (f"cs.{'LG' if i % 2 else 'CL'}",) + (("stat.ML",) if i % 5 == 0 else ()),
                    content_hash=f"h{i}.{version}", title=f"Paper {i:03d} v{version}", authors=f"Author {i % 7}")


def content_fingerprint(docs: list[IndexDoc]) -> str:
    from ingest.bm25sql import fingerprint_term

    return f"{len(docs)}-{sum(fingerprint_term(d.paper_id, d.content_hash) for d in docs) % (1 << 128):032x}"


def reference_scores(docs: list[IndexDoc], query: str) -> dict[str, float]:
    """bm25s itself (the engine this index replaces) over the same documents."""
    import bm25s
    import Stemmer

    model = bm25s.BM25()
    model.index(bm25s.tokenize([d.text for d in docs], stopwords="en", stemmer=Stemmer.Stemmer("english"),
                               show_progress=False), show_progress=False)
    q = bm25s.tokenize([query], stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False,
                       return_ids=False)[0]
    if not q:
        return {}
    scores = model.get_scores(q)
    return {d.paper_id: float(s) for d, s in zip(docs, scores) if s > 0}


def assert_same(ix: SqliteBm25, docs: list[IndexDoc]) -> None:
    assert ix.count() == len(docs)
    assert ix.paper_ids() == sorted(d.paper_id for d in docs)
    for q in QUERIES:
        want = reference_scores(docs, q)
        got = dict(ix.search(q, 1000))
        assert set(got) == set(want), q
        for pid, s in want.items():
            assert got[pid] == pytest.approx(s, rel=1e-4, abs=1e-5), (q, pid)


def test_tokenizer_matches_bm25s() -> None:
    import bm25s
    import Stemmer

    text = "The Studies of networks: we studied 3D-ViT models, Naïve Bayes and x_y tokens; A I."
    want = bm25s.tokenize([text], stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False,
                          return_ids=False)[0]
    assert Tokenizer()(text) == want


def test_stopwords_are_bm25s_without_importing_it() -> None:
    """The query path reads bm25s' stop words without `import bm25s` (which imports scipy: ~0.5 s, issue 15)."""
    code = ("import sys; from ingest.bm25sql import Tokenizer; from rag.relevance import content_words; "
            "Tokenizer()('the networks'); content_words('why do the networks grok?'); "
            "print('bm25s' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    from bm25s.stopwords import STOPWORDS_EN

    from ingest.lexical import english_stopwords

    assert english_stopwords() == frozenset(STOPWORDS_EN)


def test_scores_equal_bm25s_after_adds_updates_and_deletes(tmp_path: Path) -> None:
    rnd = random.Random(7)
    ix = SqliteBm25.empty(tmp_path / "ix")
    live: dict[str, IndexDoc] = {}
    for step in range(12):  # small batches: many blocks per term, merges and dead postings
        batch = [doc(i, rnd, version=step) for i in rnd.sample(range(120), 15)]
        gone = [f"p{i}" for i in rnd.sample(range(120), 4)]
        ix.add(batch, fingerprint=f"fp{step}", n_chunks=step)
        live.update((d.paper_id, d) for d in batch)
        ix.delete(gone)
        for g in gone:
            live.pop(g, None)
    assert_same(ix, list(live.values()))
    assert ix.versions()[next(iter(live))][0].startswith("h")
    assert ix.n_chunks() == 11 and ix.fingerprint() == content_fingerprint(list(live.values()))
    # another handle on the same file (another process would do the same) sees the same index
    assert_same(SqliteBm25.open(tmp_path / "ix"), list(live.values()))
    # a rebuild gives the same scores
    ix.rebuild(live.values(), "fpR", 3)
    assert_same(ix, list(live.values()))
    assert (ix.fingerprint(), ix.n_chunks()) == (content_fingerprint(list(live.values())), 3)
    # the paper table pages and searches in SQL
    rows = sorted(live.values(), key=lambda d: (d.title.lower(), d.paper_id))
    assert ix.count_papers() == len(rows)
    assert [r["paper_id"] for r in ix.list_papers(limit=5, offset=3)] == [d.paper_id for d in rows[3:8]]
    def text(d: IndexDoc) -> str:
        return f"{d.paper_id} {d.title} {d.authors} {' '.join(d.categories)}".lower()
    hits = [d for d in rows if "author" in text(d) and "3" in text(d)]  # every word, anywhere
    assert ix.count_papers("AUTHOR 3") == len(hits)
    assert [r["paper_id"] for r in ix.list_papers("author 3", limit=100)] == [d.paper_id for d in hits]
    assert ix.list_papers("author 3 cs.lg", limit=1)[0]["categories"].startswith("cs.LG")
    # the picker's search: the typed text inside the title, as typed (not words anywhere, not the authors)
    in_title = [d.paper_id for d in rows if "er 01" in d.title.lower()]
    assert [r["paper_id"] for r in ix.find_titles("ER 01", 100)] == in_title and in_title
    assert ix.find_titles("author 3", 5) == [] and len(ix.find_titles("", 7)) == 7
    assert "stat.ML" in ix.categories()


def test_filters_apply_inside_scoring(tmp_path: Path) -> None:
    rnd = random.Random(3)
    docs = [doc(i, rnd) for i in range(60)]
    ix = SqliteBm25.empty(tmp_path / "ix").add(docs)
    from ingest.lexical import Filters

    by_id = {d.paper_id: d for d in docs}
    q = "attention graph speech protein"
    all_hits = ix.search(q, 100)
    for f in (Filters(year_from=2010), Filters(year_to=2005), Filters(categories=("stat.ML",)),
              Filters(paper_ids=("p3", "p4", "p40")), Filters(year_from=2003, categories=("cs.CL",))):
        got = ix.search(q, 100, f)

        def ok(d: IndexDoc, f: Filters = f) -> bool:
            return ((f.year_from is None or (d.year or 0) >= f.year_from)
                    and (f.year_to is None or (d.year or 9999) <= f.year_to)
                    and (not f.categories or bool(set(d.categories) & set(f.categories)))
                    and (not f.paper_ids or d.paper_id in f.paper_ids))
        assert [p for p, _ in got] == [p for p, _ in all_hits if ok(by_id[p])], f


def test_open_missing_or_damaged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SqliteBm25.open(tmp_path / "none")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bm25.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ValueError):
        SqliteBm25.open(tmp_path / "bad")


CHILD = """
import sys, random
from pathlib import Path
from ingest.bm25sql import SqliteBm25, IndexDoc
ix = SqliteBm25.empty(Path(sys.argv[1]))
i = 0
while True:
    ix.begin([f"p{j}" for j in range(i, i + 50)])
    ix.add([IndexDoc(f"p{j}", f"paper {j} about sparse attention and graphs " * (1 + j % 7), 2020, ("cs.LG",))
            for j in range(i, i + 50)], fingerprint=str(i + 50), n_chunks=i + 50)
    i += 50
    print(i, flush=True)
"""


def test_kill_9_while_writing_leaves_whole_batches(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "ix")], cwd=ROOT, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    proc.stdout.readline()  # at least one batch committed
    time.sleep(random.uniform(0.05, 0.6))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ix = SqliteBm25.open(tmp_path / "ix")
    n = ix.count()
    assert n > 0 and n % 50 == 0
    assert ix.fingerprint().startswith(f"{n}-") and ix.n_chunks() == n  # metadata committed with its batch
    assert set(ix.pending()) <= {f"p{j}" for j in range(n, n + 50)}  # at most the batch that was cut
    assert ix._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    hits = ix.search("sparse attention", 10)
    assert len(hits) == 10
