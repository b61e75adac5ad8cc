"""OpenAI-protocol answerer against a fake HTTP server on 127.0.0.1: success, and every failure mode.

Failure modes: connection refused, a server that hangs (timeout), 429 with Retry-After, 500, malformed
JSON, a stream cut midway (abrupt close and clean end without finish_reason). After bounded retries each
becomes an AnswererError; the engine then shows the extractive answer with a notice, and the API key never
appears in a log line, an error or a notice.
"""

from __future__ import annotations

import copy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rag.answerers.base import AnswererError
from rag.answerers.factory import make_answerer
from rag.answerers.openai_compat import OpenAIAnswerer, retry_after_seconds, safe_url
from rag.citations import finalize
from rag.settings import Settings
from rag.types import Answer, Evidence, Source

KEY = "sk-test-Zq8vX2kLmN4pR7sT9uW1yA3bC5dE"

SOURCES = [
    Source(1, "p:1", "Deep Networks Always Grok and Here is Why", 1.0,
           "Grokking is delayed generalization. It happens long after the training error is near zero.", year=2024),
    Source(2, "p:2", "Pointer Networks", 0.5, "Pointer networks use attention to point at input positions.", year=2015),
]


class FakeOpenAI(ThreadingHTTPServer):
    """A scripted /v1/chat/completions server. Each request pops the next action from `script`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[str, Any]] = []
        self.models: list[str] = []  # served by GET /v1/models (404 when empty)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.release = threading.Event()
        # a short poll: shutdown() waits up to one poll interval (0.5 s by default, paid by every test using one)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hanging up on a hanging or cut response is expected here

    def close(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


def _chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "fake",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(obj)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeOpenAI

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None,
              ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models") and self.server.models:
            data = [{"id": m, "object": "model", "created": 1, "owned_by": "x"} for m in self.server.models]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(({k.title(): v for k, v in self.headers.items()}, body))
        action, arg = self.server.script.pop(0) if self.server.script else ("stream", ["Hello [1]."])
        if action == "status":  # arg: (status, headers, body)
            status, headers, text = arg
            self._send(status, text.encode(), headers)
        elif action == "echo_auth":  # an error body that repeats the Authorization header back (retry at once:
            # the client's default backoff would add ~3 s of sleeping to the key-leak test)
            self._send(arg, json.dumps({"error": {"message": f"bad key {self.headers.get('Authorization')}",
                                                  "type": "invalid_request_error"}}).encode(), {"retry-after-ms": "1"})
        elif action == "hang":
            self.server.release.wait(arg)
        elif action == "malformed":
            if body.get("stream"):
                self._send(200, b"data: {not json\n\n", ctype="text/event-stream")
            else:
                self._send(200, b"{not json")
        elif action == "complete":  # non-streamed answer
            obj = {"id": "c1", "object": "chat.completion", "created": 1, "model": "fake",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": arg}, "finish_reason": "stop"}]}
            self._send(200, json.dumps(obj).encode())
        elif action in ("stream", "cut", "eof"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            if action == "eof":
                self.send_header("Connection", "close")
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            write = self.wfile.write if action == "eof" else self._chunked
            for piece in arg:
                write(_chunk(piece))
                time.sleep(0.01)
            if action == "cut":  # abrupt close: no final chunk, no finish_reason, no [DONE]
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if action == "eof":  # clean close but the answer never finished
                self.close_connection = True
                return
            self._chunked(_chunk(None, "stop"))
            self._chunked(b"data: [DONE]\n\n")
            self._chunked(b"")
        else:
            raise AssertionError(action)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    yield srv
    srv.close()


def answerer(url: str, sleeps: list[float] | None = None, **kw: Any) -> OpenAIAnswerer:
    base: dict[str, Any] = {"llm": "openai", "llm_base_url": url, "llm_model": "fake-model", "llm_timeout": 2.0,
                            "llm_retries": 2}
    a = OpenAIAnswerer(Settings(**{**base, **kw}), sleep=(sleeps.append if sleeps is not None else time.sleep))
    a.backoff_base = 0.01
    return a


def refused_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    return f"http://127.0.0.1:{port}/v1"


# --- success ---------------------------------------------------------------------------
def test_streams_deltas_and_sends_settings(fake: FakeOpenAI) -> None:
    fake.script = [("stream", ["Grokking is ", "delayed generalization ", "[1]."])]
    a = answerer(fake.url, llm_temperature=0.3, llm_max_tokens=77, llm_api_key=KEY, evidence_ratio=0)
    deltas = list(a.stream("What is grokking?", SOURCES))
    assert deltas == ["Grokking is ", "delayed generalization ", "[1]."]
    headers, body = fake.requests[0]
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["temperature"] == 0.3 and body["max_tokens"] == 77
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert body["messages"][0]["role"] == "system"
    assert "What is grokking?" in body["messages"][-1]["content"]
    assert "Pointer Networks" in body["messages"][-1]["content"]


def test_openai_api_key_is_not_sent_to_other_servers(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-env")
    list(answerer(fake.url).stream("q?", SOURCES))
    assert fake.requests[-1][0]["Authorization"] != "Bearer sk-from-openai-env"  # only api.openai.com gets it
    monkeypatch.setenv("PAPERCHAT_LLM_API_KEY", "sk-from-paperchat-env")
    list(OpenAIAnswerer(Settings(llm="openai", llm_base_url=fake.url)).stream("q?", SOURCES))
    assert fake.requests[-1][0]["Authorization"] == "Bearer sk-from-paperchat-env"  # configured with this URL


def test_default_model_name_becomes_the_servers_model(fake: FakeOpenAI) -> None:
    fake.models = ["qwen2.5:0.5b", "llama3"]
    a = make_answerer(Settings(llm_base_url=fake.url), embed=None)  # the URL alone picks the openai backend
    assert a.name == "openai"
    list(a.stream("q?", SOURCES))
    list(a.stream("q?", SOURCES))
    assert [r[1]["model"] for r in fake.requests] == ["qwen2.5:0.5b", "qwen2.5:0.5b"]
    fake.requests.clear()
    list(answerer(fake.url, llm_model="llama3").stream("q?", SOURCES))  # an explicit name is kept
    assert fake.requests[0][1]["model"] == "llama3"
    fake.models = []
    fake.requests.clear()
    list(OpenAIAnswerer(Settings(llm="openai", llm_base_url=fake.url)).stream("q?", SOURCES))  # no list: keep the name
    assert fake.requests[0][1]["model"] == "gpt-4o-mini"


def test_implied_backend_from_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().llm == "extractive"
    monkeypatch.setenv("PAPERCHAT_LLM_GGUF", "/models/qwen.gguf")
    assert Settings().llm == "gguf"
    monkeypatch.delenv("PAPERCHAT_LLM_GGUF")
    monkeypatch.setenv("PAPERCHAT_LLM_BASE_URL", "http://127.0.0.1:11434/v1")
    assert Settings().llm == "openai"
    assert Settings(llm="extractive").llm == "extractive"  # an explicit choice wins


def test_no_key_and_no_url_is_a_clear_error_without_network() -> None:
    a = make_answerer(Settings(llm="openai"), embed=None)
    with pytest.raises(AnswererError, match="PAPERCHAT_LLM_API_KEY"):
        list(a.stream("q?", SOURCES))


@pytest.mark.parametrize("raw, kept, dropped", [
    ("A [1]. B [2].", [1, 2], 0),
    ("A [1, 2].", [1, 2], 0),
    ("A [1-2].", [1, 2], 0),
    ("A [2][1].", [2, 1], 0),
    ("A [1]. Invented [7].", [1], 1),
    ("A [3-4] [2].", [2], 2),
])
def test_streamed_answer_citations_are_parsed(fake: FakeOpenAI, raw: str, kept: list[int], dropped: int) -> None:
    fake.script = [("stream", [raw[: len(raw) // 2], raw[len(raw) // 2:]])]
    text = "".join(answerer(fake.url).stream("q?", SOURCES))
    cited = finalize(text, SOURCES)
    assert [c.paper_id for c in cited.citations] == [f"p:{n}" for n in kept]
    assert cited.dropped == dropped
    assert "[7]" not in cited.text and "[3" not in cited.text


# --- failures --------------------------------------------------------------------------
def test_connection_refused_retries_then_fails() -> None:
    a = answerer(refused_url(), llm_retries=2)
    t0 = time.perf_counter()
    with pytest.raises(AnswererError, match="could not connect.*after 3 attempts"):
        list(a.stream("q?", SOURCES))
    assert time.perf_counter() - t0 >= 0.5  # the openai client's backoff (~0.5 s, then ~1 s) between the 3 attempts


def test_hanging_server_times_out_quickly_without_retry(fake: FakeOpenAI) -> None:
    fake.script = [("hang", 30), ("hang", 30)]
    a = answerer(fake.url, llm_timeout=0.5)
    t0 = time.perf_counter()
    with pytest.raises(AnswererError, match="within 0.5 s"):
        list(a.stream("q?", SOURCES))
    assert time.perf_counter() - t0 < 3  # one timeout, not timeout x attempts
    assert len(fake.requests) == 1


def test_429_honours_retry_after_then_succeeds(fake: FakeOpenAI) -> None:
    fake.script = [("status", (429, {"Retry-After": "1"}, '{"error": {"message": "slow down"}}')),
                   ("stream", ["ok [1]."])]
    t0 = time.perf_counter()
    assert "".join(answerer(fake.url).stream("q?", SOURCES)) == "ok [1]."
    # waited what the server asked (the client's own first backoff is at most 0.5 s)
    assert time.perf_counter() - t0 >= 0.95 and len(fake.requests) == 2


def test_retry_after_over_the_cap_falls_back_at_once(fake: FakeOpenAI) -> None:
    fake.script = [("status", (429, {"Retry-After": "3600"}, "{}"))] * 2 + [("stream", ["ok [1]."])]
    a = answerer(fake.url)
    t0 = time.perf_counter()
    with pytest.raises(AnswererError, match=r"HTTP 429 .*asked to wait 3600 s; not waiting over 10 s"):
        list(a.stream("q?", SOURCES))
    assert time.perf_counter() - t0 < 3 and len(fake.requests) == 1


def test_persistent_500_gives_up_after_bounded_retries(fake: FakeOpenAI) -> None:
    fake.script = [("status", (500, {"retry-after-ms": "1"}, '{"error": {"message": "boom"}}'))] * 5  # no 1.5 s backoff
    with pytest.raises(AnswererError, match="HTTP 500.*after 3 attempts"):
        list(answerer(fake.url, llm_retries=2).stream("q?", SOURCES))
    assert len(fake.requests) == 3  # the client's own retries


def test_500_then_success(fake: FakeOpenAI) -> None:
    fake.script = [("status", (503, {}, "{}")), ("stream", ["fine [2]."])]
    assert "".join(answerer(fake.url, []).stream("q?", SOURCES)) == "fine [2]."


def test_401_is_not_retried(fake: FakeOpenAI) -> None:
    fake.script = [("status", (401, {}, '{"error": {"message": "no"}}'))] * 3
    with pytest.raises(AnswererError, match="HTTP 401.*check the API key"):
        list(answerer(fake.url, []).stream("q?", SOURCES))
    assert len(fake.requests) == 1


def test_malformed_json_fails_cleanly(fake: FakeOpenAI) -> None:
    fake.script = [("malformed", None)] * 3
    with pytest.raises(AnswererError, match="malformed response"):
        list(answerer(fake.url, []).stream("q?", SOURCES))
    fake.script = [("malformed", None)] * 3
    with pytest.raises(AnswererError, match="malformed response"):
        answerer(fake.url, []).rewrite("and its limits?", [("What is grokking?", "Delayed generalization [1].")])


@pytest.mark.parametrize("how", ["cut", "eof"])
def test_stream_cut_midway_is_an_error_not_a_short_answer(fake: FakeOpenAI, how: str) -> None:
    fake.script = [(how, ["Grokking is ", "delayed"])]
    got: list[str] = []
    with pytest.raises(AnswererError, match="closed mid-answer; the answer was cut off"):
        for d in answerer(fake.url, []).stream("q?", SOURCES):
            got.append(d)
    assert got == ["Grokking is ", "delayed"]
    assert len(fake.requests) == 1  # text was already streamed: no silent retry that would duplicate it


def test_cut_before_any_text_is_retried(fake: FakeOpenAI) -> None:
    fake.script = [("cut", []), ("stream", ["whole [1]."])]
    assert "".join(answerer(fake.url, []).stream("q?", SOURCES)) == "whole [1]."


# --- the API key never leaks ---------------------------------------------------------------
def test_api_key_never_in_errors_logs_or_notices(fake: FakeOpenAI, sample_engine: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script = [("echo_auth", 401), ("echo_auth", 500), ("echo_auth", 500), ("echo_auth", 500)]
    a = answerer(fake.url, [], llm_api_key=KEY)
    with pytest.raises(AnswererError) as e1:
        list(a.stream("q?", SOURCES))
    with pytest.raises(AnswererError) as e2:
        list(a.stream("q?", SOURCES))
    fake.script = [("echo_auth", 500)] * 3
    pc = _engine_with(sample_engine, a)
    ans = pc.ask("Which paper explains why grokking happens in deep networks?")
    assert ans.notice and "HTTP 500" in ans.notice
    seen = [str(e1.value), repr(e1.value), str(e2.value), ans.notice, json.dumps(ans.to_dict()), caplog.text,
            json.dumps(a.settings.redacted()), repr(a.settings)]
    for text in seen:
        assert KEY not in text and KEY[8:20] not in text
    assert "Bearer" not in caplog.text


def test_safe_url_and_retry_after_parsing() -> None:
    assert safe_url("http://user:pw@127.0.0.1:8000/v1?key=x") == "http://127.0.0.1:8000/v1"
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# --- the engine's fallback ---------------------------------------------------------------------
def _engine_with(sample_engine: Any, ans: Any) -> Any:
    """The session's sample engine (shared store and index) with a different answerer."""
    pc = copy.copy(sample_engine)
    pc._answerer = ans
    return pc


GROK = "Which paper explains why grokking happens in deep networks?"


def test_mid_stream_cut_falls_back_to_extractive_without_partial_text(fake: FakeOpenAI, sample_engine: Any) -> None:
    partial = "PARTIAL-LLM-TEXT about grokking "
    fake.script = [("cut", [partial, "and more"])]
    pc = _engine_with(sample_engine, answerer(fake.url, []))
    events = list(pc.ask_stream(GROK))
    final = events[-1]
    assert isinstance(final, Answer)
    assert isinstance(events[0], Evidence) and events[0].quotes  # the evidence came first, at once ...
    assert events[1] == partial  # ... then the answer was streamed live ...
    assert "PARTIAL" not in final.answer  # ... but the final answer is the clean extractive one
    assert final.notice and "openai backend failed" in final.notice and "cut off" in final.notice
    assert final.backend == "extractive" and not final.abstained
    assert final.citations and final.citations[0].title == "Deep Networks Always Grok and Here is Why"
    assert final.answer == sample_engine.ask(GROK).answer


def test_refused_server_falls_back_with_notice(sample_engine: Any) -> None:
    pc = _engine_with(sample_engine, answerer(refused_url(), [], llm_retries=1))
    ans = pc.ask(GROK)
    assert ans.notice and "could not connect" in ans.notice and ans.citations


def test_llm_answer_is_post_processed_and_no_answer_abstains(fake: FakeOpenAI, sample_engine: Any) -> None:
    pc = _engine_with(sample_engine, answerer(fake.url, []))
    fake.script = [("stream", ["Grokking is delayed generalization [3][99]. ", "It is explained [1-2]."])]
    ans = pc.ask(GROK)
    # [3] was not shown to the model (far below the best source): the claim check cites the grokking paper
    assert ans.notice is None and ans.claims[0].citations == [1]
    assert ans.backend == "openai" and not ans.abstained and ans.citations[0].title.startswith("Deep Networks Always Grok")
    assert "[99]" not in ans.answer
    assert [c.n for c in ans.citations] == list(range(1, len(ans.citations) + 1))
    d = ans.to_dict()
    for c in d["citations"]:
        assert d["sources"][c["n"] - 1]["paper_id"] == c["paper_id"]
    # a decline abstains when the papers only come near the question (gate evidence 0.71 < CONFIDENT_EVIDENCE) ...
    fake.script = [("stream", ["The indexed papers do not answer this question."])]
    ans = pc.ask("What is known about grokking and why does it happen?")
    assert ans.abstained and ans.citations == [] and "[" not in ans.answer and ans.backend == "openai"
    # ... and gives way to the extractive answer when a paper matches it closely (0.98)
    fake.script = [("stream", ["The indexed papers do not answer this question."])]
    ans = pc.ask(GROK)
    assert not ans.abstained and ans.backend == "extractive" and "a source matches the question closely" in (ans.notice or "")
    assert ans.citations[0].title.startswith("Deep Networks Always Grok")


def test_sources_trimmed_from_the_context_cannot_be_cited(fake: FakeOpenAI, sample_engine: Any) -> None:
    a = answerer(fake.url, [], llm_context=1024, llm_max_tokens=64)
    pc = _engine_with(sample_engine, a)
    retrieved = pc.retrieve(GROK)
    shown = a.shown(GROK, retrieved)
    assert 1 <= len(shown) < len(retrieved)  # the small window leaves the lowest-ranked sources out
    hidden = retrieved[-1]
    fake.script = [("stream", [f"Grokking is delayed generalization [1]. Also [{hidden.n}]."])]
    ans = pc.ask(GROK)
    sent = fake.requests[-1][1]["messages"][-1]["content"]
    assert f"[{hidden.n}] " not in sent and "[1] " in sent  # what the model saw ...
    assert [c.paper_id for c in ans.citations] == [retrieved[0].paper_id]  # ... is all it may cite
    assert hidden.paper_id not in {c.paper_id for c in ans.citations}
    assert ans.answer.count("[") == 1


def test_gguf_backend_with_missing_model_falls_back(sample_engine: Any, tmp_path: Any) -> None:
    a = make_answerer(Settings(llm="gguf", llm_gguf=tmp_path / "missing.gguf"), embed=None)
    assert a.name == "gguf"
    ans = _engine_with(sample_engine, a).ask(GROK)
    assert ans.notice and "GGUF model file not found" in ans.notice and ans.citations
    a = make_answerer(Settings(llm="gguf"), embed=None)
    ans = _engine_with(sample_engine, a).ask(GROK)
    assert ans.notice and "PAPERCHAT_LLM_GGUF" in ans.notice


def test_llm_rewrite_of_follow_up(fake: FakeOpenAI) -> None:
    fake.script = [("complete", "Standalone question: What are the limitations of grokking in deep networks?\n")]
    a = answerer(fake.url, [])
    out = a.rewrite("what are its limitations?", [("Why do deep networks grok?", "Local complexity [1].")])
    assert out == "What are the limitations of grokking in deep networks?"
    sent = fake.requests[-1][1]["messages"][-1]["content"]
    assert "Why do deep networks grok?" in sent and "[1]" not in sent


def test_cli_stream_shows_live_text_then_final_numbering(fake: FakeOpenAI, sample_engine: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import print_stream

    pc = _engine_with(sample_engine, answerer(fake.url, []))
    fake.script = [("stream", ["Grokking is delayed ", "generalization [3][99]."])]
    final = print_stream(pc.ask_stream(GROK))
    out = capsys.readouterr().out
    assert out.startswith("Evidence (the answer follows):\n[1] ")  # the sources' best sentences at once
    live = out.split("\n\n", 1)[1]
    assert live.startswith("Grokking is delayed generalization [3][99].")  # live, as the model wrote it
    assert final.answer == "Grokking is delayed generalization [1]."
    assert f"(with final citation numbers)\n{final.answer}" in out
    assert out.rstrip().endswith(f"[1] {final.citations[0].title} <{final.citations[0].url}>"
                                 if final.citations[0].url else f"[1] {final.citations[0].title} ({final.citations[0].paper_id})")


def test_copied_worked_example_is_removed_or_falls_back(fake: FakeOpenAI, sample_engine: Any) -> None:
    pc = _engine_with(sample_engine, answerer(fake.url, []))
    fake.script = [("stream", ["Method A improved accuracy on task T by 5 points [1]. ",
                               "Grokking is delayed generalization [1]."])]
    ans = pc.ask(GROK)
    assert ans.backend == "openai" and ans.answer == "Grokking is delayed generalization [1]."
    assert ans.notice and "worked example" in ans.notice and ans.citations
    fake.script = [("stream", ["Yes. Method A improved accuracy on task T by 5 points [1]. ",
                               "It was slower on long inputs [2]. Method A is good [1]."])]
    ans = pc.ask(GROK)  # nothing but the example (and a bare "Yes."): the extractive answer instead
    assert ans.backend == "extractive" and "Method A" not in ans.answer
    assert ans.notice and "repeated the prompt's worked example" in ans.notice
