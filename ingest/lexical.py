"""Paper-level BM25 (bm25s + PyStemmer) persisted beside Chroma, with filter masks.

Not llama-index's BM25Retriever.from_defaults(index=...): over a Chroma-backed index the docstore is
empty and it finds no nodes (llama_index #20601); we build BM25 from the stored papers instead.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIRTY = "DIRTY"


@dataclass(frozen=True)
class LexDoc:
    """What BM25 indexes for one paper, and what its filters test."""

    paper_id: str
    text: str
    year: int | None
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Filters:
    """Restrictions applied inside every retriever."""

    year_from: int | None = None
    year_to: int | None = None
    categories: tuple[str, ...] = ()
    paper_ids: tuple[str, ...] = ()

    def empty(self) -> bool:
        return self == Filters()


def _stemmer() -> object:  # a new one per call: PyStemmer objects are not thread-safe
    import Stemmer

    return Stemmer.Stemmer("english")


class LexicalIndex:
    """BM25 over title + abstract of every paper, one document per paper."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self._lock = threading.Lock()
        self._bm25: object | None = None
        self.ids: list[str] = []
        self._years = np.zeros(0)
        self._cats: list[frozenset[str]] = []
        self.n_chunks = -1

    # --- persistence -------------------------------------------------------
    def mark_dirty(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / DIRTY).write_text("an ingest is running or was interrupted\n")

    def is_dirty(self) -> bool:
        return (self.dir / DIRTY).exists() or not (self.dir / "papers.json").exists()

    def build(self, docs: Sequence[LexDoc], n_chunks: int) -> None:
        """Index docs and persist atomically (write to a temp dir, then swap)."""
        import bm25s

        tmp = self.dir.with_name(f"{self.dir.name}.tmp{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if docs:
            tokens = bm25s.tokenize([d.text for d in docs], stopwords="en", stemmer=_stemmer(), show_progress=False)
            model = bm25s.BM25()
            model.index(tokens, show_progress=False)
            model.save(str(tmp / "bm25"))
        meta = {"n_chunks": n_chunks,
                "papers": [[d.paper_id, d.year, list(d.categories)] for d in docs]}
        (tmp / "papers.json").write_text(json.dumps(meta))
        with self._lock:
            old = self.dir.with_name(f"{self.dir.name}.old{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            if self.dir.exists():
                os.replace(self.dir, old)
            os.replace(tmp, self.dir)
            shutil.rmtree(old, ignore_errors=True)
            self._bm25 = None
            self.n_chunks = -1

    def load(self) -> None:
        """Load the persisted index (fast: memory-mapped arrays)."""
        import bm25s

        with self._lock:
            meta = json.loads((self.dir / "papers.json").read_text())
            self.n_chunks = int(meta["n_chunks"])
            self.ids = [p[0] for p in meta["papers"]]
            self._years = np.array([p[1] if p[1] is not None else -1 for p in meta["papers"]], dtype=np.int32)
            self._cats = [frozenset(p[2]) for p in meta["papers"]]
            self._bm25 = bm25s.BM25.load(str(self.dir / "bm25"), mmap=True) if self.ids else None

    # --- search ------------------------------------------------------------
    def mask(self, filters: Filters) -> np.ndarray | None:
        """1.0 for papers passing the filters, 0.0 otherwise (None when no filter)."""
        if filters.empty():
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if filters.year_from is not None:
            keep &= self._years >= filters.year_from
        if filters.year_to is not None:
            keep &= (self._years <= filters.year_to) & (self._years >= 0)
        if filters.categories:
            wanted = set(filters.categories)
            keep &= np.array([bool(c & wanted) for c in self._cats], dtype=bool)
        if filters.paper_ids:
            wanted_ids = set(filters.paper_ids)
            keep &= np.array([p in wanted_ids for p in self.ids], dtype=bool)
        return keep.astype(np.float32)

    def search(self, query: str, k: int, filters: Filters = Filters()) -> list[tuple[str, float]]:
        """Top-k (paper_id, BM25 score) with score > 0, filters applied inside the scoring."""
        import bm25s

        if self._bm25 is None or not self.ids:
            return []
        q = bm25s.tokenize([query], stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False)
        terms = q[0] if q and q[0] else []
        if not terms:
            return []
        scores = self._bm25.get_scores(terms)  # type: ignore[attr-defined]
        m = self.mask(filters)
        if m is not None:
            scores = scores * m
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
