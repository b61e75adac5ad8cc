"""Ingest files into a collection's Chroma store: read, dedupe, chunk, embed (cached), upsert."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from llama_index.core.schema import TextNode

from ingest.chunking import chunk_paper, embed_text, evidence_units
from ingest.dedup import Deduper
from ingest.embeddings import LocalEmbedding
from ingest.readers import Located, Notice, Rejection, estimate_records, read_path
from ingest.sentence_store import SentenceStore
from ingest.store import ChunkStore

T = TypeVar("T")

BATCH_PAPERS = 256  # papers read, deduplicated and planned together
COMMIT_SECONDS = 5.0  # target seconds of chunk+embed work between commits: what an interrupt can lose


class Pacer:
    """How many papers to embed before the next commit, adapted so one commit takes about `target` seconds.

    Starts small (the first papers are committed, and the progress bar moves, within seconds), then follows
    the measured seconds per paper, between `lo` and `hi` papers."""

    def __init__(self, target: float = COMMIT_SECONDS, first: int = 8, lo: int = 4, hi: int = BATCH_PAPERS) -> None:
        self.target, self.lo, self.hi = target, lo, hi
        self.size = max(lo, min(hi, first))

    def slices(self, items: list[T]) -> Iterator[list[T]]:
        i = 0
        while i < len(items):
            part = items[i:i + self.size]
            i += len(part)
            yield part

    def record(self, papers: int, seconds: float) -> None:
        if papers and seconds > 0:
            per = seconds / papers
            self.size = max(self.lo, min(self.hi, int(self.target / per)))


@dataclass
class IngestReport:
    """What an ingest did; counts add up to the records read."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)  # read anyway: encoding used, bytes replaced, ...
    chunks_written: int = 0
    papers_total: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    # (paper_id, stored content hash or None when new, new content hash) of every paper written; lets an
    # incremental lexical index and the fingerprint follow the ingest without re-reading the collection
    changes: list[tuple[str, str | None, str]] = field(default_factory=list, repr=False)

    @property
    def records(self) -> int:
        return self.added + self.updated + self.unchanged + self.duplicates + len(self.rejected)

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"duplicates {self.duplicates}, rejected {len(self.rejected)}"
                + (f", warnings {len(self.warnings)}" if self.warnings else "") + "; collection now "
                f"{self.papers_total} papers, {self.chunks_total} chunks ({self.seconds:.1f} s)")

    def to_dict(self) -> dict[str, object]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "duplicates": self.duplicates, "rejected": [str(r) for r in self.rejected],
                "warnings": [str(w) for w in self.warnings],
                "chunks_written": self.chunks_written, "papers": self.papers_total,
                "chunks": self.chunks_total, "seconds": round(self.seconds, 2)}


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them; -48 MB peak over 4k papers)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _batches(items: Iterable[Located | Rejection | Notice], report: IngestReport) -> Iterator[list[Located]]:
    seen: dict[str, tuple[str, str]] = {}
    batch: list[Located] = []
    for item in items:
        if isinstance(item, Rejection):
            report.rejected.append(item)
            continue
        if isinstance(item, Notice):
            report.warnings.append(item)
            continue
        p = item.paper
        prev = seen.get(p.paper_id)
        if prev is not None:
            if prev[0] == p.content_hash:
                report.duplicates += 1
            elif p.extra and not prev[1].startswith(f"{item.path}:"):  # a DOI, arXiv id, ... in another file
                report.duplicates += 1
                report.warnings.append(Notice(item.path, item.line, f"same paper as {p.paper_id} from {prev[1]} "
                                              "(the same id); kept that one"))
            else:
                report.rejected.append(Rejection(item.path, item.line, f"duplicate id {p.paper_id} with different "
                                                 f"content (first seen at {prev[1]}); kept the first"))
            continue
        seen[p.paper_id] = (p.content_hash, f"{item.path}:{item.line}")
        batch.append(item)
        if len(batch) >= BATCH_PAPERS:
            yield batch
            batch = []
    if batch:
        yield batch


def _plan(batch: list[Located], store: ChunkStore, report: IngestReport) -> list[tuple[Located, list[str]]]:
    """Papers of a batch that need writing (new or changed), each with its currently stored chunk ids."""
    stored = store.hashes_of([it.paper.paper_id for it in batch])
    todo: list[tuple[Located, list[str]]] = []
    for it in batch:
        old = stored.get(it.paper.paper_id)
        if old is None:
            report.added += 1
            todo.append((it, []))
            report.changes.append((it.paper.paper_id, None, it.paper.content_hash))
        elif old[0] == it.paper.content_hash:
            report.unchanged += 1
        else:
            report.updated += 1
            todo.append((it, old[1]))
            report.changes.append((it.paper.paper_id, old[0], it.paper.content_hash))
    return todo


def _write(store: ChunkStore, nodes: list[TextNode], todo: list[tuple[Located, list[str]]],
           index_batch: Callable[[list[TextNode], Callable[[], None]], None] | None = None) -> None:
    """Upsert the new chunks, then delete the replaced versions' leftovers (through `index_batch`, when
    given, which brackets the Chroma write with its own bookkeeping)."""
    def write() -> None:
        store.upsert(nodes)
        new_ids = {n.node_id for n in nodes}
        store.delete([cid for _, old_ids in todo for cid in old_ids if cid not in new_ids])

    if index_batch is None:
        write()
    else:
        index_batch(nodes, write)


def embed_nodes(nodes: list[TextNode], embed: LocalEmbedding, evidence: bool) -> list[tuple[str, str, np.ndarray]]:
    """Set each node's embedding; with `evidence`, also return per paper its chunk vectors followed by its
    sentences' late-pooled ones (same forward pass, ingest.encoders.encode_units) for the SentenceStore."""
    texts = [embed_text(n.metadata["title"], n.text) for n in nodes]
    if not evidence:
        for node, vec in zip(nodes, embed.get_text_embedding_batch(texts)):
            node.embedding = vec
        return []
    units = [evidence_units(str(n.metadata["title"]), n.text) for n in nodes]
    vecs, mats = embed.get_text_and_unit_embeddings(texts, units)
    chunks: dict[str, list[np.ndarray]] = {}
    sents: dict[str, list[np.ndarray]] = {}
    hashes: dict[str, str] = {}
    for node, vec, mat in zip(nodes, vecs, mats):
        node.embedding = vec
        pid = str(node.metadata["paper_id"])
        hashes[pid] = str(node.metadata["content_hash"])
        chunks.setdefault(pid, []).append(np.asarray([vec], dtype=np.float32))
        sents.setdefault(pid, []).append(mat[np.linalg.norm(mat, axis=1) > 0])  # drop units cut off by truncation
    return [(pid, h, np.concatenate(chunks[pid] + sents[pid])) for pid, h in hashes.items()]


def backfill(sentences: SentenceStore, embed: LocalEmbedding, batch: list[Located], skip: set[int]) -> int:
    """Write sentence vectors for the papers of `batch` (not in `skip`) that are stored in Chroma but have none
    for their content; Chroma and the lexical index are not touched (the chunk vectors come from the cache)."""
    have = sentences.hashes([it.paper.paper_id for it in batch])
    need = [it for it in batch if id(it) not in skip and have.get(it.paper.paper_id) != it.paper.content_hash]
    for i in range(0, len(need), BATCH_PAPERS // 4):
        nodes = [n for it in need[i:i + BATCH_PAPERS // 4] for n in chunk_paper(it.paper, window_tokens=embed.window_tokens)]
        sentences.put(embed_nodes(nodes, embed, True))
    return len(need)


def ingest_paths(
    paths: Iterable[str | Path],
    store: ChunkStore,
    embed: LocalEmbedding,
    progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    before_first_write: Callable[[], None] | None = None,
    commit_seconds: float = COMMIT_SECONDS,
    index_batch: Callable[[list[TextNode], Callable[[], None]], None] | None = None,
    sentences: SentenceStore | None = None,
) -> IngestReport:
    """Write every paper under `paths` into the Chroma store; re-ingesting identical content writes nothing.

    `before_first_write` runs once, before Chroma is first changed (the Collection leaves its DIRTY
    marker there). Keeping the lexical index in step is the caller's job (ingest.collection.Collection):
    `index_batch(nodes, write)`, when given, is called for each commit with its chunks and the function that
    writes them to Chroma, so an incremental index can journal, write and index that commit in step.

    Embedded papers are committed every ~`commit_seconds` (whole papers, never part of one), so an
    interrupted ingest keeps what it embedded, and the progress bar moves at that pace. On Ctrl-C the write
    in flight is finished, the number of papers kept is printed and KeyboardInterrupt propagates (the
    marker left behind makes the next open repair the lexical index from Chroma).

    With `sentences` (given only for an embedder that can late-pool: Collection.embed_can_pool decides), each
    commit also writes its papers' chunk and sentence vectors there, before the chunks reach Chroma
    (ingest/sentence_store.py)."""
    import time

    from tqdm import tqdm

    t0 = time.perf_counter()
    report = IngestReport()
    paths = list(paths)
    items = (it for p in paths for it in read_path(p))
    total = estimate_records(paths) if progress else None  # a second, fast pass: gives the bar its ETA
    bar = tqdm(total=total, unit=" papers", disable=not progress, file=sys.stderr, desc="ingest",
               dynamic_ncols=True, smoothing=0.1)
    changed = False
    pacer = Pacer(commit_seconds)
    done = 0  # records handled (read and, when needed, embedded and handed to the writer)
    committed = [0]  # papers whose writes finished

    def advance(n: int) -> None:
        nonlocal done
        if n <= 0:
            return
        done += n
        bar.update(n)
        if on_progress:
            on_progress(done, 0)

    def write(nodes: list[TextNode], part: list[tuple[Located, list[str]]],
              rows: list[tuple[str, str, np.ndarray]]) -> None:
        if sentences is not None and rows:
            sentences.put(rows)
        _write(store, nodes, part, index_batch)
        committed[0] += len(part)

    # Chroma writes one commit while the next is chunked and embedded (the upsert is ~12% of ingest time at
    # 2k papers). At most one write is in flight; its errors surface here.
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="paperchat-write") as writer:
            pending: Future[None] | None = None
            deduper = Deduper()
            for read_batch in _batches(items, report):
                batch, notes = deduper.check_batch(read_batch, store)  # one paper from several sources: kept once
                report.duplicates += len(read_batch) - len(batch)
                report.warnings.extend(notes)
                todo = _plan(batch, store, report)
                if sentences is not None:  # stored papers without sentence vectors (written before they existed) get them
                    backfill(sentences, embed, batch, {id(it) for it, _ in todo})
                handled = 0
                if todo and not changed:
                    if before_first_write is not None:
                        before_first_write()
                    changed = True
                for part in pacer.slices(todo):
                    t1 = time.perf_counter()
                    nodes: list[TextNode] = []
                    for it, _ in part:
                        nodes.extend(chunk_paper(it.paper, window_tokens=embed.window_tokens))
                    rows = embed_nodes(nodes, embed, sentences is not None)
                    if pending is not None:
                        pending.result()
                    pending = writer.submit(write, nodes, part, rows)
                    report.chunks_written += len(nodes)
                    pacer.record(len(part), time.perf_counter() - t1)
                    handled += len(part)
                    advance(len(part))
                release_free_memory()
                advance(len(read_batch) - handled)  # unchanged and duplicate records of the batch
            if pending is not None:
                pending.result()
    except KeyboardInterrupt:
        bar.close()
        print(f"\ningest interrupted: {committed[0]} new or updated papers were committed and are kept "
              "(run the same command again to finish)", file=sys.stderr, flush=True)
        raise
    bar.close()
    if changed and hasattr(embed, "ensure_query_model"):
        embed.ensure_query_model()  # after the embedding work, so the export never competes with it
    report.chunks_total = store.count()
    report.seconds = time.perf_counter() - t0
    return report
