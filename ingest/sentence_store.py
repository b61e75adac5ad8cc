"""Sentence evidence beside Chroma: per paper, its chunk and late-pooled sentence vectors (fp16) in one SQLite file.

Not in HNSW: a second index over every sentence would hold ~5x today's vectors in the query process
(issue 15's RSS budget). Retrieval reads only the fused candidates' rows (~200 papers, ~1 MB) per query.
Not a second Chroma collection used through get(ids): one SQLite row per paper is one indexed read, with
no HNSW segment to load or keep in step, and its write is one transaction (WAL) that a kill -9 either
keeps or loses whole.

Ingest writes a paper's row before its chunks reach Chroma, so after a crash a row can only be ahead of
Chroma (never missing for a stored paper); re-running the ingest rewrites it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCHEMA = """CREATE TABLE IF NOT EXISTS papers (paper_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL,
    n INTEGER NOT NULL, vecs BLOB NOT NULL)"""


class SentenceStore:
    """paper_id -> (content hash, (n, dim) unit vectors: its chunks and their sentences), fp16 on disk.

    Example:
        >>> st = SentenceStore(Path("/tmp/pc/sentences/papers.sqlite"), 384)     # doctest: +SKIP
        >>> st.put([("p1", "h1", np.eye(2, 384, dtype=np.float32))])             # doctest: +SKIP
        >>> st.get(["p1"])["p1"][1].shape                                       # doctest: +SKIP
        (2, 384)
    """

    def __init__(self, path: Path, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.dim = path, dim
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, dim: int) -> SentenceStore | None:
        """The store at `path` if it exists (a reader never creates one)."""
        return cls(path, dim) if path.exists() else None

    def put(self, rows: Sequence[tuple[str, str, np.ndarray]]) -> None:
        """Write (paper_id, content_hash, vectors) rows in one transaction, replacing those papers' rows."""
        data = [(pid, h, len(v), np.asarray(v, dtype=np.float16).tobytes()) for pid, h, v in rows]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?)", data)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get(self, paper_ids: Sequence[str]) -> dict[str, tuple[str, np.ndarray]]:
        """Stored rows of these papers (papers without one are left out), vectors as float32."""
        out: dict[str, tuple[str, np.ndarray]] = {}
        ids = list(dict.fromkeys(paper_ids))
        with self._lock:
            for i in range(0, len(ids), 500):
                batch = ids[i:i + 500]
                q = f"SELECT paper_id, content_hash, n, vecs FROM papers WHERE paper_id IN ({','.join('?' * len(batch))})"
                for pid, h, n, blob in self._db.execute(q, batch):
                    out[pid] = (h, np.frombuffer(blob, dtype=np.float16).reshape(n, self.dim).astype(np.float32))
        return out

    def delete(self, paper_ids: Sequence[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM papers WHERE paper_id = ?", [(p,) for p in paper_ids])

    def hashes(self, paper_ids: Sequence[str] | None = None) -> dict[str, str]:
        """paper_id -> content hash of the stored rows (of `paper_ids`, or all)."""
        with self._lock:
            if paper_ids is None:
                return dict(self._db.execute("SELECT paper_id, content_hash FROM papers"))
            out: dict[str, str] = {}
            ids = list(paper_ids)
            for i in range(0, len(ids), 500):
                batch = ids[i:i + 500]
                out.update(self._db.execute(f"SELECT paper_id, content_hash FROM papers WHERE paper_id IN "
                                            f"({','.join('?' * len(batch))})", batch))
            return out

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM papers").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def best_unit_scores(query: np.ndarray, rows: dict[str, tuple[str, np.ndarray]]) -> dict[str, float]:
    """paper_id -> its best unit cosine with the (normalised) query vector: MaxP over chunks and sentences."""
    pids = [p for p, (_, m) in rows.items() if len(m)]
    if not pids:
        return {}
    mats = [rows[p][1] for p in pids]
    sims = np.concatenate(mats) @ np.asarray(query, dtype=np.float32)
    starts = np.cumsum([0] + [len(m) for m in mats[:-1]])
    best = np.maximum.reduceat(sims, starts)
    return {p: float(b) for p, b in zip(pids, best)}
