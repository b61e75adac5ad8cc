"""Request checks in front of the Gradio app: the Host header (DNS rebinding) and failed-login rate limits.

A plain ASGI middleware, passed to Gradio through `launch(app_kwargs={"middleware": [...]})`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
LOGIN_PATHS = frozenset({"/login", "/login/"})
MAX_LOGIN_FAILURES = 5  # per client per window
LOGIN_WINDOW_S = 60.0
MAX_CLIENTS = 10_000  # clients tracked before stale entries are pruned


def allowed_hosts(bind: str) -> frozenset[str] | None:
    """Host names a request may carry for a server bound to `bind`; None = any (0.0.0.0 and ::).

    A loopback bind accepts only localhost names, so a DNS-rebinding page (Host: rebind.attacker.example)
    is refused; a bind to one address or name accepts that and the localhost names."""
    bind = bind.strip().strip("[]").lower()
    if bind in ("0.0.0.0", "::", ""):
        return None
    return LOOPBACK_NAMES | {bind}


def host_of(header: str) -> str:
    """The host part of a Host header value, lower case, without port or trailing dot."""
    h = header.strip().lower()
    if h.startswith("["):  # [::1]:7860
        h = h[1:].split("]", 1)[0]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


class LoginLimiter:
    """Failed logins per client in a sliding window; thread-safe."""

    def __init__(self, max_failures: int = MAX_LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        q = self._failures[client]
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def retry_after(self, client: str) -> float:
        """Seconds until this client may try again (0 = now)."""
        with self._lock:
            q = self._recent(client)
            if len(q) < self.max_failures:
                if not q:
                    self._failures.pop(client, None)
                return 0.0
            return max(0.0, q[0] + self.window_s - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self.clock())
            if len(self._failures) > MAX_CLIENTS:  # many addresses: forget the ones whose window has passed
                for c in [c for c, q in self._failures.items() if not self._recent(c)]:
                    del self._failures[c]


async def _respond(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: 400 for a Host header not in `hosts`, 429 after too many failed logins per client."""

    def __init__(self, app: Any, hosts: frozenset[str] | None = None, limiter: LoginLimiter | None = None) -> None:
        self.app = app
        self.hosts = hosts
        self.limiter = limiter or LoginLimiter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            if host_of(raw) not in self.hosts:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _respond(send, 400, "Invalid host header")
                return
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in LOGIN_PATHS:
            client = (scope.get("client") or ("?", 0))[0]
            wait = self.limiter.retry_after(client)
            if wait > 0:
                await _respond(send, 429, "Too many failed logins; try again later",
                               [(b"retry-after", str(int(wait) + 1).encode())])
                return

            async def watch(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start" and message.get("status") in (400, 401, 403):
                    self.limiter.failed(client)
                await send(message)

            await self.app(scope, receive, watch)
            return
        await self.app(scope, receive, send)
