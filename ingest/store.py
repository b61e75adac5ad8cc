"""The Chroma side of a collection: client (embedded or server), model check, chunk writes and reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.utils import node_to_metadata_dict

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
        metas = []
        for node in nodes:
            m = node_to_metadata_dict(node, remove_text=True, flat_metadata=True)
            metas.append({k: ("" if v is None else v) for k, v in m.items()})
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

    def iter_chunks(self, where: dict[str, Any] | None = None) -> Iterator[ChunkRow]:
        """Every stored chunk (text and metadata), paged."""
        offset = 0
        while True:
            got = self.collection.get(where=where, include=["documents", "metadatas"], limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                yield ChunkRow(cid, doc or "", dict(meta))
            offset += len(got["ids"])
