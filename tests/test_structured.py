"""Structured output (rag/answerers/structured.py): the schema, streaming JSON back to text, and the fallback
to free text (remembered) when an OpenAI-protocol server rejects `response_format` (fake server on 127.0.0.1).
The real llama.cpp server with the schema is in tests/test_llm_llamacpp.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from rag.answerers import structured
from rag.answerers.structured import StreamRenderer, answer_schema, as_json, render
from tests.test_llm_openai import SOURCES, FakeOpenAI, answerer


@pytest.fixture(autouse=True)
def _forget_rejections() -> Iterator[None]:
    structured._rejected.clear()
    yield
    structured._rejected.clear()


def _stream(obj: object, step: int = 3) -> str:
    buf = json.dumps(obj)
    r = StreamRenderer()
    parts = [r.feed(buf[i:i + step]) for i in range(0, len(buf), step)]
    return "".join(parts) + r.finish()


@pytest.mark.parametrize("obj,text", [
    ({"sentences": [{"text": "Grokking is delayed generalization.", "cites": [1]}]},
     "Grokking is delayed generalization [1]."),
    ({"sentences": [{"text": 'It is "late" \u2014 very.', "cites": [2, 1]}, {"text": "Second one", "cites": [1]}]},
     'It is "late" \u2014 very [2][1]. Second one [1]'),
    ({"sentences": []}, ""),
])
def test_streamed_json_renders_to_cited_text(obj: object, text: str) -> None:
    for step in (1, 3, 50):
        assert _stream(obj, step) == text


def test_partial_rendering_only_grows() -> None:
    buf = json.dumps({"sentences": [{"text": "Alpha beta. Gamma.", "cites": [1]}, {"text": "Delta.", "cites": [2]}]})
    prev = ""
    for i in range(len(buf) + 1):
        cur = render(buf[:i])
        assert cur.startswith(prev), (prev, cur)
        prev = cur


def test_prose_from_a_server_that_ignores_the_schema_passes_through() -> None:
    r = StreamRenderer()
    assert r.feed("  Grokking is late [1].") == "  Grokking is late [1]." and r.finish() == ""


def test_cut_off_json_keeps_what_arrived() -> None:
    r = StreamRenderer()
    out = r.feed('{"sentences": [{"text": "Grokking is late.", "cites": [1]}, {"text": "Pointer net') + r.finish()
    assert out == "Grokking is late [1]. Pointer net"


def test_schema_allows_only_shown_source_numbers() -> None:
    s = answer_schema([3, 1, 2])
    cites = s["properties"]["sentences"]["items"]["properties"]["cites"]
    assert cites["items"]["enum"] == [1, 2, 3] and cites["minItems"] == 1
    assert json.loads(as_json("Yes. It works [1]. It is slow [2]."))["sentences"] == [
        {"text": "Yes. It works.", "cites": [1]}, {"text": "It is slow.", "cites": [2]}]


def _chunks(obj: object) -> list[str]:
    buf = json.dumps(obj)
    return [buf[i:i + 7] for i in range(0, len(buf), 7)]


def test_structured_request_is_rendered_to_text(fake: FakeOpenAI) -> None:
    a = answerer(fake.url, llm_structured=True, evidence_ratio=0)
    fake.script = [("stream", _chunks({"sentences": [{"text": "Grokking is delayed generalization.", "cites": [1]}]}))]
    text = "".join(a.stream("What is grokking?", SOURCES))
    assert text == "Grokking is delayed generalization [1]."
    body = fake.requests[0][1]
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["sentences"]["items"]["properties"]["cites"]["items"]["enum"] == [1, 2]
    assert "Reply in JSON" in body["messages"][0]["content"] and body["messages"][2]["content"].startswith("{")


def test_server_rejecting_response_format_gets_free_text_once_and_is_remembered(fake: FakeOpenAI) -> None:
    a = answerer(fake.url, llm_structured=True, evidence_ratio=0)
    fake.script = [("status", (400, {}, '{"error": {"message": "response_format is not supported"}}')),
                   ("stream", ["Grokking is delayed generalization [1]."]),
                   ("stream", ["Pointer networks point at input positions [2]."])]
    assert "".join(a.stream("What is grokking?", SOURCES)) == "Grokking is delayed generalization [1]."
    assert "response_format" in fake.requests[0][1] and "response_format" not in fake.requests[1][1]
    assert "Reply in JSON" not in fake.requests[1][1]["messages"][0]["content"]
    assert a.shown("What is grokking?", SOURCES) == SOURCES
    # the next question (even from a new answerer for the same server) goes straight to free text
    b = answerer(fake.url, llm_structured=True, evidence_ratio=0)
    assert "".join(b.stream("What do pointer networks do?", SOURCES)).startswith("Pointer networks")
    assert len(fake.requests) == 3 and "response_format" not in fake.requests[2][1]


def test_other_errors_are_not_taken_for_a_rejection(fake: FakeOpenAI) -> None:
    a = answerer(fake.url, llm_structured=True, llm_retries=0)
    fake.script = [("status", (500, {}, "{}"))]
    with pytest.raises(Exception, match="HTTP 500"):
        "".join(a.stream("What is grokking?", SOURCES))
    assert not structured.is_rejected(fake.url)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.close()
