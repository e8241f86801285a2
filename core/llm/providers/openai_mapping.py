"""Pure mapping between the provider-neutral types and the OpenAI Chat Completions wire format.

Requests become SDK keyword arguments, SDK responses become `ChatResult`s, SDK exceptions become
`core.llm.errors` classes. Nothing here touches the network; `openai_provider` makes the calls.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import openai
import pydantic
from openai.types import CreateEmbeddingResponse
from openai.types.audio import Transcription
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from core.llm.errors import LLMError
from core.llm.providers.http_mapping import (
    CallContext,
    connection_error,
    content_filtered_error,
    detail,
    dropped_stream_error,
    error_for_status,
    malformed_error,
    parse_retry_after,
    quota_error,
    timeout_error,
    unexpected_error,
)
from core.llm.types import (
    Attachment,
    Capability,
    ChatRequest,
    ChatResult,
    FinishReason,
    Message,
)

OPENAI_BASE_URL = "https://api.openai.com/v1"
EMBEDDING_BATCH = 2048  # the most inputs one embeddings request may carry

# -- capabilities ------------------------------------------------------------------------------

_TEXT = frozenset({Capability.TEXT})
_VISION = frozenset({Capability.TEXT, Capability.VISION})
# Exact names win over the prefix rules below.
_EXACT: dict[str, frozenset[Capability]] = {
    "whisper-1": _TEXT | {Capability.AUDIO_TRANSCRIPTION},
    "o1-mini": _TEXT,
    "o1-preview": _TEXT,
    "o3-mini": _TEXT,
    "gpt-4": _TEXT,
    "gpt-3.5-turbo": _TEXT,
}
_VISION_PREFIXES = (
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-4-turbo",
    "gpt-5",
    "o1",
    "o3",
    "o4",
)
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")  # no temperature; max_completion_tokens only


def _base_model(model: str) -> str:
    """`ft:gpt-4o-mini:org::id` -> `gpt-4o-mini`: a fine-tune has its base model's abilities."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def openai_capabilities(model: str) -> frozenset[Capability]:
    """What an OpenAI model can do: text always (the router asks every deployment for it, audio
    requests included), plus what its family adds. The exact table wins over the prefix rules."""
    name = _base_model(model).lower()
    if name in _EXACT:
        return _EXACT[name]
    if name.startswith("text-embedding-"):
        return _TEXT | {Capability.EMBEDDINGS}
    if "transcribe" in name or name.startswith("whisper"):
        return _TEXT | {Capability.AUDIO_TRANSCRIPTION}
    if name.startswith(("gpt-image-", "dall-e-", "chatgpt-image")):
        return _TEXT | {Capability.IMAGE_GENERATION}
    if name.startswith(_VISION_PREFIXES):
        return _VISION
    return _TEXT


def is_reasoning_model(model: str) -> bool:
    name = _base_model(model).lower()
    return name.startswith(_REASONING_PREFIXES) and not name.startswith("gpt-5-chat")


# -- requests ----------------------------------------------------------------------------------


def image_data_url(attachment: Attachment) -> str:
    return f"data:{attachment.mime};base64,{base64.b64encode(attachment.data).decode('ascii')}"


def to_wire_message(message: Message) -> dict[str, Any]:
    images = [a for a in message.attachments if a.kind == "image"]
    if not images:
        return {"role": message.role, "content": message.content}
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "text": message.content})
    parts.extend({"type": "image_url", "image_url": {"url": image_data_url(a)}} for a in images)
    return {"role": message.role, "content": parts}


def chat_kwargs(request: ChatRequest, *, compatible: bool) -> dict[str, Any]:
    """Keyword arguments for `client.chat.completions.create` (without stream or timeout).

    OpenAI's own models take `max_completion_tokens` (reasoning models refuse `max_tokens`) and
    reasoning models refuse a temperature; OpenAI-compatible servers (Ollama, vLLM) know the
    classic `max_tokens` and honour the temperature.
    """
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": [to_wire_message(m) for m in request.messages],
    }
    if compatible:
        kwargs["max_tokens"] = request.max_tokens
    else:
        kwargs["max_completion_tokens"] = request.max_tokens
    if compatible or not is_reasoning_model(request.model):
        kwargs["temperature"] = request.temperature
    if request.stop:
        kwargs["stop"] = list(request.stop)
    return kwargs


_AUDIO_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
}


def audio_file(attachment: Attachment) -> tuple[str, bytes, str]:
    """The multipart `file` for a transcription. The service reads the format from the file
    name's extension, so a name without one gets the extension of its MIME type."""
    name = attachment.name or "audio"
    if "." not in name.rsplit("/", 1)[-1]:
        name = f"{name}.{_AUDIO_EXTENSIONS.get(attachment.mime.lower(), 'wav')}"
    return name, attachment.data, attachment.mime


# -- responses ---------------------------------------------------------------------------------

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def map_finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw, "unknown") if raw else "unknown"


def _result(
    text: str,
    finish_raw: str | None,
    refusal: str,
    usage: Any,
    model: str,
    ctx: CallContext,
    latency_ms: float,
) -> ChatResult:
    finish = map_finish_reason(finish_raw)
    if finish == "content_filter" or (refusal and not text):
        raise content_filtered_error(ctx)
    return ChatResult(
        text=text,
        model=model or ctx.model,
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
        finish_reason=finish,
        provider=ctx.provider,
    )


def chat_result(completion: ChatCompletion, ctx: CallContext, latency_ms: float) -> ChatResult:
    """The `ChatResult` of a non-streamed completion; a filtered answer raises ContentFiltered."""
    choices = getattr(completion, "choices", None)
    if not choices:
        raise malformed_error(ctx, "no choices in the completion")
    choice = choices[0]
    message = getattr(choice, "message", None)
    if message is None:
        raise malformed_error(ctx, "a choice without a message")
    return _result(
        text=message.content or "",
        finish_raw=getattr(choice, "finish_reason", None),
        refusal=getattr(message, "refusal", None) or "",
        usage=getattr(completion, "usage", None),
        model=getattr(completion, "model", "") or "",
        ctx=ctx,
        latency_ms=latency_ms,
    )


class StreamAccumulator:
    """Folds `ChatCompletionChunk`s into deltas and, at the end, the complete `ChatResult`."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._parts: list[str] = []
        self._refusal: list[str] = []
        self._finish: str | None = None
        self._usage: Any = None
        self._model = ""

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Take one chunk; return its text delta ("" when it has none)."""
        self._model = getattr(chunk, "model", "") or self._model
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage = usage
        delta_text = ""
        for choice in getattr(chunk, "choices", None) or []:
            if choice.index != 0:
                continue
            if choice.delta is not None:
                delta_text = choice.delta.content or ""
                if choice.delta.refusal:
                    self._refusal.append(choice.delta.refusal)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        if delta_text:
            self._parts.append(delta_text)
        return delta_text

    def result(self, latency_ms: float) -> ChatResult:
        if self._finish is None:
            raise dropped_stream_error(self._ctx, "the stream ended without a finish reason")
        return _result(
            text="".join(self._parts),
            finish_raw=self._finish,
            refusal="".join(self._refusal),
            usage=self._usage,
            model=self._model,
            ctx=self._ctx,
            latency_ms=latency_ms,
        )


def embeddings_from(
    response: CreateEmbeddingResponse, expected: int, ctx: CallContext
) -> list[list[float]]:
    data = sorted(getattr(response, "data", None) or [], key=lambda d: d.index)
    if len(data) != expected or any(not isinstance(d.embedding, list) for d in data):
        raise malformed_error(ctx, f"expected {expected} embeddings, got {len(data)}")
    return [[float(x) for x in d.embedding] for d in data]


def transcription_result(
    transcription: Transcription, ctx: CallContext, latency_ms: float
) -> ChatResult:
    text = getattr(transcription, "text", None)
    if not isinstance(text, str):
        raise malformed_error(ctx, "a transcription without text")
    usage = getattr(transcription, "usage", None)
    return ChatResult(
        text=text,
        model=ctx.model,
        input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        latency_ms=latency_ms,
        provider=ctx.provider,
    )


# -- errors ------------------------------------------------------------------------------------

# What the adapter catches around an SDK call: the SDK's own errors, transport errors the SDK
# lets through while a stream is read, and bodies that are not the JSON they claim to be.
TRANSLATED_ERRORS: tuple[type[Exception], ...] = (
    openai.OpenAIError,
    httpx2.HTTPError,
    json.JSONDecodeError,
    pydantic.ValidationError,
)
_CONTENT_FILTER_CODES = {"content_filter", "content_policy_violation", "invalid_prompt"}


def _error_fields(body: object) -> tuple[str, str, str]:
    """(type, code, message) from an OpenAI error body (`{"error": {...}}` or the inner dict)."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", "", ""
    return (
        str(error.get("type") or ""),
        str(error.get("code") or ""),
        str(error.get("message") or ""),
    )


def translate_error(exc: Exception, ctx: CallContext) -> LLMError:
    """The `core.llm.errors` class for anything `TRANSLATED_ERRORS` holds."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return timeout_error(ctx)
    if isinstance(exc, openai.APIConnectionError):
        return connection_error(ctx, exc.__cause__)
    if isinstance(exc, httpx2.HTTPError):
        return dropped_stream_error(ctx, type(exc).__name__)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return malformed_error(ctx, "invalid JSON" if isinstance(exc, ValueError) else "schema")
    if isinstance(exc, pydantic.ValidationError):
        return malformed_error(ctx, "unexpected shape")
    if isinstance(exc, openai.APIStatusError):
        error_type, code, message = _error_fields(exc.body)
        if code in _CONTENT_FILTER_CODES:
            return content_filtered_error(ctx, exc.status_code)
        if code == "insufficient_quota" or error_type == "insufficient_quota":
            return quota_error(ctx, exc.status_code)
        return error_for_status(
            exc.status_code,
            ctx,
            vendor_detail=detail(message, ctx),
            retry_after_s=parse_retry_after(exc.response.headers),
            request_id=exc.request_id,
        )
    if isinstance(exc, openai.APIError):
        # An error event inside an HTTP 200 stream: no status, only the body.
        error_type, code, message = _error_fields(exc.body)
        if code in _CONTENT_FILTER_CODES:
            return content_filtered_error(ctx)
        if "rate_limit" in code or "rate_limit" in error_type:
            return error_for_status(429, ctx, vendor_detail=detail(message, ctx))
        return dropped_stream_error(ctx, detail(message, ctx) or error_type or None)
    return unexpected_error(ctx, detail(str(exc), ctx) or type(exc).__name__)
