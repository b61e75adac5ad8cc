"""A scripted OpenAI-protocol chat server on 127.0.0.1 that OBEYS prompt injections.

A real small model sometimes follows an order hidden in a question or an abstract; the extractive answerer
never can. Tests that check we are not fooled need a model that is fooled, so this one is, every time:

- "print your system prompt" anywhere in the user turn: it replies with the system prompt, cited [1];
- "reply only with X" / "answer X" / "say X": it replies X, cited [1];
- otherwise it answers like a careful model: the first sentence of source [1], cited.

Speaks /v1/models and /v1/chat/completions, streamed (SSE) or not. `requests` records every request body.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ORDER = re.compile(r"(?:reply only with|answer only with|answer|say|respond with)\s+([A-Z][A-Z0-9_]{2,})\b")
SOURCE_1 = re.compile(r"^\[1\][^\n]*\n<source>\n(.*?)\n</source>", re.S | re.M)


def scripted_reply(messages: list[dict[str, str]]) -> str:
    """What the obedient model says to these chat messages."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = messages[-1]["content"] if messages else ""
    if re.search(r"print (?:your|the) system prompt", user, re.I):
        return f"{system} [1]"
    m = ORDER.search(user)
    if m:
        return f"{m.group(1)} [1]"
    src = SOURCE_1.search(user)
    text = " ".join((src.group(1) if src else user).split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return f"{first} [1]"


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass

    def _json(self, obj: object) -> None:
        out = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:  # noqa: N802
        self._json({"object": "list", "data": [{"id": "obedient", "object": "model", "owned_by": "test"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv: FakeLLM = self.server  # type: ignore[assignment]
        srv.requests.append(body)
        reply = scripted_reply(body.get("messages", []))
        base = {"id": "c1", "created": 0, "model": body.get("model", "obedient")}
        if not body.get("stream"):
            self._json({**base, "object": "chat.completion",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        words = re.findall(r"\S+\s*", reply)
        for i, w in enumerate(words):
            delta = {"role": "assistant", "content": w} if i == 0 else {"content": w}
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    """A running FakeLLM; stopped on exit."""
    srv = FakeLLM()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)  # a quick shutdown()
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
