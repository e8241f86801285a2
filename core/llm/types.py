"""The provider-neutral request and result types every adapter speaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from core.errors import ValidationError


class Capability(StrEnum):
    TEXT = "text"
    VISION = "vision"  # image input
    AUDIO_TRANSCRIPTION = "audio_transcription"
    IMAGE_GENERATION = "image_generation"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True)
class Attachment:
    kind: Literal["image", "audio"]
    data: bytes
    mime: str
    name: str = ""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str
    attachments: tuple[Attachment, ...] = ()


MAX_TOKENS_LIMIT = 32_000


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[Message, ...]
    model: str = ""  # filled from the deployment by the router
    temperature: float = 0.7
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValidationError("A chat request needs at least one message.")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValidationError("Temperature must be between 0 and 2.")
        if not 1 <= self.max_tokens <= MAX_TOKENS_LIMIT:
            raise ValidationError(f"Max tokens must be between 1 and {MAX_TOKENS_LIMIT:,}.")
        if len(self.stop) > 4:
            raise ValidationError("At most 4 stop sequences.")

    @classmethod
    def simple(cls, prompt: str, system: str = "", **params: object) -> ChatRequest:
        messages = ((Message("system", system),) if system else ()) + (Message("user", prompt),)
        return cls(messages=messages, **params)  # type: ignore[arg-type]

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        return tuple(a for m in self.messages for a in m.attachments)

    def cache_key_text(self) -> str:
        """The text that identifies this request for the exact-match cache."""
        parts = [f"{m.role}:{m.content}" for m in self.messages]
        return "\x1e".join(parts)


FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "error", "unknown"]


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    finish_reason: FinishReason = "stop"
    provider: str = ""
    deployment: str = ""
    cost_micros: int = 0  # micro-USD, priced by the gateway from the versioned price table
    cache_hit: Literal["", "exact", "semantic"] = ""


@dataclass(frozen=True)
class StreamEvent:
    """A piece of a streamed answer; the last event carries the complete result."""

    delta: str = ""
    result: ChatResult | None = None


@runtime_checkable
class ChatProvider(Protocol):
    """What every adapter implements. Calls are synchronous; callers use threads for fan-out."""

    name: str

    def capabilities(self, model: str) -> frozenset[Capability]: ...

    def chat(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]: ...


@runtime_checkable
class EmbeddingProvider(Protocol):
    def embed(self, texts: list[str], model: str) -> list[list[float]]: ...


@runtime_checkable
class TranscriptionProvider(Protocol):
    def transcribe(self, audio: Attachment, model: str) -> ChatResult: ...


@dataclass(frozen=True)
class ProviderConfig:
    """How to reach one provider: the registry builds adapters from this."""

    kind: str  # "openai", "anthropic", "openai_compatible", "local"
    api_key: str | None = None
    base_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
