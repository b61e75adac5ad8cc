"""Ingest: what a collection is made of (readers, chunking, embeddings, Chroma and BM25 stores)."""
