"""The Chroma side of a collection: client (embedded or server), model check, chunk writes and reads,
the content fingerprint, and the one function that rebuilds papers from their chunks."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from llama_index.core.schema import BaseNode

PAGE = 500  # Chroma get() pages: 5000 cost +400 MB RSS reading 17k chunks, 500 costs +52 MB at the same speed


def paper_id_of(chunk_id: str) -> str:
    """The paper id inside a chunk id `paper_id#content_hash#i`."""
    return chunk_id.rsplit("#", 2)[0]


class EmbeddingMismatchError(RuntimeError):
    """The collection was built with another embedding model than the one configured."""


def make_client(home: Path, chroma_url: str | None = None) -> Any:
    """An embedded PersistentClient under `home`, or an HttpClient for a `chroma run` server."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if chroma_url:
        u = urlparse(chroma_url)
        return chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                   ssl=u.scheme == "https", settings=settings)
    (home / "chroma").mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(home / "chroma"), settings=settings)


@dataclass
class ChunkRow:
    """One stored chunk as read back from Chroma."""

    id: str
    text: str
    meta: dict[str, Any]


class ChunkStore:
    """A Chroma collection of abstract chunks that records which embedding model made its vectors."""

    def __init__(self, client: Any, name: str, model: str, dim: int) -> None:
        self.client = client
        self.name = name
        # embedding_function=None: Chroma's default one downloads an ONNX model; we always pass vectors.
        self.collection = client.get_or_create_collection(
            name,
            metadata={"hnsw:space": "cosine", "embedding_model": model, "embedding_dim": dim},
            embedding_function=None,
        )
        meta = self.collection.metadata or {}
        if meta.get("embedding_model") != model or int(meta.get("embedding_dim", dim)) != dim:
            raise EmbeddingMismatchError(
                f"collection '{name}' was built with {meta.get('embedding_model')} "
                f"({meta.get('embedding_dim')}-d), not {model} ({dim}-d): use another "
                f"PAPERCHAT_COLLECTION or PAPERCHAT_HOME, or re-ingest into a new one"
            )
        self.model = model
        self.dim = dim

    def count(self) -> int:
        return int(self.collection.count())

    def stored_fingerprint(self) -> str | None:
        """The fingerprint the last writer recorded in the collection's metadata (cheap: no chunk is read)."""
        meta = self.client.get_collection(self.name, embedding_function=None).metadata or {}
        fp = meta.get("fingerprint")
        return str(fp) if fp else None

    def record_fingerprint(self, fingerprint: str) -> None:
        """Store the fingerprint in the collection metadata (writer only)."""
        meta = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        meta["fingerprint"] = fingerprint
        self.collection.modify(metadata=meta)  # hnsw:* keys cannot be re-sent; the space is kept

    def paper_hashes(self) -> dict[str, str]:
        """paper_id -> content hash of every stored paper (one metadata pass over all chunks)."""
        out: dict[str, str] = {}
        for row in self.iter_chunks(documents=False):
            out[str(row.meta["paper_id"])] = str(row.meta.get("content_hash", ""))
        return out

    def hashes_of(self, paper_ids: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
        """paper_id -> (content hash, chunk ids) for the given papers that are stored."""
        out: dict[str, tuple[str, list[str]]] = {}
        for i in range(0, len(paper_ids), 1000):
            got = self.collection.get(where={"paper_id": {"$in": list(paper_ids[i:i + 1000])}}, include=["metadatas"])
            for cid, meta in zip(got["ids"], got["metadatas"]):
                pid = str(meta["paper_id"])
                h, ids = out.get(pid, (str(meta.get("content_hash", "")), []))
                ids.append(cid)
                out[pid] = (h if h == meta.get("content_hash") else "mixed", ids)
        return out

    def upsert(self, nodes: Sequence[BaseNode]) -> None:
        """Write nodes with their embeddings.

        Not ChromaVectorStore.add: it calls collection.add, which is not idempotent when a killed
        ingest is rerun; upsert with our deterministic ids is.
        """
        if not nodes:
            return
        # The node's own flat metadata only: no llama-index `_node_content` JSON copy of the node (nothing
        # reads it; it was larger than the chunk text, 1,424 -> 292 bytes of metadata per chunk).
        metas = [{k: ("" if v is None else v) for k, v in node.metadata.items()} for node in nodes]
        self.collection.upsert(
            ids=[n.node_id for n in nodes],
            embeddings=[n.get_embedding() for n in nodes],
            metadatas=metas,
            documents=[n.get_content() for n in nodes],
        )

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.collection.delete(ids=list(ids))

    def delete_papers(self, paper_ids: Sequence[str]) -> int:
        """Delete every chunk of the given papers; returns how many chunks went."""
        found = self.hashes_of(paper_ids)
        ids = [cid for _, cids in found.values() for cid in cids]
        self.delete(ids)
        return len(ids)

    def iter_chunks(self, where: dict[str, Any] | None = None, documents: bool = True) -> Iterator[ChunkRow]:
        """Every stored chunk (text and metadata), paged."""
        offset = 0
        include = ["documents", "metadatas"] if documents else ["metadatas"]
        while True:
            got = self.collection.get(where=where, include=include, limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            docs = got["documents"] if documents else [""] * len(got["ids"])
            for cid, doc, meta in zip(got["ids"], docs, got["metadatas"]):
                yield ChunkRow(cid, doc or "", dict(meta))
            offset += len(got["ids"])

    def papers(self, paper_ids: Sequence[str]) -> dict[str, StoredPaper]:
        """The stored papers with these ids (missing ids are left out)."""
        rows: list[ChunkRow] = []
        for i in range(0, len(paper_ids), 1000):
            got = self.collection.get(where={"paper_id": {"$in": list(paper_ids[i:i + 1000])}},
                                      include=["documents", "metadatas"])
            rows.extend(ChunkRow(cid, doc or "", dict(meta))
                        for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]))
        return assemble_papers(rows)


@dataclass(frozen=True)
class StoredPaper:
    """A paper as rebuilt from its stored chunks."""

    paper_id: str
    title: str
    abstract: str
    authors: str = ""
    url: str | None = None
    year: int | None = None
    date: str = ""
    categories: str = ""
    content_hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"paper_id": self.paper_id, "title": self.title, "abstract": self.abstract, "authors": self.authors,
                "url": self.url, "year": self.year, "date": self.date, "categories": self.categories}


def assemble_papers(rows: Iterable[ChunkRow]) -> dict[str, StoredPaper]:
    """The one place papers are rebuilt from chunks: text joined in chunk order, metadata from a chunk."""
    parts: dict[str, list[tuple[int, str]]] = defaultdict(list)
    metas: dict[str, dict[str, Any]] = {}
    for row in rows:
        pid = str(row.meta["paper_id"])
        parts[pid].append((int(row.meta.get("chunk", 0)), row.text))
        metas[pid] = row.meta
    out = {}
    for pid in sorted(parts):
        m = metas[pid]
        year = m.get("year")
        out[pid] = StoredPaper(pid, str(m.get("title", "")), " ".join(t for _, t in sorted(parts[pid])),
                               str(m.get("authors", "")), str(m.get("url") or "") or None,
                               int(year) if isinstance(year, int) else None, str(m.get("date", "")),
                               str(m.get("categories", "")), str(m.get("content_hash", "")))
    return out


def fingerprint(pairs: Iterable[tuple[str, str]]) -> str:
    """Content fingerprint of a collection: `<papers>-<sum of sha256(paper_id, content_hash)>` (mod 2^128).

    Order-independent and updatable one paper at a time (add or subtract its term), so an incremental
    lexical engine can keep it without re-reading the collection."""
    n, total = 0, 0
    for pid, h in pairs:
        n += 1
        total += fingerprint_term(pid, h)
    return f"{n}-{total % (1 << 128):032x}"


def fingerprint_update(fp: str, removed: Iterable[tuple[str, str]], added: Iterable[tuple[str, str]]) -> str:
    """`fp` with some papers' terms taken out and others put in (an incremental index's bookkeeping)."""
    n_text, _, total_hex = fp.partition("-")
    n, total = int(n_text), int(total_hex, 16)
    for pid, h in removed:
        n, total = n - 1, total - fingerprint_term(pid, h)
    for pid, h in added:
        n, total = n + 1, total + fingerprint_term(pid, h)
    return f"{n}-{total % (1 << 128):032x}"


def fingerprint_term(paper_id: str, content_hash: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{paper_id}\0{content_hash}".encode()).digest()[:16], "big")
