"""Response caching: an exact-match key, and an optional semantic index over MiniLM embeddings."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict
from typing import Any

import numpy as np

from core.llm.types import ChatRequest, ChatResult


def exact_key(alias: str, request: ChatRequest) -> str:
    """Everything that changes the answer: alias, parameters and every message."""
    payload = {
        "alias": alias,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "messages": [[m.role, m.content] for m in request.messages],
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def encode_result(result: ChatResult) -> str:
    return json.dumps(asdict(result), separators=(",", ":"))


def decode_result(text: str) -> ChatResult:
    data: dict[str, Any] = json.loads(text)
    return ChatResult(**data)


class SemanticIndex:
    """Per alias, the embeddings of cached prompts and their exact keys. In-process only: Redis
    shares the exact cache between replicas; each replica keeps its own semantic index."""

    def __init__(self, max_entries: int = 2_000) -> None:
        self._lock = threading.Lock()
        self._max = max_entries
        self._vectors: dict[str, np.ndarray] = {}
        self._keys: dict[str, list[str]] = {}

    def add(self, alias: str, vector: np.ndarray, key: str) -> None:
        with self._lock:
            keys = self._keys.setdefault(alias, [])
            stacked = self._vectors.get(alias)
            row = vector.reshape(1, -1).astype(np.float32)
            self._vectors[alias] = (
                row if stacked is None else np.vstack([stacked, row])[-self._max :]
            )
            keys.append(key)
            del keys[: -self._max]

    def nearest(self, alias: str, vector: np.ndarray, threshold: float) -> str | None:
        with self._lock:
            stacked = self._vectors.get(alias)
            if stacked is None or not len(stacked):
                return None
            scores = stacked @ vector.astype(np.float32)
            best = int(np.argmax(scores))
            return self._keys[alias][best] if scores[best] >= threshold else None

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
            self._keys.clear()
