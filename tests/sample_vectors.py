"""The bundled model's vectors for the chunks of data/sample, shipped so the fast suite's sample index costs no
forward pass (131 chunks, ~5 s of CPU on a 2-core machine). The test session seeds its embedding cache with them;
ingest, Chroma, the lexical index and every query still run for real, and other tests embed with the model.

tests/test_embeddings.py checks that they cover the sample's chunks and are the model's; when data/sample or the
chunking changes, refresh them:  python -m tests.sample_vectors
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from ingest.embeddings import BUNDLED_MODEL, EmbeddingCache

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "data" / "sample_vectors.npz"


def load(path: Path = VECTORS) -> tuple[list[str], np.ndarray]:
    """(chunk texts, float32 vectors) as shipped; nothing when the file is missing."""
    if not path.exists():
        return [], np.zeros((0, 0), dtype=np.float32)
    with np.load(path, allow_pickle=False) as z:
        if str(z["model"]) != BUNDLED_MODEL:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [str(t) for t in z["texts"]], z["vectors"].astype(np.float32)


def seed(cache_path: Path) -> int:
    """Put the shipped vectors into the embedding cache at cache_path; returns how many."""
    texts, vectors = load()
    if texts:
        EmbeddingCache(cache_path, BUNDLED_MODEL).put_many(texts, vectors)
    return len(texts)


def sample_chunk_texts(home: Path, cache_dir: Path) -> tuple[list[str], np.ndarray]:
    """Ingest data/sample with the real model into home; the texts it embedded (in order) and their vectors."""
    from ingest.embeddings import LocalEmbedding
    from rag.engine import Paperchat

    texts: list[str] = []
    vectors: list[list[float]] = []
    real = LocalEmbedding.get_text_embedding_batch

    def record(self: LocalEmbedding, batch: list[str], show_progress: bool = False, **kw: object) -> list[list[float]]:
        out = real(self, batch, show_progress, **kw)
        texts.extend(batch)
        vectors.extend(out)
        return out

    export = LocalEmbedding.ensure_query_model
    LocalEmbedding.get_text_embedding_batch = record  # type: ignore[method-assign]
    LocalEmbedding.ensure_query_model = lambda self: None  # type: ignore[method-assign]  # no ONNX export child
    try:
        Paperchat(home=home, cache_dir=cache_dir).ingest([ROOT / "data" / "sample"])
    finally:
        LocalEmbedding.get_text_embedding_batch = real  # type: ignore[method-assign]
        LocalEmbedding.ensure_query_model = export  # type: ignore[method-assign]
    return texts, np.asarray(vectors, dtype=np.float32)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        texts, vectors = sample_chunk_texts(Path(tmp) / "home", Path(tmp) / "cache")  # a cold cache: the model runs
    np.savez_compressed(VECTORS, model=np.array(BUNDLED_MODEL), texts=np.array(texts), vectors=vectors)
    print(f"{VECTORS.relative_to(ROOT)}: {len(texts)} chunks, {VECTORS.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
