"""End to end over a real embedded Chroma: ingest the sample, ask, abstain, JSON contract, offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.filters import Filters
from rag.cli import main
from rag.engine import Paperchat
from rag.types import Source
from tests.conftest import ROOT, SAMPLE, NetworkGuard

GROK = "Which paper explains why grokking happens in deep networks?"


def test_grokking_question_cites_the_grokking_paper(sample_engine: Paperchat) -> None:
    ans = sample_engine.ask(GROK)
    assert not ans.abstained
    assert ans.citations and ans.citations[0].title == "Deep Networks Always Grok and Here is Why"
    assert "[1]" in ans.answer


def test_out_of_corpus_question_abstains(sample_engine: Paperchat) -> None:
    ans = sample_engine.ask("What is the boiling point of ethanol at sea level?")
    assert ans.abstained and ans.citations == [] and "[" not in ans.answer


def test_every_marker_has_a_citation_and_matches_sources(sample_engine: Paperchat) -> None:
    import re

    for q in [GROK, "How can large language models be edited quickly?", "neural vocoder speech synthesis"]:
        ans = sample_engine.ask(q)
        d = ans.to_dict()
        nums = {int(n) for n in re.findall(r"\[(\d+)\]", d["answer"])}
        assert nums == {c["n"] for c in d["citations"]}
        for c in d["citations"]:
            assert d["sources"][c["n"] - 1]["paper_id"] == c["paper_id"]
            assert c["quote"] in d["sources"][c["n"] - 1]["text"]
        assert set(d) >= {"question", "answer", "abstained", "backend", "citations", "sources", "timings_ms", "notice"}


def test_reingest_adds_nothing_and_changed_abstract_replaces_chunks(tmp_path: Path) -> None:
    pc = Paperchat(home=tmp_path / "h")
    f = tmp_path / "p.jsonl"
    rec = {"id": "x1", "title": "Sparse attention for long documents", "abstract": "We study sparse attention. " * 3}
    f.write_text(json.dumps(rec) + "\n")
    assert pc.ingest([f]).added == 1
    assert pc.ingest([f]).unchanged == 1
    n_before = pc.store.count()
    rec["abstract"] = "A new abstract about dense retrieval."
    f.write_text(json.dumps(rec) + "\n")
    r = pc.ingest([f])
    assert r.updated == 1 and pc.store.count() == 1 <= n_before
    assert pc.retrieve("dense retrieval", k=1)[0].text == "A new abstract about dense retrieval."


def test_ingest_and_ask_open_no_outside_connection(tmp_path: Path, network_guard: NetworkGuard) -> None:
    pc = Paperchat(home=tmp_path / "h")
    pc.ingest([SAMPLE])
    pc.ask(GROK)
    assert network_guard.outside() == []


def test_filters_restrict_to_paper_ids(sample_engine: Paperchat) -> None:
    ids = [s.paper_id for s in sample_engine.retrieve("speech synthesis", k=10)][3:5]
    got = sample_engine.retrieve("grokking in deep networks", k=10, filters=Filters(paper_ids=tuple(ids)))
    assert {s.paper_id for s in got} <= set(ids) and got


def test_cli_ask_json_and_stats(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["ingest", str(SAMPLE), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["ask", GROK, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["citations"][0]["title"] == "Deep Networks Always Grok and Here is Why"
    assert main(["stats", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["papers"] == 65 and st["chunks"] >= 65 and st["embedding_model"] == "all-MiniLM-L6-v2"
    assert main(["ask", "What is the best learning rate schedule for ResNet-50 on ImageNet?"]) == 0
    out = capsys.readouterr().out  # abstained: the closest papers, with the flag that asks one anyway
    assert out.startswith("I found nothing") and "Closest papers" in out
    pid = out.split("(--paper ")[1].split(")")[0]
    assert main(["ask", "Summarise this paper", "--paper", pid]) == 0
    out = capsys.readouterr().out
    assert "[notice] The question does not closely match" in out and f"({pid})" in out


def test_cli_ingest_missing_path_exits_nonzero(tmp_path: Path) -> None:
    assert main(["ingest", str(tmp_path / "missing.jsonl"), "--quiet"]) == 1


def test_questions_file_writes_jsonl(tmp_path: Path) -> None:
    qf = tmp_path / "q.txt"
    qf.write_text(GROK + "\nWhat is the boiling point of ethanol?\n")
    env_home = tmp_path / "home2"
    cmd = [sys.executable, "-m", "rag.cli"]
    subprocess.run(cmd + ["ingest", str(SAMPLE), "--quiet", "--home", str(env_home)], check=True, cwd=ROOT)
    out = subprocess.run(cmd + ["ask", "--questions", str(qf), "--json", "--home", str(env_home)],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["abstained"] for r in rows] == [False, True]


class _Scripted:
    """A deterministic answerer that cites source [1] and names itself (no LLM server needed for this test)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def stream(self, question: str, sources: list[Source]) -> Iterator[str]:
        yield re.split(r"(?<=\.)\s", sources[0].text)[0] + " [1]"  # a sentence the source supports

    def shown(self, question: str, sources: list[Source]) -> list[Source]:
        return sources


def test_answer_in_flight_keeps_its_backend_when_another_user_switches(
        sample_engine: Paperchat, monkeypatch: pytest.MonkeyPatch) -> None:
    """A switch while a question is being retrieved (another UI session) applies to the next question only."""
    from rag.retrieval import sources as sources_mod

    real = sources_mod.retrieve
    first, second = _Scripted("first"), _Scripted("second")

    def retrieve_then_switch(*args: Any, **kwargs: Any) -> list[Source]:
        found = real(*args, **kwargs)
        sample_engine.use_answerer(second)  # as if another session switched meanwhile
        return found

    sample_engine.use_answerer(first)
    monkeypatch.setattr(sources_mod, "retrieve", retrieve_then_switch)
    try:
        ans = sample_engine.ask("What is grokking?")
        assert ans.backend == "first" and not ans.notice
        monkeypatch.setattr(sources_mod, "retrieve", real)
        assert sample_engine.ask("What is grokking?").backend == "second"
    finally:
        sample_engine.use_answerer(None)


def test_question_restricted_to_chosen_papers_is_answered_from_them(sample_engine: Paperchat) -> None:
    """"Summarise this paper" shares no words with any abstract: asked of the whole collection the gate refuses
    it, asked of a paper the user picked it is answered from that paper, with a notice saying it matched loosely."""
    from rag.relevance import CHOSEN_NOTICE

    pid = sample_engine.list_papers("Always Grok", limit=1)[0]["paper_id"]
    assert sample_engine.ask("Summarise this paper").abstained
    ans = sample_engine.ask("Summarise this paper", filters=Filters(paper_ids=(pid,)))
    assert not ans.abstained and ans.notice == CHOSEN_NOTICE
    assert [c.paper_id for c in ans.citations] == [pid]
    close = sample_engine.ask(GROK, filters=Filters(paper_ids=(pid,)))
    assert not close.abstained and not close.notice  # a matching question gets no notice
