"""Incremental paper-level BM25 in one SQLite file: add, update or delete N papers in time ~ N.

Same tokens and the same formula as the bm25s index it replaces (lowercase, `\\b\\w\\w+\\b`, bm25s' English
stop words, Snowball stemmer; Lucene BM25 with k1=1.5, b=0.75), so rankings are the same, but nothing is
ever rebuilt in full:

- `docs` holds one row per paper (a never-reused integer id, length, year, chunk count, content hash);
  `cats` its categories; `postings` per term a few blocks of (doc ids, term frequencies) as packed arrays.
- Adding papers appends one small block per term they contain; a term's newest blocks are merged while
  the previous one is at most twice the new size (as a binary counter), so each posting is rewritten
  O(log n) times in all and a term has O(log n) blocks. Deleting a paper deletes its `docs` row; its
  postings are skipped at query time (an `alive` mask) and dropped at the term's next merge.
- Statistics (N, average length, document frequency) are computed at query time over live papers only,
  so scores are exact after any sequence of adds and deletes.
- Every change is one SQLite transaction (WAL): a kill -9 loses at most the change in flight. `begin()`
  records which papers are about to change in Chroma, and the same transaction that indexes them clears
  the record, so after a crash `pending()` names exactly the papers to re-read from Chroma.
- Readers in other processes see committed changes at their next search (`PRAGMA data_version`).

Memory in the query process: three arrays over paper ids (length, alive, year), 7 bytes per paper; the
postings of the query's terms are read per query.
"""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.lexical import Filters, LexDoc, doc_of, english_stopwords

K1, B = 1.5, 0.75  # bm25s defaults (method "lucene")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (doc INTEGER PRIMARY KEY AUTOINCREMENT, paper_id TEXT NOT NULL UNIQUE,
    len INTEGER NOT NULL, year INTEGER, n_chunks INTEGER NOT NULL, content_hash TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', authors TEXT NOT NULL DEFAULT '', date TEXT NOT NULL DEFAULT '',
    url TEXT, categories TEXT NOT NULL DEFAULT '', sort TEXT NOT NULL DEFAULT '', search TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS docs_sort ON docs (sort, paper_id);
CREATE TABLE IF NOT EXISTS cats (cat TEXT NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (cat, doc)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cats_doc ON cats (doc);
CREATE TABLE IF NOT EXISTS terms (tid INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS postings (tid INTEGER NOT NULL, blk INTEGER NOT NULL, n INTEGER NOT NULL,
    docs BLOB NOT NULL, tfs BLOB NOT NULL, PRIMARY KEY (tid, blk)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (paper_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
FILE = "bm25.sqlite"


IndexDoc = LexDoc  # one document type for both lexical engines


@dataclass
class SyncReport:
    """What `SqliteBm25.sync` changed."""

    checked: int = 0
    added: int = 0
    deleted: int = 0
    seconds: float = 0.0


def fingerprint_term(paper_id: str, content_hash: str) -> int:
    """One paper's term of the collection fingerprint (ingest.store.fingerprint sums these mod 2^128)."""
    return int.from_bytes(hashlib.sha256(f"{paper_id}\0{content_hash}".encode()).digest()[:16], "big")


class Tokenizer:
    """bm25s.tokenize(stopwords="en", stemmer=Snowball English) for one text at a time, with a stem cache."""

    def __init__(self) -> None:
        import Stemmer

        self._stop = english_stopwords()
        self._stemmer = Stemmer.Stemmer("english")  # PyStemmer is not thread-safe: one per Tokenizer
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _TOKEN.findall(text.lower()) if w not in self._stop]
        cache = self._cache
        new = [w for w in set(words) if w not in cache]
        if new:
            if len(cache) > 500_000:
                cache.clear()
            cache.update(zip(new, self._stemmer.stemWords(new)))
        return [cache[w] for w in words]


class SqliteBm25:
    """Paper-level BM25 over title + abstract, persisted incrementally in `directory/bm25.sqlite`.

    Unlike a rebuilt index this object is not a frozen snapshot: its searches see every committed change
    (its own at once, other processes' at the next search). Writes return `self`."""

    incremental = True

    def __init__(self, directory: Path, k1: float = K1, b: float = B) -> None:
        self.dir = Path(directory)
        self.path = self.dir / FILE
        self.dir.mkdir(parents=True, exist_ok=True)
        self.k1, self.b = k1, b
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives kill -9 (not power loss), like Chroma's own
        self._db.executescript(SCHEMA)
        self._tok = Tokenizer()
        self._version = -1
        self._dl = np.zeros(0, np.float32)
        self._alive = np.zeros(0, bool)
        self._year = np.zeros(0, np.int32)
        self._n = 0
        self._avgdl = 1.0
        self._fp_sum = 0

    @classmethod
    def open(cls, directory: Path) -> SqliteBm25:
        """The index persisted in `directory`; FileNotFoundError when there is none, sqlite3.DatabaseError
        (a ValueError subclass is not guaranteed, so it is re-raised as ValueError) when damaged."""
        if not (Path(directory) / FILE).is_file():
            raise FileNotFoundError(f"no lexical index in {directory}")
        try:
            ix = cls(directory)
            ix._db.execute("SELECT COUNT(*) FROM docs").fetchone()
            return ix
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"damaged lexical index {directory / FILE}: {exc}") from exc

    @classmethod
    def empty(cls, directory: Path) -> SqliteBm25:
        """The index in `directory`, created empty when missing; a damaged file is replaced by an empty one
        (the Collection then re-indexes from Chroma, the source of truth)."""
        try:
            return cls(directory)
        except sqlite3.DatabaseError:
            for p in Path(directory).glob(f"{FILE}*"):
                p.unlink(missing_ok=True)
            return cls(directory)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _meta(self, key: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    # --- in-memory statistics ------------------------------------------------------
    def _refresh(self) -> None:
        """Reload the per-paper arrays when any connection (this or another process) committed a change."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return
        rows = np.array(self._db.execute("SELECT doc, len, COALESCE(year, -1) FROM docs").fetchall(),
                        dtype=np.int64).reshape(-1, 3)
        size = int(rows[:, 0].max()) + 1 if len(rows) else 0
        self._dl = np.zeros(size, np.float32)
        self._alive = np.zeros(size, bool)
        self._year = np.full(size, -1, np.int32)
        self._dl[rows[:, 0]] = rows[:, 1]
        self._alive[rows[:, 0]] = True
        self._year[rows[:, 0]] = rows[:, 2]
        self._n = len(rows)
        self._avgdl = float(self._dl.sum()) / self._n if self._n else 1.0
        self._version = version

    def _alive_of(self, docs: np.ndarray) -> np.ndarray:
        inside = docs < len(self._alive)
        keep = np.zeros(len(docs), bool)
        keep[inside] = self._alive[docs[inside]]
        return keep

    # --- writes ----------------------------------------------------------------------
    def begin(self, paper_ids: Sequence[str]) -> None:
        """Record that these papers are about to change in Chroma (cleared by the add/delete that follows)."""
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO pending VALUES (?)", ((p,) for p in paper_ids))

    def pending(self) -> list[str]:
        """Papers whose Chroma write may have happened without their index write (an interrupted ingest)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT paper_id FROM pending")]

    def add(self, docs: Sequence[object], fingerprint: str | None = None, n_chunks: int | None = None,
            delete: Sequence[str] = ()) -> SqliteBm25:
        """Index papers (replacing stored versions with the same ids) and remove `delete`, in one transaction.

        `fingerprint` and `n_chunks` describe the collection after this change (kept for the Collection)."""
        with self._write() as db:
            self._add_in_tx(db, docs, delete)
            self._set_meta(db, fingerprint, n_chunks)
        return self

    def delete(self, paper_ids: Sequence[str], fingerprint: str | None = None, n_chunks: int | None = None
               ) -> SqliteBm25:
        """Remove papers."""
        return self.add([], fingerprint, n_chunks, delete=paper_ids)

    def rebuild(self, docs: Iterable[object], fingerprint: str | None = None, n_chunks: int | None = None
                ) -> SqliteBm25:
        """Replace everything by `docs`, in one transaction (other processes see the old index until it commits)."""
        with self._write() as db:
            for table in ("docs", "cats", "terms", "postings", "pending"):
                db.execute(f"DELETE FROM {table}")
            self._fp_sum = 0
            self._alive[:] = False
            self._dl[:] = 0
            batch: list[object] = []
            for d in docs:
                batch.append(d)
                if len(batch) >= 1000:
                    self._add_in_tx(db, batch, ())
                    batch = []
            self._add_in_tx(db, batch, ())
            self._set_meta(db, fingerprint, n_chunks)
        return self

    def _fp_add(self, paper_id: str, content_hash: str, sign: int) -> None:
        self._fp_sum = (self._fp_sum + sign * fingerprint_term(paper_id, content_hash)) % (1 << 128)

    def sync(self, store: Any, paper_ids: Sequence[str] | None = None, batch: int = 500) -> SyncReport:
        """Make the index hold what the Chroma store holds, re-reading only papers that may differ.

        `paper_ids` None: every paper's content hash is compared (one metadata pass over Chroma, no text);
        otherwise only those papers and the pending ones (an interrupted write) are re-read. Papers are
        re-indexed from their stored chunks, so the index equals a rebuild from Chroma."""
        import time

        t0 = time.perf_counter()
        rep = SyncReport()
        if paper_ids is None:
            chroma = store.paper_hashes()
            mine = self.versions()
            todo = [p for p, h in chroma.items() if mine.get(p, ("",))[0] != h]
            gone = [p for p in mine if p not in chroma]
            rep.checked = len(chroma)
        else:
            todo = list(dict.fromkeys([*paper_ids, *self.pending()]))
            gone = []
            rep.checked = len(todo)
        n_chunks = store.count()
        for i in range(0, max(len(todo), 1), batch):
            part = todo[i:i + batch]
            papers = store.papers(part) if part else {}
            missing = [p for p in part if p not in papers]
            self.add([doc_of(papers[p]) for p in part if p in papers], n_chunks=n_chunks,
                     delete=missing + (gone if i == 0 else []))
            rep.added += len(papers)
            rep.deleted += len(missing)
        rep.deleted += len(gone)
        rep.seconds = time.perf_counter() - t0
        return rep

    def _set_meta(self, db: sqlite3.Connection, fingerprint: str | None, n_chunks: int | None) -> None:
        """Record the content fingerprint (kept up to date paper by paper) and the collection's chunk count.

        A `fingerprint` passed by the caller is what Chroma's side should hold; the one recorded is computed
        from what this index holds, so a disagreement shows up instead of being papered over."""
        del fingerprint
        db.execute("INSERT OR REPLACE INTO meta VALUES ('fp_sum', ?)", (f"{self._fp_sum:032x}",))
        db.execute("INSERT OR REPLACE INTO meta SELECT 'n_docs', COUNT(*) FROM docs")
        if n_chunks is not None:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('n_chunks', ?)", (str(int(n_chunks)),))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the in-memory arrays follow it (or are reloaded when it fails)."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")  # the write lock first: then the arrays reflect every earlier commit
            try:
                self._refresh()
                self._fp_sum = int(self._meta("fp_sum", "0"), 16)
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._version = -1  # reload the arrays at the next read
                raise
            # our own commit does not change data_version: the arrays were updated as we went
            self._n = int(self._alive.sum())
            self._avgdl = float(self._dl.sum()) / self._n if self._n else 1.0

    def _add_in_tx(self, db: sqlite3.Connection, docs: Sequence[object], delete: Sequence[str]) -> None:
        gone = list(dict.fromkeys([*delete, *(d.paper_id for d in docs)]))  # type: ignore[attr-defined]
        dead = self._delete(gone)
        self._alive[dead] = False
        self._dl[dead] = 0
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'docs'").fetchone()
        first = (int(seq[0]) if seq else 0) + 1
        rows, cats, lengths, years = [], [], [], []  # type: ignore[var-annotated]
        vocab: dict[str, int] = {}
        tok_ids: list[int] = []
        for doc, d in enumerate(docs, start=first):
            tokens = self._tok(d.text)  # type: ignore[attr-defined]
            year = d.year  # type: ignore[attr-defined]
            title, authors = str(getattr(d, "title", "")), str(getattr(d, "authors", ""))
            cats_text = " ".join(d.categories)  # type: ignore[attr-defined]
            content_hash = str(getattr(d, "content_hash", ""))
            rows.append((doc, d.paper_id, len(tokens), year, int(getattr(d, "n_chunks", 1)), content_hash,  # type: ignore[attr-defined]
                         title, authors, str(getattr(d, "date", "") or ""), getattr(d, "url", None), cats_text,
                         title.lower(), f"{d.paper_id} {title} {authors} {cats_text}".lower()))  # type: ignore[attr-defined]
            self._fp_add(d.paper_id, content_hash, +1)  # type: ignore[attr-defined]
            cats.extend((c, doc) for c in dict.fromkeys(d.categories))  # type: ignore[attr-defined]
            lengths.append(len(tokens))
            years.append(year if year is not None else -1)
            tok_ids.extend([vocab.setdefault(t, len(vocab)) for t in tokens])
        db.executemany("INSERT INTO docs (doc, paper_id, len, year, n_chunks, content_hash, title, authors, date, url, "
                       "categories, sort, search) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO cats VALUES (?, ?)", cats)
        self._append(vocab, np.asarray(tok_ids, np.int64), np.repeat(np.arange(first, first + len(rows)), lengths),
                     first)
        db.executemany("DELETE FROM pending WHERE paper_id = ?", ((p,) for p in gone))
        if rows:
            size = first + len(rows)
            grow = size - len(self._alive)
            if grow > 0:
                self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
                self._dl = np.concatenate([self._dl, np.zeros(grow, np.float32)])
                self._year = np.concatenate([self._year, np.full(grow, -1, np.int32)])
            self._alive[first:size] = True
            self._dl[first:size] = lengths
            self._year[first:size] = years

    def _delete(self, paper_ids: Sequence[str]) -> np.ndarray:
        """Delete the rows of these papers; returns their doc ids (their postings die with them)."""
        db = self._db
        dead: list[int] = []
        for i in range(0, len(paper_ids), 500):
            part = list(paper_ids[i:i + 500])
            found = db.execute(f"SELECT doc, paper_id, content_hash FROM docs WHERE paper_id IN "
                               f"({','.join('?' * len(part))})", part).fetchall()
            docs = [r[0] for r in found]
            for _, pid, content_hash in found:
                self._fp_add(pid, content_hash, -1)
            if docs:
                marks = ",".join("?" * len(docs))
                db.execute(f"DELETE FROM cats WHERE doc IN ({marks})", docs)
                db.execute(f"DELETE FROM docs WHERE doc IN ({marks})", docs)
                dead.extend(docs)
        out = np.array(dead, dtype=np.int64)
        return out[out < len(self._alive)]

    def _append(self, vocab: dict[str, int], tok: np.ndarray, doc: np.ndarray, first_new: int) -> None:
        """One new block per term, then merge each term's newest blocks while the previous is <= 2x the new.

        `tok` and `doc` give each token occurrence of the new papers: its index in `vocab`, its paper."""
        db = self._db
        if not len(tok):
            return
        span = int(doc.max()) - first_new + 1
        keys, tf = np.unique(tok * span + (doc - first_new), return_counts=True)  # sorted by term, then paper
        k_term, k_doc = keys // span, (keys % span + first_new).astype(np.int32)
        tf = np.minimum(tf, 65535).astype(np.uint16)
        cuts = np.flatnonzero(np.diff(k_term)) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        ends = np.concatenate([cuts, [len(keys)]]).tolist()
        names = list(vocab)
        by_term = {names[int(k_term[i])]: (i, j) for i, j in zip(starts, ends)}
        terms = list(by_term)
        tids: dict[str, int] = {}
        for i in range(0, len(terms), 500):
            part = terms[i:i + 500]
            tids.update(db.execute(f"SELECT term, tid FROM terms WHERE term IN ({','.join('?' * len(part))})",
                                   part).fetchall())
        missing = [t for t in terms if t not in tids]
        if missing:
            start = (db.execute("SELECT COALESCE(MAX(tid), 0) FROM terms").fetchone()[0]) + 1
            new = {t: start + i for i, t in enumerate(missing)}
            db.executemany("INSERT INTO terms (tid, term) VALUES (?, ?)", ((v, k) for k, v in new.items()))
            tids.update(new)
        old_tids = sorted({tids[t] for t in terms} - {tids[t] for t in missing})
        blocks: dict[int, list[tuple[int, int]]] = {}
        for i in range(0, len(old_tids), 500):
            part = old_tids[i:i + 500]  # type: ignore[assignment]
            for tid, blk, n in db.execute(f"SELECT tid, blk, n FROM postings WHERE tid IN ({','.join('?' * len(part))}) "
                                          "ORDER BY tid, blk", part):
                blocks.setdefault(tid, []).append((blk, n))
        doc_bytes, tf_bytes = k_doc.tobytes(), tf.tobytes()  # int32 / uint16: slices of bytes are blocks
        plans: list[tuple[int, int, list[int], int, int]] = []
        for term, (i, j) in by_term.items():
            tid = tids[term]
            have = blocks.get(tid, [])
            merge: list[int] = []
            size = j - i
            while have and have[-1][1] <= 2 * size:
                blk, n = have.pop()
                merge.append(blk)
                size += n
            blk = min(merge) if merge else (have[-1][0] + 1 if have else 0)
            plans.append((tid, blk, merge, i, j))
        pairs = [(tid, b) for tid, _, merge, _, _ in plans for b in merge]
        old: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        for i in range(0, len(pairs), 400):
            part = pairs[i:i + 400]  # type: ignore[assignment]
            values = ",".join("(?,?)" for _ in part)
            flat = [x for pair in part for x in pair]
            for tid, blk, d, f in db.execute(f"SELECT tid, blk, docs, tfs FROM postings WHERE (tid, blk) IN "
                                             f"(VALUES {values})", flat):
                old[(tid, blk)] = (d, f)
        db.executemany("DELETE FROM postings WHERE tid = ? AND blk = ?", pairs)
        has_dead = len(self._alive) < first_new or not bool(self._alive[1:first_new].all())  # postings may be dead
        out = []
        for tid, blk, merge, i, j in plans:
            d, f = doc_bytes[4 * i:4 * j], tf_bytes[2 * i:2 * j]
            if merge:
                parts = [old[(tid, b)] for b in sorted(merge)]
                d = b"".join([p[0] for p in parts] + [d])
                f = b"".join([p[1] for p in parts] + [f])
                if has_dead:  # drop postings of deleted papers
                    da, fa = np.frombuffer(d, np.int32), np.frombuffer(f, np.uint16)
                    keep = (da >= first_new) | self._alive_of(da)
                    d, f = da[keep].tobytes(), fa[keep].tobytes()
            if d:
                out.append((tid, blk, len(d) // 4, d, f))
        db.executemany("INSERT INTO postings VALUES (?, ?, ?, ?, ?)", out)

    # --- reads -----------------------------------------------------------------------
    def count(self) -> int:
        """Papers indexed (kept in the metadata by every write: reading it scans nothing)."""
        with self._lock:
            n = self._meta("n_docs")
            return int(n) if n else int(self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0])

    def n_chunks(self) -> int:
        """The collection's chunk count recorded by the last write."""
        with self._lock:
            return int(self._meta("n_chunks", "0"))

    def paper_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT paper_id FROM docs ORDER BY paper_id")]

    def versions(self) -> dict[str, tuple[str, int]]:
        """paper_id -> (content hash, chunk count) of every indexed paper."""
        with self._lock:
            return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT paper_id, content_hash, n_chunks FROM docs")}

    def fingerprint(self) -> str:
        """Content fingerprint of the indexed papers, as `ingest.store.fingerprint` computes it from
        (paper_id, content_hash) pairs; kept paper by paper, so reading it costs nothing."""
        with self._lock:
            return f"{self.count()}-{int(self._meta('fp_sum', '0'), 16):032x}"

    # --- the paper table (server-side paging for UIs) ----------------------------------
    def _match(self, query: str | None) -> tuple[str, list[str]]:
        words = (query or "").strip().lower().split()
        if not words:
            return "", []
        return " WHERE " + " AND ".join("instr(search, ?) > 0" for _ in words), words

    def count_papers(self, query: str | None = None) -> int:
        """Papers whose id, title, authors or categories contain every word of `query` (all without one)."""
        where, args = self._match(query)
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM docs{where}", args).fetchone()[0])

    def list_papers(self, query: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """A page of the paper table sorted by title (paper_id, title, authors, year, date, categories, url)."""
        where, args = self._match(query)
        with self._lock:
            rows = self._db.execute(f"SELECT paper_id, title, authors, year, date, categories, url FROM docs{where} "
                                    "ORDER BY sort, paper_id LIMIT ? OFFSET ?",
                                    [*args, -1 if limit is None else int(limit), max(0, int(offset))]).fetchall()
        return [{"paper_id": r[0], "title": r[1], "authors": r[2], "year": r[3], "date": r[4], "categories": r[5],
                 "url": r[6] or None} for r in rows]

    def find_titles(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` papers whose title contains `text` (case-insensitive, as typed), sorted by title."""
        q = text.lower()
        with self._lock:
            rows = self._db.execute("SELECT paper_id, title, authors, year, date, categories, url FROM docs "
                                    "WHERE instr(sort, ?) > 0 ORDER BY sort, paper_id LIMIT ?", [q, int(limit)]).fetchall()
        return [{"paper_id": r[0], "title": r[1], "authors": r[2], "year": r[3], "date": r[4], "categories": r[5],
                 "url": r[6] or None} for r in rows]

    def categories(self) -> list[str]:
        """Every category of an indexed paper, sorted."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT DISTINCT cat FROM cats ORDER BY cat")]

    def _allowed(self, filters: Filters) -> np.ndarray | None:
        """Boolean mask over doc ids of papers passing the filters (None when there is no filter)."""
        if filters.empty():
            return None
        keep = self._alive.copy()
        if filters.year_from is not None:
            keep &= self._year >= filters.year_from
        if filters.year_to is not None:
            keep &= (self._year <= filters.year_to) & (self._year >= 0)
        for values, sql in ((filters.categories, "SELECT doc FROM cats WHERE cat IN ({})"),
                            (filters.paper_ids, "SELECT doc FROM docs WHERE paper_id IN ({})")):
            if values:
                docs = np.array([r[0] for r in self._db.execute(sql.format(",".join("?" * len(values))), list(values))],
                                dtype=np.int64)
                sub = np.zeros(len(keep), bool)
                sub[docs[docs < len(keep)]] = True
                keep &= sub
        return keep

    def coverage(self, words: Sequence[str], paper_ids: Sequence[str]) -> dict[str, float]:
        """IDF-weighted share of `words` (tokenised like the index) that each paper contains, 0..1.

        The relevance gate's lexical input (rag/relevance.py); same measure as Bm25Index.coverage: a word
        absent from the collection weighs the most."""
        with self._lock:
            self._refresh()
            terms = set(self._tok(" ".join(words)))
            if not terms or not paper_ids:
                return {pid: 0.0 for pid in paper_ids}
            docs = dict(self._db.execute(f"SELECT paper_id, doc FROM docs WHERE paper_id IN "
                                         f"({','.join('?' * len(paper_ids))})", list(paper_ids)).fetchall())
            rows = np.array([docs.get(pid, -1) for pid in paper_ids], dtype=np.int64)
            marks = ",".join("?" * len(terms))
            tids = dict(self._db.execute(f"SELECT term, tid FROM terms WHERE term IN ({marks})", list(terms)).fetchall())
            got, total = np.zeros(len(rows)), 0.0
            for term in terms:
                d = np.zeros(0, np.int32)
                if term in tids:
                    blocks = self._db.execute("SELECT docs FROM postings WHERE tid = ?", (tids[term],)).fetchall()
                    if blocks:
                        d = np.concatenate([np.frombuffer(r[0], np.int32) for r in blocks])
                        d = d[self._alive_of(d)]
                idf = math.log(1 + (self._n - len(d) + 0.5) / (len(d) + 0.5))
                total += idf
                if len(d):
                    got += idf * np.isin(rows, d)
            return {pid: float(g / total) for pid, g in zip(paper_ids, got)}

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Top-k (paper_id, BM25 score) with score > 0, filters applied inside the scoring."""
        filters = filters or Filters()
        with self._lock:
            self._refresh()
            terms = self._tok(query)
            if not terms or not self._n:
                return []
            counts = Counter(terms)  # bm25s sums a repeated query term once per occurrence
            marks = ",".join("?" * len(counts))
            tids = dict(self._db.execute(f"SELECT term, tid FROM terms WHERE term IN ({marks})", list(counts)).fetchall())
            allowed = self._allowed(filters)
            scores = np.zeros(len(self._alive), np.float32)
            for term, tid in tids.items():
                blocks = self._db.execute("SELECT docs, tfs FROM postings WHERE tid = ?", (tid,)).fetchall()
                if not blocks:
                    continue
                d = np.concatenate([np.frombuffer(r[0], np.int32) for r in blocks])
                f = np.concatenate([np.frombuffer(r[1], np.uint16) for r in blocks]).astype(np.float32)
                live = self._alive_of(d)
                d, f = d[live], f[live]
                df = len(d)
                if not df:
                    continue
                idf = math.log(1 + (self._n - df + 0.5) / (df + 0.5))
                norm = self.k1 * ((1 - self.b) + self.b * self._dl[d] / self._avgdl)
                scores[d] += np.float32(idf * counts[term]) * (f / (norm + f))
            if allowed is not None:
                scores *= allowed
            k = min(k, int(np.count_nonzero(scores)))
            if k <= 0:
                return []
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.lexsort((top, -scores[top]))]  # ties: earlier-indexed paper first
            got = dict(self._db.execute(f"SELECT doc, paper_id FROM docs WHERE doc IN ({','.join('?' * len(top))})",
                                        [int(t) for t in top]).fetchall())
            return [(got[int(t)], float(scores[t])) for t in top if int(t) in got]
