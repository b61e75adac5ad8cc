"""MiniLM as a plain transformers model: wordpiece batches, mean pooling, normalisation, bf16 where native.

Not sentence-transformers' encode(): its import adds ~80 MB (pandas, scikit-learn) to the ingest process,
and it pads each batch to its longest text, so every new input shape grows oneDNN's never-freed kernel
cache (+500 MB over 3k chunks here). The vectors are the same (cosine > 0.9999, tests/test_embeddings.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 256
BULK = 4  # texts per call from which bf16 pays off
PAD_MULTIPLE = 32  # a handful of input shapes instead of one per batch width: flat RSS, same speed


def load_tokenizer(model_path: str) -> Any:
    """The model's fast tokenizer, truncating at its 256-wordpiece window, unpadded."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_path, "tokenizer.json")))
    tok.enable_truncation(MAX_TOKENS)
    tok.no_padding()
    return tok


def pad_batch(tok: Any, texts: list[str], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, right-padded to the longest text rounded up to `multiple`."""
    return pad_encodings(tok.encode_batch(texts), multiple)


def pad_encodings(encs: list[Any], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """`pad_batch` for already tokenised texts."""
    width = max(len(e.ids) for e in encs)
    width = -(-width // multiple) * multiple
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encs):
        ids[i, : len(e.ids)] = e.ids
        mask[i, : len(e.ids)] = 1
    return ids, mask


Span = tuple[int, int]  # character range [start, end) of a text
Unit = tuple[Span, ...]  # the character ranges one pooled vector covers (e.g. a sentence, or title + sentence)


def span_pool(hidden: np.ndarray, offsets: Sequence[Span], units: Sequence[Unit]) -> np.ndarray:
    """Late chunking: per unit, the L2-normalised mean of the contextual token vectors inside its ranges.

    Args:
        hidden: (tokens, dim) last hidden states of one text (the forward pass the whole text got).
        offsets: the tokenizer's (start, end) character offsets per token; special tokens are (0, 0).
        units: per output row, the character ranges whose tokens it pools (a token counts when it lies
            wholly inside one range).
    Returns:
        (len(units), dim) float32; a unit with no token (cut off by truncation) gets a zero row.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)[: len(hidden)]
    real = off[:, 1] > off[:, 0]
    out = np.zeros((len(units), hidden.shape[1]), dtype=np.float32)
    for j, unit in enumerate(units):
        inside = np.zeros(len(off), dtype=bool)
        for a, b in unit:
            inside |= (off[:, 0] >= a) & (off[:, 1] <= b)
        inside &= real
        if inside.any():
            v = hidden[: len(off)][inside].astype(np.float32).mean(axis=0)
            out[j] = v / max(float(np.linalg.norm(v)), 1e-12)
    return out


def length_batches(texts: list[str], batch_size: int) -> Iterator[list[int]]:
    """Indices of `texts` in batches of similar length (the least padding), shortest first."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for j in range(0, len(order), batch_size):
        yield order[j:j + batch_size]


def encode_units(tok: Any, hidden_of: Callable[[np.ndarray, np.ndarray], np.ndarray], texts: list[str],
                 units: list[list[Unit]], batch_size: int, dim: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """One forward pass per text giving its mean-pooled vector and its units' late-pooled vectors.

    `hidden_of(ids, mask)` runs the model on a padded batch and returns its (batch, tokens, dim) states.
    Returns the (len(texts), dim) text vectors and, per text, a (len(units[i]), dim) matrix.
    """
    vecs = np.zeros((len(texts), dim), dtype=np.float32)
    pooled: list[np.ndarray] = [np.zeros((0, dim), dtype=np.float32)] * len(texts)
    for idx in length_batches(texts, batch_size):
        encs = tok.encode_batch([texts[i] for i in idx])
        ids, mask = pad_encodings(encs, PAD_MULTIPLE)
        hidden = hidden_of(ids, mask)
        vecs[idx] = mean_pool(hidden, mask)
        for row, (i, enc) in enumerate(zip(idx, encs)):
            pooled[i] = span_pool(hidden[row, : len(enc.ids)], enc.offsets, units[i])
    return vecs, pooled


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over tokens, L2-normalised (sentence-transformers' pooling for this model)."""
    pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
    return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def encode_sorted(texts: list[str], batch_size: int, encode_batch: Callable[[list[str]], np.ndarray],
                  dim: int) -> np.ndarray:
    """Vectors for texts in input order, encoded in batches of similar length (the least padding)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for idx in length_batches(texts, batch_size):
        out[idx] = encode_batch([texts[i] for i in idx])
    return out


@lru_cache(maxsize=1)
def bf16_supported() -> bool:
    """Whether this CPU runs bfloat16 matmuls natively (AVX512-BF16 or AMX), where bf16 beats fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_flags() -> set[str] | None:
    """The x86 feature flags of the first CPU in /proc/cpuinfo (None where there is no such line)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def native_bf16() -> bool:
    """Native bf16 for torch: AVX512-BF16 or AMX in the CPU flags, and oneDNN allowed to use them.

    Reads /proc/cpuinfo first so that on CPUs without these flags torch is never imported for the
    answer; then asks torch (which honours ONEDNN_MAX_CPU_ISA, e.g. =AVX2 to emulate an AVX2-only CPU).
    """
    flags = cpu_flags()
    if flags is not None and not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    return bf16_supported()


def bf16_autocast(precision: str) -> Any:
    """torch autocast to bfloat16 for "bf16" (or "auto" on a CPU with native bf16), else a no-op.

    Measured here (AMX): 2.4x the fp32 throughput, vectors at cosine >= 0.99997 to fp32, so the
    fp32 ONNX query path and old fp32 vectors stay interchangeable with bf16 ones.
    """
    import torch

    if precision == "bf16" or (precision == "auto" and native_bf16()):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TorchEncoder:
    """Bulk encoder for ingest: length-sorted batches through the transformers model."""

    def __init__(self, model_path: str, precision: str = "auto", batch_size: int = 16) -> None:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar would land in every ingest and serve log
        self.torch = torch
        self.model = AutoModel.from_pretrained(model_path).eval()
        self.tok = load_tokenizer(model_path)
        self.precision = precision
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        # bf16 from 4 texts on: each autocast entry re-casts the weights, which costs more than it saves
        # on 1-3 short texts (one query: 11.7 ms fp32 vs 14.9 ms bf16; 8 texts: 41.7 vs 26.9 ms)
        precision = self.precision if len(texts) >= BULK else "fp32"
        return encode_sorted(texts, self.batch_size, lambda batch: self._batch(batch, precision),
                             self.model.config.hidden_size)

    def encode_units(self, texts: list[str], units: list[list[Unit]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors and late-pooled unit vectors from the same forward pass (`encode_units` above)."""
        precision = self.precision if len(texts) >= BULK else "fp32"
        return encode_units(self.tok, lambda ids, mask: self._hidden(ids, mask, precision), texts, units,
                            self.batch_size, self.model.config.hidden_size)

    def _batch(self, texts: list[str], precision: str) -> np.ndarray:
        ids, mask = pad_batch(self.tok, texts, PAD_MULTIPLE)
        return mean_pool(self._hidden(ids, mask, precision), mask)

    def _hidden(self, ids: np.ndarray, mask: np.ndarray, precision: str) -> np.ndarray:
        torch = self.torch
        # autocast per batch: its bf16 weight copies are freed on exit (-48 MB peak, ~4% slower)
        with torch.inference_mode(), bf16_autocast(precision):
            hidden = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                token_type_ids=torch.zeros_like(torch.from_numpy(ids))).last_hidden_state
        return np.asarray(hidden.float().numpy())
