"""MiniLM through onnxruntime: the query path (no torch import, so `paperchat ask` starts fast) and int8 ingest.

The ONNX file is exported once from the bundled model and cached; its vectors match sentence-transformers'
to cosine > 0.99999 (checked at export). On CPUs without native bf16, ingest runs a dynamically quantised
int8 copy of it (`quantize_int8`). Each file gets a `.sha256` beside it, checked when it is loaded.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ingest.encoders import load_tokenizer, mean_pool, pad_batch

# onnxruntime >= 1.29 on Linux queues 1DS telemetry events (process, OS, CPU, memory, python path) in
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and uploads them to mobile.events.data.microsoft.com. Its
# documented opt-out (onnxruntime/Privacy.md), read when onnxruntime first initializes in the process.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


INT8_MIN_COSINE = 0.99  # an int8 copy further than this from fp32 on the probe texts is refused


class OnnxIntegrityError(RuntimeError):
    """An exported ONNX file does not match the sha256 recorded when it was written."""


def onnx_path(cache_dir: Path, model_path: str, variant: str = "fp32") -> Path:
    """Where the exported model lives (named after the weights' identity, so a new model re-exports)."""
    st = Path(model_path, "model.safetensors").stat()
    suffix = "" if variant == "fp32" else f"-{variant}"
    return cache_dir / f"minilm-{st.st_size}-{int(st.st_mtime)}{suffix}.onnx"


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


EXPORT_STALE_S = 900.0  # a claim older than this belongs to an export that died: it may be taken over


def _claim_path(target: Path) -> Path:
    return target.with_name(target.name + ".exporting")


def claim_export(target: Path) -> bool:
    """Claim the background export of `target` (a file beside it, created exclusively): False while another
    process's claim stands, so processes starting together (UI, CLI asks, ingest) export it once."""
    claim = _claim_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            try:
                if time.time() - claim.stat().st_mtime < EXPORT_STALE_S:
                    return False
            except FileNotFoundError:
                continue  # released meanwhile: try again
            claim.unlink(missing_ok=True)  # stale
    return False


def release_export(target: Path) -> None:
    _claim_path(target).unlink(missing_ok=True)


def publish(tmp: Path, target: Path) -> None:
    """Record tmp's sha256 beside target, then move tmp into place (the digest file exists first)."""
    _digest_path(target).write_text(_sha256(tmp) + "\n")
    tmp.replace(target)


def verify(path: Path) -> None:
    """Check an exported file against its recorded sha256 (OnnxIntegrityError when it differs or is missing)."""
    digest = _digest_path(path)
    expected = digest.read_text().strip() if digest.exists() else ""
    got = _sha256(path)
    if got != expected:
        raise OnnxIntegrityError(f"{path}: sha256 {got} is not the recorded {expected or '(no .sha256 file)'}")


def trusted(path: Path) -> bool:
    """Whether an exported file exists and matches its recorded sha256; a mismatching one is removed
    (it is re-exported), a file from before digests were recorded too."""
    if not path.exists():
        return False
    try:
        verify(path)
        return True
    except OnnxIntegrityError as exc:
        import logging

        logging.getLogger(__name__).warning("%s; exporting it again", exc)
        path.unlink(missing_ok=True)
        return False


def quantize_int8(fp32_file: Path, target: Path, model_path: str) -> bool:
    """Dynamic int8 copy of the exported model (onnxruntime quantize_dynamic), checked against fp32.

    Weights per output channel, 7-bit (`reduce_range`: the u8s8 kernels of AVX2 CPUs without VNNI
    saturate 16-bit sums with full-range weights), MatMuls only (the word-embedding table stays fp32),
    and the FFN output projections stay fp32: their inputs are the widest-ranged activations, and keeping
    them moved the mean cosine to fp32 from 0.9936 to 0.9970 on the sample abstracts.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32_file), load_external_data=False).graph
    ffn_out = [n.name for n in graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name
               and "/attention/" not in n.name]
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    quantize_dynamic(str(fp32_file), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=ffn_out)
    probe = PROBE * 2
    cos = (OnnxEncoder(model_path, tmp).encode(probe) * OnnxEncoder(model_path, fp32_file).encode(probe)).sum(axis=1)
    if float(cos.min()) < INT8_MIN_COSINE:
        tmp.unlink(missing_ok=True)
        return False
    publish(tmp, target)
    return True


PROBE = ["A short query.", "Grokking is delayed generalization long after the training error is near zero.",
         "We propose a curve-estimation network for low-light image enhancement trained without paired data; "
         "on five benchmarks it improves PSNR and downstream face detection."]


def export_onnx(model_path: str, target: Path, reference: Any) -> bool:
    """Export the transformer to ONNX and check it against `reference` (the fp32 TorchEncoder)."""
    import torch
    from transformers import AutoModel

    class _Wrapped(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.m(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    model = AutoModel.from_pretrained(model_path).eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    target.parent.mkdir(parents=True, exist_ok=True)
    axes = {k: {0: "b", 1: "s"} for k in ("input_ids", "attention_mask", "token_type_ids", "hidden")}
    torch.onnx.export(_Wrapped(model), (ids, ids, torch.zeros_like(ids)), str(tmp), dynamo=False,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                      dynamic_axes=axes, opset_version=17)
    ours = OnnxEncoder(model_path, tmp).encode(PROBE)
    ref = reference.encode(PROBE)
    if float((ours * ref).sum(axis=1).min()) < 0.9999:
        tmp.unlink(missing_ok=True)
        return False
    publish(tmp, target)
    return True


class OnnxEncoder:
    """Mean-pooled, normalised MiniLM embeddings with onnxruntime and the model's own tokenizer."""

    def __init__(self, model_path: str, onnx_file: Path, threads: int = 2, spin: bool = False) -> None:
        """`threads` 0 lets onnxruntime use every physical core (bulk ingest); queries use 2.

        `spin` False: idle worker threads sleep instead of busy-waiting for the next run (onnxruntime's
        default spins). Same vectors (bit for bit); a one-query embedding costs 6.6 instead of 13.8 ms of
        CPU and a 40-sentence batch 0.28 instead of 0.38 s (2 cores, measured for issue 15); spinning only
        pays off when runs come back to back, as in bulk ingest."""
        import onnxruntime as ort

        self.tok = load_tokenizer(model_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        ids, mask = pad_batch(self.tok, texts)
        return mean_pool(self.hidden(ids, mask), mask)

    def hidden(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Last hidden states of a padded batch."""
        with self._lock:
            out = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        return np.asarray(out)


def main(argv: list[str]) -> int:
    """`python -m ingest.onnx_runtime MODEL_DIR TARGET.onnx [INT8_TARGET.onnx]`: export (and quantise), verified.

    Run in a subprocess (in the background after a first ingest; before an int8 ingest), so the process
    that asks or ingests never imports torch for it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_path, target = argv[0], Path(argv[1])
    try:
        if not target.exists():
            from ingest.encoders import TorchEncoder

            if not export_onnx(model_path, target, TorchEncoder(model_path, precision="fp32")):
                return 1
        if len(argv) > 2 and not Path(argv[2]).exists():
            return 0 if quantize_int8(target, Path(argv[2]), model_path) else 1
        return 0
    finally:
        release_export(target)  # the claim of whoever started this export (ensure_query_model)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
