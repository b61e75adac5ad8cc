"""Sentence evidence (MaxP): late pooling of sentence spans, the per-paper vector store, and retrieval that
ranks a paper by its best sentence on a real embedded Chroma over data/sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.chunking import embed_text, evidence_units, sentence_spans
from ingest.embeddings import bundled_model_path
from ingest.encoders import load_tokenizer, span_pool
from ingest.sentence_store import SentenceStore, best_unit_scores


def test_span_pool_means_the_tokens_inside_each_unit() -> None:
    hidden = np.array([[9, 9], [1, 0], [3, 0], [0, 2], [0, 4], [9, 9]], dtype=np.float32)  # [CLS] a b c d [SEP]
    offsets = [(0, 0), (0, 2), (3, 5), (6, 8), (9, 11), (0, 0)]
    units = [((0, 5),), ((6, 11),), ((0, 2), (9, 11)), ((20, 30),)]
    out = span_pool(hidden, offsets, units)
    np.testing.assert_allclose(out[0], [1, 0])  # mean (2, 0), normalised; special tokens never count
    np.testing.assert_allclose(out[1], [0, 1])
    np.testing.assert_allclose(out[2], np.array([1, 4]) / np.hypot(1, 4), rtol=1e-6)
    assert not out[3].any()  # no token inside: a zero row (cut off by truncation)


def test_sentence_units_cover_exactly_the_sentence_tokens() -> None:
    title, chunk = "Deep networks grok", "Grokking is delayed generalization. We show it e.g. in Fig. 2. It ends."
    text = embed_text(title, chunk)
    spans = sentence_spans(title, chunk)
    assert [text[a:b] for a, b in spans] == ["Grokking is delayed generalization.", "We show it e.g. in Fig. 2.",
                                             "It ends."]
    assert evidence_units(title, chunk)[1] == ((0, len(title)), spans[1])
    tok = load_tokenizer(str(bundled_model_path()))
    enc = tok.encode(text)
    hidden = np.eye(len(enc.ids), dtype=np.float32)  # one axis per token: the pooled row shows which tokens count
    pooled = span_pool(hidden, enc.offsets, [(s,) for s in spans])
    for (a, b), row in zip(spans, pooled):
        picked = [enc.tokens[i] for i in np.flatnonzero(row)]
        assert "".join(t.removeprefix("##") for t in picked) == text[a:b].replace(" ", "").lower()


def test_store_round_trip_replace_delete(tmp_path: Path) -> None:
    st = SentenceStore(tmp_path / "s.sqlite", 4)
    a = np.eye(3, 4, dtype=np.float32)
    st.put([("p1", "h1", a), ("p2", "h2", a[:1])])
    st.put([("p1", "h1b", a[1:])])
    got = st.get(["p1", "p2", "nope"])
    assert set(got) == {"p1", "p2"} and got["p1"][0] == "h1b"
    np.testing.assert_array_equal(got["p1"][1], a[1:])
    st.delete(["p2"])
    assert st.hashes() == {"p1": "h1b"} and st.count() == 1
    assert SentenceStore.open(tmp_path / "missing.sqlite", 4) is None
    scores = best_unit_scores(np.array([0, 0, 1, 0], dtype=np.float32), st.get(["p1"]))
    assert scores == {"p1": pytest.approx(1.0)}


# One sentence from the middle of a long sample abstract: dense retrieval by chunks alone ranks its paper third
# (bf16 vectors, measured), by sentence evidence first
SENTENCE_QUESTION = ("The network is shown to be able to handle noise in the data and errors in the symbolic "
                     "representation, including noisy numerical values, model misspecification, and erroneous "
                     "addition or deletion of terms.", "t:07cb66b91e5ce8a7")


@pytest.fixture(scope="module")
def sample_with_evidence(tmp_path_factory: pytest.TempPathFactory, embed):  # type: ignore[no-untyped-def]
    """data/sample ingested with sentence evidence on (real Chroma, BM25 and sentence store)."""
    from ingest.collection import Collection
    from rag.engine import Paperchat
    from tests.conftest import SAMPLE

    home = tmp_path_factory.mktemp("sample_evidence")
    pc = Paperchat.over(Collection(home, embed=embed, sentence_evidence=True), home=home, sentence_evidence=True)
    assert pc.ingest([SAMPLE]).added == 65
    return pc


def test_a_sentence_level_match_lifts_the_right_paper(sample_with_evidence) -> None:  # type: ignore[no-untyped-def]
    """On a real embedded Chroma over data/sample: the paper with the matching sentence comes first."""
    from rag.engine import Paperchat

    pc = sample_with_evidence
    assert pc.collection.sentences is not None and pc.collection.sentences.count() == 65
    on = Paperchat.over(pc.collection, pc.settings, sentence_rescore=0)  # the sidecar's evidence alone
    off = Paperchat.over(pc.collection, pc.settings, sentence_evidence=False, sentence_rescore=0)
    question, paper = SENTENCE_QUESTION
    on_rank = [h.paper_id for h in on.retriever("dense", top_k=10).hits(question)]
    off_rank = [h.paper_id for h in off.retriever("dense", top_k=10).hits(question)]
    assert on_rank[0] == paper
    assert paper in off_rank[1:]  # by chunks alone another paper comes first
    assert [s.paper_id for s in pc.retrieve(question, k=1)] == [paper]  # hybrid, the path `ask` uses


def test_old_collection_falls_back_then_reingest_adds_sentence_vectors(tmp_path: Path, embed) -> None:  # type: ignore[no-untyped-def]
    """A collection written without sentence vectors answers by chunks, doctor notes it, re-ingest backfills."""
    import json

    from ingest.collection import Collection
    from rag.engine import Paperchat

    records = [{"id": f"2401.0000{i}", "title": t, "abstract": a, "categories": "cs.LG", "update_date": "2024-01-01"}
               for i, (t, a) in enumerate([
                   ("Sparse attention", "We study sparse attention. It scales to long inputs. Speed doubles."),
                   ("Protein folding", "We fold proteins with diffusion. Accuracy improves on CASP targets."),
               ])]
    f = tmp_path / "c.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in records))
    home = tmp_path / "h"
    old = Collection(home, embed=embed, sentence_evidence=False)
    old.ingest([f])
    assert not (home / "sentences").exists()
    pc = Paperchat.over(Collection(home, embed=embed, sentence_evidence=True), home=home, sentence_evidence=True)
    assert pc.collection.sentences is None
    assert pc.retrieve("diffusion protein folding", k=1)[0].title == "Protein folding"  # chunks only
    note = pc.health().notes
    assert len(note) == 1 and "2 of 2 papers have no sentence vectors" in note[0]
    report = pc.ingest([f])
    assert (report.unchanged, report.chunks_written) == (2, 0)  # Chroma and BM25 untouched
    st = pc.collection.sentences
    assert st is not None and set(st.hashes()) == {"arxiv:2401.00000", "arxiv:2401.00001"}
    assert pc.health().notes == []
    assert pc.retrieve("diffusion protein folding", k=1)[0].title == "Protein folding"


@pytest.fixture(scope="module")
def embed(cache_dir: Path):  # type: ignore[no-untyped-def]
    from tests.shared_model import embedding_model

    return embedding_model(cache_dir)
