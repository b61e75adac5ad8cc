"""Retrieval: dense (Chroma), lexical (BM25), their fusion, paper-level aggregation, reranking."""
