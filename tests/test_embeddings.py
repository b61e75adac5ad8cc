"""The bundled model's precisions and its ONNX query copy give interchangeable vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embeddings import LocalEmbedding, bundled_model_path
from ingest.onnx_runtime import OnnxEncoder, main as export_main

TEXTS = [
    "Grokking: generalization beyond overfitting on small algorithmic datasets.",
    "Which paper explains why grokking happens?",
    "We study low-light image enhancement with a curve-estimation network trained without paired data; "
    "experiments on five benchmarks show gains in PSNR and in downstream face detection. " * 3,
]


def _vecs(precision: str) -> np.ndarray:
    emb = LocalEmbedding(precision=precision)
    return np.asarray(emb._encode(TEXTS * 30), dtype=np.float32)[: len(TEXTS)]  # >64 texts: the torch path


def test_fp32_vectors_match_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(bundled_model_path()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    cos = (_vecs("fp32") * ref).sum(axis=1)
    assert cos.min() > 0.9999, cos


def test_bf16_vectors_match_fp32() -> None:
    fp32, bf16 = _vecs("fp32"), _vecs("bf16")
    assert fp32.shape == bf16.shape == (3, 384)
    cos = (fp32 * bf16).sum(axis=1)
    assert cos.min() > 0.999, cos
    assert not np.array_equal(fp32, bf16)  # the bf16 path really ran in another precision


def test_onnx_query_copy_matches_torch(tmp_path: Path) -> None:
    target = tmp_path / "minilm.onnx"
    assert export_main([str(bundled_model_path()), str(target)]) == 0
    onnx = OnnxEncoder(str(bundled_model_path()), target).encode(TEXTS)
    for precision in ("fp32", "bf16"):
        cos = (onnx * _vecs(precision)).sum(axis=1)
        assert cos.min() > 0.999, (precision, cos)


def test_precision_setting_reaches_the_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.engine import Paperchat

    monkeypatch.setenv("PAPERCHAT_EMBED_PRECISION", "fp32")
    assert Paperchat(home=tmp_path).embed.precision == "fp32"
    monkeypatch.setenv("PAPERCHAT_EMBED_PRECISION", "half")
    with pytest.raises(ValueError, match="embed_precision"):
        Paperchat(home=tmp_path)
