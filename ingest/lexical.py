"""The lexical side of a collection: the `LexicalIndex` interface and its BM25 engine (bm25s + PyStemmer).

An index object is an immutable snapshot: readers search it with no lock while a writer builds the next
one, and the Collection swaps the reference. Engines persist atomically: each build goes to a new
version directory and a `current` symlink is replaced in one rename, so another process never opens a
half-written index.

Not llama-index's BM25Retriever.from_defaults(index=...): over a Chroma-backed index the docstore is
empty and it finds no nodes (llama_index #20601); we build BM25 from the stored papers instead.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ingest.filters import Filters

__all__ = ["Bm25Index", "Filters", "LexDoc", "LexicalIndex", "english_stopwords"]


@dataclass(frozen=True)
class LexDoc:
    """What the lexical index holds for one paper, and what its filters test."""

    paper_id: str
    text: str
    year: int | None
    categories: tuple[str, ...]
    # what an incremental engine also keeps: the version (for its fingerprint) and the paper-table columns
    content_hash: str = ""
    n_chunks: int = 1
    title: str = ""
    authors: str = ""
    date: str = ""
    url: str | None = None



def doc_of(paper: Any) -> LexDoc:
    """The lexical document of a stored paper (ingest.store.StoredPaper or anything with its attributes)."""
    return LexDoc(paper.paper_id, f"{paper.title}. {paper.abstract}", paper.year, tuple(str(paper.categories).split()),
                  paper.content_hash, 1, paper.title, paper.authors, paper.date or "", paper.url)

@runtime_checkable
class LexicalIndex(Protocol):
    """What a Collection needs from a lexical engine (BM25 today; an incremental engine can replace it).

    Read side (called concurrently, no lock): search, count, paper_ids, fingerprint, n_chunks.
    Write side (called only by the Collection's single writer): each returns a NEW index, persisted, and
    leaves `self` untouched, so readers holding it are unaffected. `add` adds or replaces (same paper_id)
    the given papers; `delete` removes papers by id. `incremental` False means add/delete are not supported
    and the Collection calls `rebuild` with every paper instead. Engines also provide the classmethods
    `open(directory)` (raising OSError/ValueError/KeyError when missing or damaged) and `empty(directory)`.
    """

    incremental: bool

    def search(self, query: str, k: int, filters: Filters = Filters()) -> list[tuple[str, float]]: ...
    def count(self) -> int: ...
    def paper_ids(self) -> Sequence[str]: ...
    def fingerprint(self) -> str: ...
    def n_chunks(self) -> int: ...
    def add(self, docs: Sequence[LexDoc], fingerprint: str, n_chunks: int) -> LexicalIndex: ...
    def delete(self, paper_ids: Sequence[str], fingerprint: str, n_chunks: int) -> LexicalIndex: ...
    def rebuild(self, docs: Iterable[LexDoc], fingerprint: str, n_chunks: int) -> LexicalIndex: ...


@lru_cache(maxsize=1)
def english_stopwords() -> frozenset[str]:
    """bm25s' English stop words (`bm25s.stopwords.STOPWORDS_EN`), read without importing the bm25s package.

    `import bm25s` imports scipy.sparse: ~0.5 s of CPU and ~10 MB in a `paperchat ask` that only needs this
    tuple (measured at 75k papers, issue 15). The module is plain data, executed from its file."""
    import importlib.util

    spec = importlib.util.find_spec("bm25s")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bm25s is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "stopwords.py"
    data = importlib.util.spec_from_file_location("_paperchat_bm25s_stopwords", path)
    if data is None or data.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(data)
    data.loader.exec_module(module)
    return frozenset(module.STOPWORDS_EN)


def _stemmer() -> object:  # a new one per call: PyStemmer objects are not thread-safe
    import Stemmer

    return Stemmer.Stemmer("english")


class Bm25Index:
    """BM25 over title + abstract, one document per paper; an immutable, loaded snapshot of `directory`."""

    incremental = False
    KEEP_VERSIONS = 2  # the newest two builds stay on disk (a reader may be opening the previous one)

    def __init__(self, directory: Path, bm25: Any = None, ids: Sequence[str] = (), years: Sequence[int] = (),
                 cats: Sequence[frozenset[str]] = (), fingerprint: str = "", n_chunks: int = 0) -> None:
        self.dir = directory
        self._bm25 = bm25
        self._ids = list(ids)
        self._years = np.asarray(years, dtype=np.int32)
        self._cats = list(cats)
        self._fp = fingerprint
        self._n_chunks = n_chunks
        self._row: dict[str, int] | None = None  # paper id -> document number, built at first coverage()

    # --- opening -----------------------------------------------------------
    @classmethod
    def open(cls, directory: Path) -> Bm25Index:
        """Load the current persisted version (memory-mapped). Raises OSError/ValueError when missing or damaged."""
        import bm25s

        version = (directory / "current").resolve(strict=True)
        meta = json.loads((version / "papers.json").read_text())
        papers = meta["papers"]
        bm25 = bm25s.BM25.load(str(version / "bm25"), mmap=True) if papers else None
        return cls(directory, bm25, [p[0] for p in papers], [p[1] if p[1] is not None else -1 for p in papers],
                   [frozenset(p[2]) for p in papers], str(meta["fingerprint"]), int(meta["n_chunks"]))

    @classmethod
    def empty(cls, directory: Path) -> Bm25Index:
        """An index with no papers that has never been written (fingerprint '' matches no collection)."""
        return cls(directory)

    # --- read side ---------------------------------------------------------
    def count(self) -> int:
        return len(self._ids)

    def paper_ids(self) -> Sequence[str]:
        return self._ids

    def fingerprint(self) -> str:
        return self._fp

    def n_chunks(self) -> int:
        return self._n_chunks

    def mask(self, filters: Filters) -> np.ndarray | None:
        """1.0 for papers passing the filters, 0.0 otherwise (None when no filter)."""
        if filters.empty():
            return None
        keep = np.ones(len(self._ids), dtype=bool)
        if filters.year_from is not None:
            keep &= self._years >= filters.year_from
        if filters.year_to is not None:
            keep &= (self._years <= filters.year_to) & (self._years >= 0)
        if filters.categories:
            wanted = set(filters.categories)
            keep &= np.array([bool(c & wanted) for c in self._cats], dtype=bool)
        if filters.paper_ids:
            wanted_ids = set(filters.paper_ids)
            keep &= np.array([p in wanted_ids for p in self._ids], dtype=bool)
        return keep.astype(np.float32)

    def coverage(self, words: Sequence[str], paper_ids: Sequence[str]) -> dict[str, float]:
        """IDF-weighted share of `words` (stemmed like the index) that each paper's title + abstract contains.

        A word absent from the collection weighs the most (df 0), so rare words of an off-collection
        question pull coverage down. Read from the posting lists (CSC columns): no text needed."""
        stems = set(_stemmer().stemWords([w.lower() for w in words]))  # type: ignore[attr-defined]
        if not stems or self._bm25 is None:
            return {pid: 0.0 for pid in paper_ids}
        if self._row is None:
            self._row = {pid: i for i, pid in enumerate(self._ids)}
        scores, vocab = self._bm25.scores, self._bm25.vocab_dict
        n = len(self._ids)
        rows = np.array([self._row.get(pid, -1) for pid in paper_ids])
        got, total = np.zeros(len(rows)), 0.0
        for stem in stems:
            tid = vocab.get(stem)
            lo, hi = (int(scores["indptr"][tid]), int(scores["indptr"][tid + 1])) if tid is not None else (0, 0)
            idf = math.log(1 + (n - (hi - lo) + 0.5) / ((hi - lo) + 0.5))  # BM25's idf
            total += idf
            if hi > lo:
                got += idf * np.isin(rows, scores["indices"][lo:hi])
        return {pid: float(g / total) for pid, g in zip(paper_ids, got)}

    def search(self, query: str, k: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
        """Top-k (paper_id, BM25 score) with score > 0, filters applied inside the scoring."""
        import bm25s

        if self._bm25 is None or not self._ids:
            return []
        q = bm25s.tokenize([query], stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False)
        terms = q[0] if q and q[0] else []
        if not terms:
            return []
        scores = self._bm25.get_scores(terms)
        m = self.mask(filters)
        if m is not None:
            scores = scores * m
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # --- write side --------------------------------------------------------
    def add(self, docs: Sequence[LexDoc], fingerprint: str, n_chunks: int) -> Bm25Index:
        raise NotImplementedError("Bm25Index is rebuilt whole (incremental = False)")

    def delete(self, paper_ids: Sequence[str], fingerprint: str, n_chunks: int) -> Bm25Index:
        raise NotImplementedError("Bm25Index is rebuilt whole (incremental = False)")

    def rebuild(self, docs: Iterable[LexDoc], fingerprint: str, n_chunks: int) -> Bm25Index:
        """Index every paper into a new version directory, point `current` at it, return it loaded."""
        import bm25s

        docs = list(docs)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"v{time.time_ns()}-{os.getpid()}"
        tmp = self.dir / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if docs:
            tokens = bm25s.tokenize([d.text for d in docs], stopwords="en", stemmer=_stemmer(), show_progress=False)
            model = bm25s.BM25()
            model.index(tokens, show_progress=False)
            model.save(str(tmp / "bm25"))
        meta = {"fingerprint": fingerprint, "n_chunks": n_chunks,
                "papers": [[d.paper_id, d.year, list(d.categories)] for d in docs]}
        (tmp / "papers.json").write_text(json.dumps(meta))
        os.replace(tmp, self.dir / name)
        link = self.dir / f".current.{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(name)
        os.replace(link, self.dir / "current")  # the one atomic step that publishes the new version
        self._prune(keep=name)
        return Bm25Index.open(self.dir)

    def _prune(self, keep: str) -> None:
        versions = sorted((p for p in self.dir.iterdir() if p.is_dir() and p.name.startswith("v")),
                          key=lambda p: p.stat().st_mtime_ns)
        for old in versions[: -self.KEEP_VERSIONS]:
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)
        for stray in self.dir.glob(".v*.tmp"):  # left by a killed writer (only the writer prunes)
            shutil.rmtree(stray, ignore_errors=True)
