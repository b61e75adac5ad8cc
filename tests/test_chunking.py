"""Chunking: sentence-aligned, tiktoken budget, never over the embedding window."""

from __future__ import annotations

from ingest.chunking import chunk_paper, chunk_texts, count_tokens
from ingest.embeddings import LocalEmbedding
from ingest.readers import Located, read_path
from ingest.records import make_paper
from ingest.sentences import split_sentences
from tests.conftest import SAMPLE


def test_sentence_splitter_keeps_abbreviations() -> None:
    s = split_sentences("It works, e.g. in Fig. 2. Smith et al. agree. Accuracy rose 3.5 points! Why?")
    assert s == ["It works, e.g. in Fig. 2.", "Smith et al. agree.", "Accuracy rose 3.5 points!", "Why?"]


def test_chunks_respect_budget_and_keep_all_text() -> None:
    text = " ".join(f"Sentence number {i} talks about neural networks and data." for i in range(80))
    chunks = chunk_texts(text, budget=100)
    assert len(chunks) > 1
    assert all(count_tokens(c) <= 100 for c in chunks)
    assert " ".join(chunks) == text


def test_short_abstract_is_one_chunk_with_title_in_metadata() -> None:
    p = make_paper(title="Tiny", abstract="One short abstract. Two sentences.")
    (node,) = chunk_paper(p)
    assert node.metadata["title"] == "Tiny" and node.text == p.abstract


def test_no_sample_chunk_exceeds_model_window() -> None:
    emb = LocalEmbedding()
    for item in read_path(SAMPLE):
        assert isinstance(item, Located)
        for node in chunk_paper(item.paper, window_tokens=emb.window_tokens):
            assert emb.window_tokens(f"{item.paper.title}. {node.text}") <= 256
