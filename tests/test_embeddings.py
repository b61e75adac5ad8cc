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


def test_int8_ingest_vectors_match_fp32(tmp_path: Path) -> None:
    """int8 (the `auto` choice without native bf16): exported, quantised, sha256 recorded, close to fp32."""
    from ingest.onnx_runtime import onnx_path, trusted

    emb = LocalEmbedding(cache_path=tmp_path / "embeddings.sqlite", precision="int8")
    int8 = np.asarray(emb._encode(TEXTS * 30), dtype=np.float32)[: len(TEXTS)]  # >64 texts: the bulk path
    assert emb._torch is None and emb._int8 is not None  # no torch in this process for int8 ingest
    cos = (int8 * _vecs("fp32")).sum(axis=1)
    assert cos.min() > 0.98, cos
    small = np.asarray(emb._encode(TEXTS), dtype=np.float32)  # a small ingest batch, once int8 is loaded
    assert emb._onnx is None  # ... stays on int8, not the (slower on AVX2) fp32 query model
    assert (small * int8).sum(axis=1).min() > 0.99  # int8 activation scales are per batch: not bit-equal
    path = onnx_path(tmp_path, emb.model_path, "int8")
    assert trusted(path) and path.with_name(path.name + ".sha256").exists()
    with open(path, "r+b") as f:  # a corrupted export is detected, removed and made again
        f.seek(1000)
        f.write(b"\x00" * 16)
    assert not trusted(path) and not path.exists()


def test_auto_precision_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest import encoders
    from ingest.embeddings import resolve_precision

    monkeypatch.setattr(encoders, "cpu_flags", lambda: {"avx2", "fma"})
    assert resolve_precision("auto") == "int8"
    assert resolve_precision("fp32") == "fp32"
    monkeypatch.setattr(encoders, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    monkeypatch.setattr(encoders, "bf16_supported", lambda: True)
    assert resolve_precision("auto") == "bf16"


def test_precision_setting_reaches_the_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rag.engine import Paperchat

    monkeypatch.setenv("PAPERCHAT_EMBED_PRECISION", "fp32")
    assert Paperchat(home=tmp_path).embed.precision == "fp32"
    monkeypatch.setenv("PAPERCHAT_EMBED_PRECISION", "half")
    with pytest.raises(ValueError, match="embed_precision"):
        Paperchat(home=tmp_path)


def test_a_missing_query_onnx_is_exported_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query process without the exported ONNX starts its export once (later processes skip torch);
    the export itself is tested for real in test_onnx_query_copy_matches_torch."""
    emb = LocalEmbedding(cache_path=tmp_path / "embeddings.sqlite")
    started: list[bool] = []
    monkeypatch.setattr(emb, "ensure_query_model", lambda: started.append(True) or setattr(emb, "_export", object()))
    assert emb._query_encoder() is None and emb._query_encoder() is None
    assert started == [True]


def test_onnxruntime_telemetry_is_off(tmp_path: Path) -> None:
    """onnxruntime's 1DS telemetry (events queued under ~/.cache/Microsoft, uploaded to Microsoft) stays off in a
    process that uses it through ingest.onnx_runtime: a fresh process with an empty HOME writes nothing there.
    (Without the opt-out, onnxruntime 1.32 created that directory and queued a ProcessInfo event: checked by hand,
    not here, since it may try to upload.)"""
    import os
    import subprocess
    import sys

    import onnx
    from onnx import TensorProto, helper

    from tests.conftest import ROOT

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path / "home")
    code = ("import sys, numpy as np; import ingest.onnx_runtime; import onnxruntime as ort; "
            "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider']); "
            "print(s.run(None, {'x': np.ones(1, dtype=np.float32)})[0])")
    out = subprocess.run([sys.executable, "-c", code, str(model)], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert "[1.]" in out.stdout
    assert not (tmp_path / "home" / ".cache" / "Microsoft").exists()


def test_one_background_export_per_cache_across_processes(tmp_path: Path) -> None:
    """Processes that start together claim the query model's export once (a file beside it); the export
    releases the claim when it ends; a claim left by a dead export is taken over once stale."""
    import os
    import time

    from ingest.onnx_runtime import EXPORT_STALE_S, claim_export, release_export

    target = tmp_path / "cache" / "minilm.onnx"
    assert claim_export(target) and not claim_export(target)
    release_export(target)
    assert claim_export(target)
    claim = target.with_name(target.name + ".exporting")
    old = time.time() - EXPORT_STALE_S - 1
    os.utime(claim, (old, old))
    assert claim_export(target) and not claim_export(target)
    target.write_bytes(b"exported")  # main() with nothing left to export still releases the claim
    assert export_main([str(bundled_model_path()), str(target)]) == 0
    assert not claim.exists()


def test_shipped_sample_vectors_cover_the_sample_and_are_the_models(tmp_path: Path, cache_dir: Path) -> None:
    """tests/data/sample_vectors.npz (the session cache's seed, so the sample index needs no forward pass) holds a
    vector for every chunk an ingest of data/sample embeds, and they are the model's. If this fails after a change
    to data/sample or to chunking: python -m tests.sample_vectors"""
    from tests.sample_vectors import load, sample_chunk_texts

    texts, vectors = load()
    shipped = dict(zip(texts, vectors))
    embedded, got = sample_chunk_texts(tmp_path / "home", cache_dir)  # the session's cache, seeded from the file
    assert len(embedded) >= 65 and got.shape == (len(embedded), 384)
    missing = [t[:60] for t in embedded if t not in shipped]
    assert not missing, f"{len(missing)} of {len(embedded)} sample chunks have no shipped vector: {missing[:3]}"
    picks = texts[:: max(1, len(texts) // 3)][:3]
    fresh = np.asarray(LocalEmbedding()._encode(picks), dtype=np.float32)  # the model itself, no cache
    cos = (fresh * np.stack([shipped[t] for t in picks])).sum(axis=1)
    assert cos.min() > 0.99, cos
