"""One paper collection: the Chroma store, the lexical index, the embedder binding and the paper table.

Concurrency (see tests/test_collection.py):
- One writer at a time (`ingest`, `delete`, `repair`): a thread lock plus an flock on
  `<home>/bm25/<name>.lock`, so two processes never write the same collection at once.
- Readers take no lock. The lexical index is an immutable snapshot; a writer builds the next one and
  swaps the reference, so a search sees either the old or the new index, never half of each.
- Before its first Chroma write a writer leaves `<home>/bm25/<name>.DIRTY` (pid and process start time).
  Only a writer removes it: its own after publishing, or a stale one (dead pid) by rebuilding first.
- Consistency is a content fingerprint (ingest/store.py), kept in the lexical index and in the Chroma
  collection's metadata. Readers compare the two every `recheck_s` seconds (one metadata read) and
  load what another process published.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.bm25sql import SqliteBm25
from ingest.filters import Filters
from ingest.lexical import Bm25Index, LexDoc, LexicalIndex, doc_of
from ingest.sentence_store import SentenceStore
from ingest.store import ChunkRow, ChunkStore, StoredPaper, assemble_papers, fingerprint, fingerprint_update, make_client

ENGINES: dict[str, Any] = {"sqlite": SqliteBm25, "bm25s": Bm25Index}

__all__ = ["Collection", "EmbedSpec", "Filters", "Health", "StoredPaper"]


class CollectionError(RuntimeError):
    """A collection that cannot be used as asked (missing, empty), with its location in the message."""


@dataclass(frozen=True)
class EmbedSpec:
    """Which embedding model a collection binds to (made lazily: loading a model costs seconds)."""

    base_url: str | None = None      # OpenAI-protocol /v1/embeddings server; None = the bundled MiniLM
    model: str = "all-MiniLM-L6-v2"
    api_key: str | None = None
    precision: str = "auto"
    cache_path: Path | None = None

    def make(self) -> Any:
        if self.base_url:
            from ingest.remote_embeddings import RemoteEmbedding

            return RemoteEmbedding(self.base_url, self.model, self.api_key, cache_path=self.cache_path)
        from ingest.embeddings import LocalEmbedding

        return LocalEmbedding(cache_path=self.cache_path, precision=self.precision)


@dataclass
class Health:
    """How a collection's Chroma side and lexical side compare (`Collection.health`)."""

    chroma_papers: int = 0
    chroma_chunks: int = 0
    lexical_papers: int = 0
    lexical_chunks: int = 0
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)       # not problems: e.g. papers without sentence vectors
    problems: list[str] = field(default_factory=list)    # lexical side: repaired by rebuilding from Chroma
    incomplete: list[str] = field(default_factory=list)  # Chroma side: papers a re-ingest must rewrite

    @property
    def ok(self) -> bool:
        return not self.problems and not self.incomplete

    # the names `paperchat doctor` printed before the lexical index became pluggable
    @property
    def bm25_papers(self) -> int:
        return self.lexical_papers

    @property
    def bm25_chunks(self) -> int:
        return self.lexical_chunks


def _proc_start(pid: int) -> str | None:
    """Start time of a process in clock ticks since boot (tells a live writer from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class DirtyMarker:
    """`<name>.DIRTY`: a writer is changing Chroma (or was killed doing so). Only writers write or remove it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {"pid": os.getpid(), "start": _proc_start(os.getpid()), "host": socket.gethostname(),
                "since": time.time()}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(info) + "\n")
        os.replace(tmp, self.path)

    def read(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.path.read_text())
            return info if isinstance(info, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # an unreadable marker: its writer is unknown, so it counts as stale

    def live(self) -> bool:
        """True when the marker's writer is still running (this host, same pid, same start time)."""
        info = self.read()
        if not info or info.get("host") != socket.gethostname():
            return False
        pid = info.get("pid")
        return isinstance(pid, int) and _proc_start(pid) is not None and _proc_start(pid) == info.get("start")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class WriterLock:
    """One writer per collection: a thread lock and an exclusive flock on a file beside the index."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread = threading.Lock()
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        if not self._thread.acquire(blocking):
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                self._thread.release()
                return False
            self._fd = fd
            return True
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._thread.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lexical_docs(papers: Iterable[StoredPaper]) -> list[LexDoc]:
    """What the lexical index holds for each paper: title and abstract, year and categories for filters
    (and the version and table columns an incremental engine keeps)."""
    return [doc_of(p) for p in papers]


class Collection:
    """A collection of papers under `home` (or on a Chroma server) that many readers and one writer share.

    Example:
        >>> col = Collection(Path("/tmp/pc"))               # doctest: +SKIP
        >>> col.ingest(["data/sample"]).added                # doctest: +SKIP
        65
        >>> col.count_papers(), col.list_papers("grok", limit=1)[0]["title"]  # doctest: +SKIP
        (65, 'Deep Networks Always Grok and Here is Why')
    """

    def __init__(self, home: Path, name: str = "papers", chroma_url: str | None = None,
                 embed: EmbedSpec | Any = None, lexical_engine: Any = SqliteBm25, recheck_s: float = 2.0,
                 sentence_evidence: bool = False) -> None:
        self.home = Path(home)
        self.name = name
        self.chroma_url = chroma_url
        self._spec = embed if isinstance(embed, EmbedSpec) else EmbedSpec()
        self._embed: Any = None if embed is None or isinstance(embed, EmbedSpec) else embed
        self._engine = lexical_engine
        self.recheck_s = recheck_s
        bm25 = self.home / "bm25"
        self.lexical_dir = bm25 / self.lexical_name
        self.marker = DirtyMarker(bm25 / f"{self.lexical_name}.DIRTY")
        self._writer = WriterLock(bm25 / f"{self.lexical_name}.lock")
        self._init = threading.Lock()  # only guards lazy construction, never held during I/O-heavy work
        self._store: ChunkStore | None = None
        self._lex: LexicalIndex | None = None
        self._checked = 0.0
        self._table: tuple[str, list[dict[str, Any]]] | None = None
        self.sentence_evidence = sentence_evidence
        self.sentences_path = self.home / "sentences" / f"{self.lexical_name}.sqlite"
        self._sentences: SentenceStore | None = None

    # --- where it lives --------------------------------------------------------
    @property
    def lexical_name(self) -> str:
        """The lexical index's folder name under `<home>/bm25/` (a server collection gets `@server`)."""
        return self.name if not self.chroma_url else f"{self.name}@server"

    def location(self) -> str:
        """Human-readable place of the collection: absolute home path, or server URL."""
        where = self.chroma_url or str(self.home.resolve())
        return f"collection '{self.name}' at {where}"

    def exists(self) -> bool:
        """Whether there is anything to open (never creates anything)."""
        return bool(self.chroma_url) or (self.home / "chroma").is_dir()

    # --- components --------------------------------------------------------------
    @property
    def embed(self) -> Any:
        """The embedding model bound to this collection (loaded on first use)."""
        if self._embed is None:
            with self._init:
                if self._embed is None:
                    self._embed = self._spec.make()
        return self._embed

    def _identity(self) -> tuple[str, int]:
        from ingest.embeddings import BUNDLED_DIM, BUNDLED_MODEL

        if self._spec.base_url:  # the collection records which model made its vectors
            return f"remote:{self._spec.model}", int(self.embed.dim)
        return BUNDLED_MODEL, BUNDLED_DIM

    @property
    def store(self) -> ChunkStore:
        """The Chroma side (creates the collection when missing: writers and explicit use only)."""
        if self._store is None:
            model, dim = self._identity()
            with self._init:
                if self._store is None:
                    self._store = ChunkStore(make_client(self.home, self.chroma_url), self.name, model, dim)
        return self._store

    @property
    def sentences(self) -> SentenceStore | None:
        """Per-paper chunk and sentence vectors (ingest/sentence_store.py); None when off or never written."""
        if self._sentences is None and self._evidence_on():
            with self._init:
                if self._sentences is None:
                    self._sentences = SentenceStore.open(self.sentences_path, self._identity()[1])
        return self._sentences

    def _evidence_on(self) -> bool:
        """Sentence evidence is asked for and the embedder can provide it."""
        return self.sentence_evidence and self.embed_can_pool()

    def embed_can_pool(self) -> bool:
        """Whether the embedder can late-pool sentences (the bundled model; not a remote /v1/embeddings)."""
        return not self._spec.base_url and (self._embed is None or hasattr(self._embed, "get_text_and_unit_embeddings"))

    def _writer_sentences(self) -> SentenceStore | None:
        """Writer only: the sentence store, created when sentence evidence is on."""
        if not self._evidence_on():
            return None
        if self._sentences is None:
            self._sentences = SentenceStore(self.sentences_path, self._identity()[1])
        return self._sentences

    def _reader_store(self) -> ChunkStore | None:
        """The store when the collection exists; a reader never creates a home or a database."""
        return self.store if self._store is not None or self.exists() else None

    @property
    def lexical(self) -> LexicalIndex:
        """The current lexical snapshot (re-checked against Chroma at most every `recheck_s` seconds)."""
        lex = self._lex
        if lex is None or time.monotonic() - self._checked >= self.recheck_s:
            lex = self.refresh()
        return lex

    # --- readers -----------------------------------------------------------------
    def refresh(self) -> LexicalIndex:
        """Bring the lexical snapshot in line with Chroma without waiting for a writer.

        A live writer will publish its own snapshot: meanwhile the last published one is used. A stale
        marker, a damaged index or a fingerprint that disagrees with Chroma is repaired here, by taking
        the writer lock if (and only if) it is free."""
        self._checked = time.monotonic()
        store = self._reader_store()
        current = self._lex
        if store is None:
            self._lex = current or Bm25Index.empty(self.lexical_dir)  # in memory: a reader creates no files
            return self._lex
        stored_fp = store.stored_fingerprint()
        if current is not None and stored_fp and current.fingerprint() == stored_fp and not self.marker.path.exists():
            return current
        if self.marker.live():  # a writer will publish soon: keep what we have, or the last published one
            self._lex = current or self._open_disk() or self._engine.empty(self.lexical_dir)
            return self._lex
        disk = self._open_disk()
        if disk is not None and self.marker.read() is None and stored_fp and disk.fingerprint() == stored_fp:
            self._lex = disk
            return disk
        if self._writer.acquire(blocking=False):
            try:
                return self._repair_locked(store)
            finally:
                self._writer.release()
        self._lex = disk or current or self._engine.empty(self.lexical_dir)  # a writer is about to publish
        return self._lex

    def _open_disk(self) -> LexicalIndex | None:
        try:
            return self._engine.open(self.lexical_dir)  # type: ignore[no-any-return, attr-defined]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: rebuilt from Chroma by a writer

    def papers(self, paper_ids: Sequence[str]) -> dict[str, StoredPaper]:
        """Stored papers by id (ids not stored are left out)."""
        store = self._reader_store()
        return store.papers(list(paper_ids)) if store is not None and paper_ids else {}

    def count_papers(self, query: str | None = None) -> int:
        """Papers in the collection (matching `query` as in `list_papers` when given)."""
        lex = self.lexical
        if hasattr(lex, "count_papers"):  # the SQLite engine keeps the paper table in SQL
            return int(lex.count_papers(query))
        if not query:
            return lex.count()
        return len(self._matching(query))

    def categories(self) -> list[str]:
        """Every category of a stored paper, sorted."""
        lex = self.lexical
        if hasattr(lex, "categories"):
            return list(lex.categories())
        return sorted({c for r in self._paper_table() for c in str(r["categories"]).split()})

    def spread_titles(self, n: int) -> list[str]:
        """Titles of up to `n` papers spread over the collection (deterministic); reads n rows, never the table."""
        total = self.count_papers()
        if not total or n < 1:
            return []
        step = max(1, total // n)
        out: list[str] = []
        for offset in range(0, total, step):
            rows = self.list_papers("", limit=1, offset=offset)
            if rows and rows[0]["title"]:
                out.append(str(rows[0]["title"]))
            if len(out) >= n:
                break
        return out

    def count_chunks(self) -> int:
        store = self._reader_store()
        return store.count() if store is not None else 0

    def list_papers(self, query: str | None = None, limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """One row per paper (paper_id, title, authors, year, date, categories, url), sorted by title.

        `query` keeps the papers whose id, title, authors or categories contain it (case-insensitive);
        `offset`/`limit` page through the result. With the SQLite engine a page is one SQL query (a query
        matches papers containing each of its words); otherwise the table is cached per fingerprint."""
        lex = self.lexical
        if hasattr(lex, "list_papers"):
            return list(lex.list_papers(query, limit, offset))
        rows = self._matching(query)
        return rows[offset: None if limit is None else offset + limit]

    def find_titles(self, text: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` papers whose title contains `text` as typed (case-insensitive), sorted by title: what a
        picker filtering its options by the typed text will show (`list_papers` matches words anywhere)."""
        lex = self.lexical
        if hasattr(lex, "find_titles"):
            return list(lex.find_titles(text, limit))
        q = text.lower()
        return [r for r in self._paper_table() if q in str(r["title"]).lower()][:limit]

    def _matching(self, query: str | None) -> list[dict[str, Any]]:
        rows = self._paper_table()
        q = (query or "").strip().lower()
        if not q:
            return rows
        return [r for r in rows if q in " ".join(str(r[k]) for k in ("paper_id", "title", "authors", "categories")).lower()]

    def _paper_table(self) -> list[dict[str, Any]]:
        fp = self.lexical.fingerprint()
        table = self._table
        if table is not None and table[0] == fp:
            return table[1]
        store = self._reader_store()
        rows: list[dict[str, Any]] = []
        if store is not None:
            for row in store.iter_chunks(where={"chunk": 0}, documents=False):
                m = row.meta
                rows.append({"paper_id": str(m.get("paper_id", "")), "title": str(m.get("title", "")),
                             "authors": str(m.get("authors", "")), "year": m.get("year"),
                             "date": str(m.get("date", "")), "categories": str(m.get("categories", "")),
                             "url": m.get("url") or None})
        rows.sort(key=lambda r: (str(r["title"]).lower(), str(r["paper_id"])))
        self._table = (fp, rows)
        return rows

    def stats(self) -> dict[str, Any]:
        """Where the collection lives and what it holds."""
        store = self._reader_store()
        model, dim = (store.model, store.dim) if store is not None else self._identity()
        return {"home": str(self.home.resolve()), "chroma": self.chroma_url or "embedded", "collection": self.name,
                "papers": self.lexical.count(), "chunks": self.count_chunks(), "embedding_model": model,
                "embedding_dim": dim}

    # --- writers -----------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], progress: bool = False,
               on_progress: Callable[[int, int], None] | None = None) -> Any:
        """Read, chunk, embed and index every paper under `paths` (idempotent); one writer at a time.

        Readers keep answering from the previous snapshot meanwhile. Returns an IngestReport."""
        from ingest.pipeline import ingest_paths

        t0 = time.perf_counter()
        with self._writer:
            store = self.store
            if self._journalled():  # each commit is journalled, written and indexed in step: nothing rebuilt
                lex = self._repair_locked(store) if self._consistent_base(store) is None else self._writable()
                report = ingest_paths(paths, store, self.embed, progress=progress, on_progress=on_progress,
                                      before_first_write=self.marker.write,
                                      index_batch=lambda nodes, write: self._index_batch(store, lex, nodes, write),
                                      sentences=self._writer_sentences())
                if report.added + report.updated:
                    self._publish_journalled(store, lex)
                report.chunks_total = store.count()
                report.papers_total = self.lexical.count()
                report.seconds = time.perf_counter() - t0
                return report
            base = self._consistent_base(store)  # None: rebuild after the ingest
            report = ingest_paths(paths, store, self.embed, progress=progress, on_progress=on_progress,
                                  before_first_write=self.marker.write, sentences=self._writer_sentences())
            changed = report.added + report.updated > 0
            if base is not None and base.incremental and "mixed" not in {c[1] for c in report.changes}:
                if changed:
                    fp = fingerprint_update(base.fingerprint(), [(p, h) for p, h, _ in report.changes if h],
                                            [(p, h) for p, _, h in report.changes])
                    docs = lexical_docs(store.papers([p for p, _, _ in report.changes]).values())
                    self._publish(store, base.add(docs, fp, store.count()))
            elif changed or base is None:
                self._repair_locked(store)
            report.chunks_total = store.count()
            report.papers_total = self.lexical.count()
            report.seconds = time.perf_counter() - t0
            return report

    def delete(self, paper_ids: Sequence[str]) -> int:
        """Remove papers (all their chunks); returns the number of chunks removed."""
        with self._writer:
            store = self.store
            if self.sentences is not None:  # first: a row without its paper is never read (only candidates are)
                self.sentences.delete(list(paper_ids))
            if self._journalled():
                lex: Any = self._repair_locked(store) if self._consistent_base(store) is None else self._writable()
                lex.begin(list(paper_ids))
                self.marker.write()
                n = store.delete_papers(list(paper_ids))
                self._publish_journalled(store, lex.delete(list(paper_ids)))
                return n
            base = self._consistent_base(store)
            gone = store.hashes_of(list(paper_ids))
            self.marker.write()
            n = store.delete_papers(list(paper_ids))
            if base is not None and base.incremental and "mixed" not in {h for h, _ in gone.values()}:
                fp = fingerprint_update(base.fingerprint(), [(p, h) for p, (h, _) in gone.items()], [])
                self._publish(store, base.delete(list(gone), fp, store.count()))
            else:
                self._repair_locked(store)
            return n

    def repair(self) -> Health:
        """Bring the lexical index in line with Chroma (the source of truth) and clear a stale marker; then check.

        The SQLite engine compares every paper's content hash and re-indexes only those that differ; other
        engines are rebuilt."""
        with self._writer:
            self._repair_locked(self.store, full=True)
        return self.health()

    def _consistent_base(self, store: ChunkStore) -> LexicalIndex | None:
        """Writer only: the published lexical index when it matches Chroma (no marker, same fingerprint)."""
        if self.marker.read() is not None:  # we hold the lock: a marker left is a dead writer's
            return None
        disk = self._open_disk()
        return disk if disk is not None and disk.fingerprint() == store.stored_fingerprint() else None

    def _publish(self, store: ChunkStore, new: LexicalIndex) -> LexicalIndex:
        """Writer only: record the new index's fingerprint in Chroma, swap it in, clear the marker."""
        store.record_fingerprint(new.fingerprint())
        self._lex = new  # the swap: readers pick up the new snapshot by reference
        self._checked = time.monotonic()
        self.marker.clear()
        return new

    # --- the journalled engine's writer side (ingest/bm25sql.py) ---------------------------
    def _journalled(self) -> bool:
        """Whether the engine journals and indexes each commit as it is written (and syncs from Chroma)."""
        return hasattr(self._engine, "sync")

    def _writable(self) -> Any:
        """Writer only: the journalled index on disk (created empty when missing)."""
        return self._open_disk() or self._engine.empty(self.lexical_dir)

    def _index_batch(self, store: ChunkStore, lex: Any, nodes: list[Any], write: Callable[[], None]) -> None:
        """One commit of an ingest: journal its papers, write them to Chroma, index them, record the fingerprint.

        A kill -9 anywhere in between leaves these papers in the index's journal (`pending`), and the next
        writer re-reads exactly those from Chroma. The papers are indexed from the chunks just written,
        assembled as a read from Chroma would assemble them, so the index equals a rebuild."""
        ids = list(dict.fromkeys(str(n.metadata["paper_id"]) for n in nodes))
        lex.begin(ids)
        write()
        papers = assemble_papers(ChunkRow(n.node_id, n.get_content(), dict(n.metadata)) for n in nodes)
        lex.add(lexical_docs(papers.values()))
        store.record_fingerprint(lex.fingerprint())

    def _publish_journalled(self, store: ChunkStore, lex: Any) -> Any:
        """Writer only: record the chunk count, then publish (fingerprint into Chroma, swap, clear the marker)."""
        return self._publish(store, lex.add([], n_chunks=store.count()))

    def _repair_locked(self, store: ChunkStore, full: bool = False) -> LexicalIndex:
        """Writer only: make the lexical index agree with Chroma, record the fingerprint, publish.

        Journalled engine: the journal's papers (an interrupted write) are re-read; if the fingerprint still
        disagrees with Chroma's (another client wrote to a shared server, a new or damaged index), or when
        `full`, every paper's content hash is compared and only the differing papers are re-indexed.
        Other engines: rebuilt from every stored paper."""
        if self._journalled():
            lex = self._writable()
            lex.sync(store, paper_ids=[])
            if full or lex.fingerprint() != store.stored_fingerprint():
                lex.sync(store)
            return self._publish_journalled(store, lex)  # type: ignore[no-any-return]
        papers = assemble_papers(store.iter_chunks())
        fp = fingerprint((p.paper_id, p.content_hash) for p in papers.values())
        n_chunks = store.count()
        base = self._lex if isinstance(self._lex, self._engine) else self._engine.empty(self.lexical_dir)
        return self._publish(store, base.rebuild(lexical_docs(papers.values()), fp, n_chunks))

    # --- doctor ------------------------------------------------------------------
    def health(self) -> Health:
        """Compare the lexical index with Chroma: marker, unreadable index, fingerprint, missing papers.

        Also lists papers whose stored chunks are not one complete version (an update cut short)."""
        h = Health()
        store = self._reader_store()
        if store is None:
            h.problems.append(f"{self.location()} does not exist")
            return h
        chunks: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        expected: dict[str, dict[str, int]] = defaultdict(dict)
        for row in store.iter_chunks(documents=False):
            h.chroma_chunks += 1
            pid, ch = str(row.meta["paper_id"]), str(row.meta.get("content_hash", ""))
            chunks[pid][ch].add(int(row.meta.get("chunk", 0)))
            expected[pid][ch] = int(row.meta.get("n_chunks", 1))
        h.chroma_papers = len(chunks)
        for pid, versions in sorted(chunks.items()):
            if len(versions) > 1 or any(len(idx) != expected[pid][ch] for ch, idx in versions.items()):
                h.incomplete.append(pid)
        h.fingerprint = fingerprint((pid, max(v)) for pid, v in chunks.items() if len(v) == 1)
        if self.marker.read() is not None:
            h.problems.append("lexical index is marked dirty (an ingest is running)" if self.marker.live() else
                              "lexical index is marked dirty (an ingest was interrupted)")
        lex = self._open_disk()
        if lex is None:
            h.problems.append(f"lexical index missing or unreadable ({self.lexical_dir})")
            return h
        h.lexical_papers, h.lexical_chunks = lex.count(), lex.n_chunks()
        if not h.incomplete and lex.fingerprint() != h.fingerprint:
            h.problems.append(f"lexical index fingerprint {lex.fingerprint() or '(none)'} differs from "
                              f"Chroma's content {h.fingerprint}")
        in_lex = set(lex.paper_ids())
        missing = sorted(set(chunks) - in_lex)
        extra = sorted(in_lex - set(chunks))
        if missing:
            h.problems.append(f"{len(missing)} papers in Chroma missing from the lexical index ({', '.join(missing[:5])}"
                              + (", ..." if len(missing) > 5 else "") + ")")
        if extra:
            h.problems.append(f"{len(extra)} papers in the lexical index but not in Chroma ({', '.join(extra[:5])}"
                              + (", ..." if len(extra) > 5 else "") + ")")
        if lex.count() != len(in_lex):
            h.problems.append(f"{lex.count() - len(in_lex)} papers appear twice in the lexical index")
        h.notes.extend(self._evidence_notes({pid: max(v) for pid, v in chunks.items()}))
        return h

    def _evidence_notes(self, stored: dict[str, str]) -> list[str]:
        """A note when sentence evidence is on but some stored papers have no sentence vectors for their content."""
        if not self._evidence_on() or not stored:
            return []
        have = self.sentences.hashes() if self.sentences is not None else {}
        missing = sum(1 for pid, h in stored.items() if have.get(pid) != h)
        if not missing:
            return []
        return [f"sentence evidence: {missing} of {len(stored)} papers have no sentence vectors (written before they "
                "existed, or with it off) and are ranked by their chunks only; ingest their files again to add them "
                "(the chunk vectors come from the embedding cache), or set PAPERCHAT_SENTENCE_EVIDENCE=false"]
