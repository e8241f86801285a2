"""Which embedding model a collection uses, by reference string.

- `minilm`: the bundled all-MiniLM-L6-v2 (`core.embeddings.minilm`), 384 dimensions, local.
- `tuned:<registered model>/<version>` (or `@alias`): a copy fine-tuned by `omni rag tune`,
  resolved through the MLflow registry to a local directory; same architecture and dimension.
- `openai:<model>`: OpenAI's embeddings API through the official SDK (key and base URL from
  settings: OMNI_OPENAI_API_KEY, OMNI_OPENAI_BASE_URL); the dimension is what the API returns.

Embedders are cached per reference, so each model loads once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.config import get_settings
from core.errors import ConfigurationError, ValidationError

Progress = Callable[[int, int], None]

MINILM = "minilm"
MAX_REF_CHARS = 200


class TextEmbedder(Protocol):
    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> npt.NDArray[Any]:
        """(n, d) float32 unit vectors in input order."""
        ...


class OpenAIEmbedder:
    """Embeddings from OpenAI (or a compatible server) through the gateway's OpenAI adapter."""

    def __init__(self, model: str) -> None:
        from core.llm.providers.openai_provider import OpenAIProvider
        from core.llm.types import ProviderConfig

        settings = get_settings()
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key:
            raise ConfigurationError(
                f"Collection embeddings 'openai:{model}' need an OpenAI API key: set "
                "OMNI_OPENAI_API_KEY (or the openai_api_key secret), or use 'minilm'."
            )
        self.model = model
        self._provider = OpenAIProvider(
            ProviderConfig(kind="openai", api_key=key, base_url=settings.openai_base_url)
        )

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> npt.NDArray[Any]:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out: list[list[float]] = []
        step = 256
        for start in range(0, len(texts), step):
            out.extend(self._provider.embed(list(texts[start : start + step]), self.model))
            if progress is not None:
                progress(min(start + step, len(texts)), len(texts))
        matrix = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        unit: npt.NDArray[Any] = matrix / np.maximum(norms, 1e-12)
        return unit


_cache: dict[str, TextEmbedder] = {}
_lock = threading.Lock()


def validate_ref(ref: str) -> str:
    """The reference, trimmed, or a ValidationError naming the accepted forms."""
    value = ref.strip()
    ok = (
        value == MINILM
        or (value.startswith("tuned:") and len(value) > len("tuned:"))
        or (value.startswith("openai:") and len(value) > len("openai:"))
    )
    if not ok or len(value) > MAX_REF_CHARS:
        raise ValidationError(
            f"Unknown embedding model {ref[:60]!r}: use 'minilm', 'tuned:<model>/<version>' "
            "(from `omni rag tune`) or 'openai:<model>' (e.g. openai:text-embedding-3-small)."
        )
    return value


def embedder_for(ref: str) -> TextEmbedder:
    ref = validate_ref(ref)
    with _lock:
        cached = _cache.get(ref)
        if cached is not None:
            return cached
        embedder: TextEmbedder
        if ref == MINILM:
            from core.embeddings.minilm import shared_embedder

            embedder = shared_embedder()
        elif ref.startswith("tuned:"):
            from core.embeddings.minilm import MiniLMEmbedder
            from core.rag.tune import tuned_model_path

            embedder = MiniLMEmbedder(model_path=tuned_model_path(ref[len("tuned:") :]))
        else:
            embedder = OpenAIEmbedder(ref[len("openai:") :])
        _cache[ref] = embedder
        return embedder


def forget_embedders() -> None:
    """Drop cached embedders (tests; after the OpenAI key changes)."""
    with _lock:
        _cache.clear()
