"""ONNX Runtime backend for the MiniLM embedder (CPU).

The transformers checkpoint (the bundled all-MiniLM-L6-v2 or a fine-tuned copy with the same
BERT architecture) is exported once with mean pooling and L2 normalisation inside the graph, then
put through onnxruntime's BERT optimiser (fused embedding + layer norm, attention, bias + GELU)
and, for the "int8" variant, dynamic int8 quantisation of the weights
(per-channel int8, activations quantised per batch at run time).

The result is cached at `$OMNI_HOME/cache/embeddings/<key>/model.onnx`, where the key is the
SHA-256 of the source weights and config plus the variant and the recipe (onnxruntime version,
opset, recipe version). It is written to a temporary file in the same directory and moved into
place with `os.replace`, under an advisory lock, so concurrent processes build it at most once
and never read a partial file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.errors import ConfigurationError

log = logging.getLogger(__name__)

Variant = Literal["fp32", "int8"]
OPSET = 17
# Bump when the export, fusion or quantisation recipe changes: old cache entries are then ignored.
RECIPE = 2
# Residual add + LayerNormalization stay two kernels: onnxruntime's fused SkipLayerNormalization
# was the slower on this CPU (int8 model: 19.6 vs 17.6 abstracts/s, 32 x 256 tokens, 2 cores).
NO_FUSION = ["SkipLayerNormFusion"]
SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin")


@functools.cache
def available() -> bool:
    """True when onnxruntime imports and onnx (its optimiser and quantiser need it) is there."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return importlib.util.find_spec("onnx") is not None


def source_digest(model_dir: Path) -> str:
    """SHA-256 over the weights and config of a transformers model directory (memoised per
    process by file size and modification time)."""
    stamp: list[tuple[str, int, int]] = []
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.is_file():
            st = path.stat()
            stamp.append((name, st.st_size, st.st_mtime_ns))
    if not any(name != "config.json" for name, _, _ in stamp):
        raise ConfigurationError(
            f"Embedding model directory {model_dir} has no model.safetensors or "
            "pytorch_model.bin: point model_path at a transformers model directory."
        )
    return _digest(model_dir.resolve(), tuple(stamp))


@functools.lru_cache(maxsize=16)
def _digest(model_dir: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamp:
        h.update(name.encode() + b"\0")
        with open(model_dir / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def cache_key(model_dir: Path, variant: Variant) -> str:
    import onnxruntime

    recipe = f"variant={variant};recipe={RECIPE};opset={OPSET};ort={onnxruntime.__version__}"
    return hashlib.sha256(f"{source_digest(model_dir)};{recipe}".encode()).hexdigest()[:32]


def cache_root() -> Path:
    from core.config import get_settings

    return get_settings().home / "cache" / "embeddings"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on `directory/.lock` (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(directory / ".lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_model(model_dir: Path, variant: Variant, root: Path | None = None) -> Path:
    """Path of the optimised ONNX model for `model_dir`, built on first use. The int8 model is
    quantised from the (cached) fp32 one, so a process that needs both exports once."""
    root = root or cache_root()
    target_dir = root / cache_key(model_dir, variant)
    target = target_dir / "model.onnx"
    if target.is_file():
        return target
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot create the embedding model cache {target_dir}: {exc}. Set OMNI_HOME to a "
            "writable directory, or OMNI_EMBED_BACKEND=torch."
        ) from exc
    with _locked(target_dir):
        if target.is_file():  # another process built it while this one waited for the lock
            return target
        with tempfile.TemporaryDirectory(dir=target_dir, prefix=".build-") as tmp:
            built = Path(tmp) / "model.onnx"
            if variant == "fp32":
                raw = Path(tmp) / "raw.onnx"
                _export(model_dir, raw)
                _optimise(model_dir, raw, built)
            else:
                _quantise(cached_model(model_dir, "fp32", root), built)
            os.replace(built, target)  # same directory: readers see no file or all of it
    log.info("Embedding model (%s) exported to %s", variant, target)
    return target


def _export(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # eager attention: the graph pattern onnxruntime's attention fusion recognises
    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    sample = torch.ones((2, 16), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(
            Pooled(bert),
            (sample, sample),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["embeddings"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embeddings": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def _optimise(model_dir: Path, raw: Path, out: Path) -> None:
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False  # see NO_FUSION
    model = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
        optimization_options=options,
        opt_level=0,  # graph fusions only; onnxruntime's own passes run when the session loads
    )
    fused = model.get_fused_operator_statistics()
    if not fused.get("Attention"):
        log.warning("onnxruntime fused no attention in %s: the ONNX model will be slow", model_dir)
    model.save_model_to_file(str(out))


def _quantise(fused: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class _NoPreprocessHint(logging.Filter):  # the quantiser suggests a step we do not need
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    hint = _NoPreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(
            fused,
            out,
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeFilter(hint)


class OnnxEncoder:
    """An onnxruntime session over a cached model: (ids, mask) -> (n, 384) unit vectors."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no busy-waiting between kernels: on a shared machine spinning threads took the cores
        # from the busy ones (single query p95 15 -> 10 ms at load 3.6; batch throughput equal)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self.path = path
        self._session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=NO_FUSION
        )

    def __call__(
        self, input_ids: npt.NDArray[np.int64], attention_mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        out = self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(out[0], dtype=np.float32)
