"""OpenAI-protocol embedding backend against a small real HTTP server on 127.0.0.1.

The server is a deterministic hashing bag-of-words model: real HTTP, real batching, real retries,
fake semantics; the collection records the remote model, and opening it with another model fails.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ingest.store import EmbeddingMismatchError
from rag.engine import Paperchat
from tests.conftest import SAMPLE

DIM = 64


def bow(text: str) -> list[float]:
    v = np.zeros(DIM)
    for w in re.findall(r"[a-z]+", text.lower()):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % DIM] += 1.0
    return v.tolist()


class Server(ThreadingHTTPServer):
    fail_next = 0
    retry_after: str | None = None  # with fail_next: answer 429 with this Retry-After instead of 500
    calls = 0
    batch_sizes: list[int] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        srv: Server = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.calls += 1
        if srv.fail_next > 0:
            srv.fail_next -= 1
            self.send_response(500 if srv.retry_after is None else 429)
            if srv.retry_after is not None:
                self.send_header("Retry-After", srv.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        srv.batch_sizes.append(len(inputs))
        data = [{"object": "embedding", "index": i, "embedding": bow(t)} for i, t in enumerate(inputs)]
        out = json.dumps({"object": "list", "data": data, "model": body["model"],
                          "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.batch_sizes = []
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()  # a quick shutdown()
    yield srv
    srv.shutdown()


def test_ingest_and_ask_with_remote_embeddings(server: Server, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    pc = Paperchat(home=tmp_path / "h", embed_base_url=url, embed_model="bow-64")
    server.fail_next = 1  # the first request fails with 500 and is retried
    report = pc.ingest([SAMPLE])
    assert report.added == 65
    assert pc.stats()["embedding_model"] == "remote:bow-64" and pc.stats()["embedding_dim"] == DIM
    assert max(server.batch_sizes) <= 128
    ans = pc.ask("Which paper explains why grokking happens in deep networks?")
    assert ans.citations and ans.citations[0].title == "Deep Networks Always Grok and Here is Why"
    with pytest.raises(EmbeddingMismatchError, match="remote:bow-64"):
        Paperchat(home=tmp_path / "h").store  # noqa: B018 - opening the store is what fails


def test_429_retry_after_is_honoured_and_a_long_one_fails_at_once(server: Server) -> None:
    """The openai client's own retries: waits the server's Retry-After, but never longer than the cap."""
    from ingest.remote_embeddings import RemoteEmbedding

    emb = RemoteEmbedding(f"http://127.0.0.1:{server.server_address[1]}/v1", "bow-64")
    server.fail_next, server.retry_after, server.calls = 1, "1", 0
    t0 = time.monotonic()
    assert len(emb._call(["a text"])[0]) == DIM
    assert server.calls == 2 and time.monotonic() - t0 >= 0.95  # waited what the server asked
    server.fail_next, server.retry_after, server.calls = 1, "3600", 0
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="RateLimitError"):
        emb._call(["a text"])
    assert server.calls == 1 and time.monotonic() - t0 < 5  # no hour-long wait, no second request


def test_unreachable_embedding_server_is_a_clear_error(tmp_path: Path) -> None:
    pc = Paperchat(home=tmp_path / "h", embed_base_url="http://127.0.0.1:9/v1", embed_model="m")
    pc.embed.retries = 0
    with pytest.raises(RuntimeError, match="embedding server http://127.0.0.1:9/v1 failed"):
        pc.ingest([SAMPLE])
