"""Query-time sentence rescoring of the ranking's head (rag/retrieval/best_sentence.py): a table-driven unit test
with a deterministic fake encoder, and the real thing on an embedded Chroma over data/sample."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from rag.retrieval.best_sentence import best_sentence_scores, rescore_head

AXES = {"alpha": 0, "beta": 1, "gamma": 2}


class AxisEmbed:
    """A text's vector is the unit axis of the first keyword it contains (else the last axis); counts texts."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        assert len(texts) <= 64  # the query path's batch bound: small batches stay on the ONNX encoder
        self.texts.extend(texts)
        out = []
        for t in texts:
            v = [0.0] * 4
            v[next((i for w, i in AXES.items() if w in t.lower()), 3)] = 1.0
            out.append(v)
        return out


PAPERS: Mapping[str, tuple[str, str]] = {
    "p1": ("Title one", "Nothing relevant here. Alpha appears in this sentence."),
    "p2": ("Title two", "Only beta talk. More beta."),
    "p3": ("Title three", "Alpha would match, but p3 is past the head."),
    "p4": ("Title four", ""),
}


@pytest.mark.parametrize(("case", "dense", "head", "want"), [
    ("a head paper whose sentence matches is raised to it", {"p1": 0.2, "p2": 0.5}, ["p1", "p2"],
     {"p1": 1.0, "p2": 0.5}),
    ("a better chunk score is never lowered", {"p1": 0.2, "p2": 0.5}, ["p2"], {"p1": 0.2, "p2": 0.5}),
    ("papers past the head keep their chunk score", {"p1": 0.1, "p3": 0.3}, ["p1"], {"p1": 1.0, "p3": 0.3}),
    ("a BM25-only head paper gains a dense score", {"p2": 0.5}, ["p1", "p2"], {"p1": 1.0, "p2": 0.5}),
    ("a paper without text keeps its score", {"p4": 0.4}, ["p4"], {"p4": 0.4}),
])
def test_rescore_head(case: str, dense: dict[str, float], head: list[str], want: dict[str, float]) -> None:
    embed = AxisEmbed()
    got, _ = rescore_head(embed, [1.0, 0.0, 0.0, 0.0], head, dense, len(head),
                       lambda ids: {p: PAPERS[p] for p in ids})
    assert got == pytest.approx(want), case
    assert all(t.split(". ", 1)[0] in {PAPERS[p][0] for p in head} for t in embed.texts)  # only the head embedded


def test_sentences_are_embedded_with_their_title_in_small_batches() -> None:
    embed = AxisEmbed()
    papers = {f"p{i}": ("T", " ".join(f"Sentence {j} of paper {i}." for j in range(10))) for i in range(10)}
    scores = best_sentence_scores(embed, [0.0, 0.0, 0.0, 1.0], papers)
    assert len(embed.texts) == 100 and embed.texts[0] == "T. Sentence 0 of paper 0."
    assert scores == pytest.approx({p: 1.0 for p in papers})


# One sentence from the middle of a long sample abstract: dense retrieval by chunks ranks its paper third
# (tests/test_sentence_evidence.py); its own sentence, embedded at question time, puts it first
QUESTION = ("The network is shown to be able to handle noise in the data and errors in the symbolic representation, "
            "including noisy numerical values, model misspecification, and erroneous addition or deletion of terms.")
PAPER = "t:07cb66b91e5ce8a7"


def on_engine(pc):  # type: ignore[no-untyped-def]
    """The same engine with rescoring of the top 5 switched on (it is opt-in)."""
    from rag.engine import Paperchat

    return Paperchat.over(pc.collection, pc.settings, sentence_rescore=5)


def test_rescoring_lifts_the_paper_with_the_matching_sentence(sample_engine) -> None:  # type: ignore[no-untyped-def]
    """Real Chroma, real MiniLM: off (the default), the paper is not first by chunks; on, it is, in both modes."""
    assert sample_engine.settings.sentence_rescore == 0  # opt-in
    on = on_engine(sample_engine)
    off_rank = [h.paper_id for h in sample_engine.retriever("dense", top_k=10).hits(QUESTION)]
    assert PAPER in off_rank[1:5]
    assert on.retriever("dense", top_k=10).hits(QUESTION)[0].paper_id == PAPER
    assert [s.paper_id for s in on.retrieve(QUESTION, k=1)] == [PAPER]  # hybrid, the path `ask` uses
    ans = on.ask(QUESTION)  # retrieval, the gate (with the displaced papers), the extractive answer
    assert not ans.abstained and ans.citations[0].paper_id == PAPER


def test_the_papers_rescoring_moves_out_are_kept_for_the_gate(sample_engine) -> None:  # type: ignore[no-untyped-def]
    on = on_engine(sample_engine)
    chunk_first = sample_engine.retriever("dense", top_k=1).hits(QUESTION)[0].paper_id
    top, displaced = on.retriever("dense", top_k=1).ranking(QUESTION)
    assert [h.paper_id for h in top] == [PAPER] and [h.paper_id for h in displaced] == [chunk_first]
    assert top[0].sentence > top[0].dense  # the best sentence beat the best chunk
    found = on.retrieve(QUESTION, k=1)
    assert [s.paper_id for s in found] == [PAPER]
    assert [s.paper_id for s in found.gate_also] in ([], [chunk_first])  # hybrid: BM25 may have agreed already
    assert found[0].coverage > 0 and all(s.n == 0 for s in found.gate_also)


def test_a_failing_paper_read_costs_the_rescoring_not_the_answer(sample_engine, caplog) -> None:  # type: ignore[no-untyped-def]
    r = on_engine(sample_engine).retriever("hybrid", top_k=10)

    def broken(ids: list[str]) -> dict[str, tuple[str, str]]:
        raise OSError("disk gone")

    r.texts_of = broken
    with caplog.at_level(logging.WARNING):
        got = [h.paper_id for h in r.hits(QUESTION)]
    assert got == [h.paper_id for h in sample_engine.retriever("hybrid", top_k=10).hits(QUESTION)]
    assert "sentence rescoring failed (OSError: disk gone)" in caplog.text
