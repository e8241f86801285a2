"""Pure mapping between the provider-neutral types and the Anthropic Messages wire format.

Requests become SDK keyword arguments, SDK messages and stream events become `ChatResult`s, SDK
exceptions become `core.llm.errors` classes. No network here; `anthropic_provider` calls.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx2
import pydantic
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent

from core.llm.errors import BadRequest, LLMError, UnsupportedCapability
from core.llm.providers.http_mapping import (
    CallContext,
    connection_error,
    content_filtered_error,
    detail,
    dropped_stream_error,
    error_for_status,
    malformed_error,
    parse_retry_after,
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

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# -- capabilities ------------------------------------------------------------------------------

_TEXT_ONLY_PREFIXES = ("claude-1", "claude-2", "claude-instant")


def anthropic_capabilities(model: str) -> frozenset[Capability]:
    """Every Claude model since Claude 3 (claude-3*, claude-*-4*, ...) takes images."""
    name = model.lower()
    if name.startswith("claude-") and not name.startswith(_TEXT_ONLY_PREFIXES):
        return frozenset({Capability.TEXT, Capability.VISION})
    return frozenset({Capability.TEXT})


# -- requests ----------------------------------------------------------------------------------


def image_block(attachment: Attachment, provider: str) -> dict[str, Any]:
    mime = attachment.mime.lower()
    if mime not in IMAGE_TYPES:
        raise UnsupportedCapability(
            f"Anthropic takes JPEG, PNG, GIF or WebP images, not {attachment.mime!r}; convert "
            "the image first.",
            provider=provider,
        )
    data = base64.b64encode(attachment.data).decode("ascii")
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def to_wire_message(message: Message, provider: str) -> dict[str, Any]:
    images = [a for a in message.attachments if a.kind == "image"]
    if not images:
        return {"role": message.role, "content": message.content}
    # Images before the text: Claude answers questions about images best that way.
    blocks = [image_block(a, provider) for a in images]
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    return {"role": message.role, "content": blocks}


def message_kwargs(
    request: ChatRequest, *, send_temperature: bool, provider: str
) -> dict[str, Any]:
    """Keyword arguments for `client.messages.create` (without stream or timeout).

    System messages are joined into `system=`. The SDK (2.x) dropped `temperature` because
    current models refuse it; `send_temperature` passes it in the body for deployments pinned to
    an older model that still honours it.
    """
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    turns = [to_wire_message(m, provider) for m in request.messages if m.role != "system"]
    if not turns:
        raise BadRequest(
            "Anthropic needs at least one user message besides the system prompt.",
            provider=provider,
        )
    kwargs: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": turns,
    }
    if system:
        kwargs["system"] = system
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if send_temperature:
        kwargs["extra_body"] = {"temperature": min(request.temperature, 1.0)}
    return kwargs


# -- responses ---------------------------------------------------------------------------------

_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}


def map_stop_reason(raw: str | None) -> FinishReason:
    return _STOP.get(raw, "unknown") if raw else "unknown"


def _input_tokens(usage: Any) -> int:
    """All prompt tokens, cached or not, the way OpenAI counts `prompt_tokens`."""
    return sum(
        int(getattr(usage, field, 0) or 0)
        for field in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def _result(
    text: str,
    stop_raw: str | None,
    input_tokens: int,
    output_tokens: int,
    model: str,
    ctx: CallContext,
    latency_ms: float,
) -> ChatResult:
    finish = map_stop_reason(stop_raw)
    if finish == "content_filter":
        raise content_filtered_error(ctx)
    return ChatResult(
        text=text,
        model=model or ctx.model,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        finish_reason=finish,
        provider=ctx.provider,
    )


def chat_result(message: AnthropicMessage, ctx: CallContext, latency_ms: float) -> ChatResult:
    """The `ChatResult` of a non-streamed message; a refusal raises ContentFiltered."""
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        raise malformed_error(ctx, "a message without content")
    usage = getattr(message, "usage", None)
    return _result(
        text="".join(b.text for b in content if getattr(b, "type", "") == "text"),
        stop_raw=getattr(message, "stop_reason", None),
        input_tokens=_input_tokens(usage),
        output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        model=getattr(message, "model", "") or "",
        ctx=ctx,
        latency_ms=latency_ms,
    )


class StreamAccumulator:
    """Folds raw Messages stream events into text deltas and, at the end, the `ChatResult`."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._parts: list[str] = []
        self._model = ""
        self._input_tokens = 0
        self._output_tokens = 0
        self._stop: str | None = None
        self._stopped = False

    def add(self, event: RawMessageStreamEvent) -> str:
        """Take one event; return its text delta ("" when it has none)."""
        if event.type == "message_start":
            self._model = event.message.model
            self._input_tokens = _input_tokens(event.message.usage)
            self._output_tokens = event.message.usage.output_tokens
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            self._parts.append(event.delta.text)
            return event.delta.text
        elif event.type == "message_delta":
            self._stop = event.delta.stop_reason or self._stop
            self._output_tokens = event.usage.output_tokens  # cumulative
            if event.usage.input_tokens is not None:
                self._input_tokens = _input_tokens(event.usage)
        elif event.type == "message_stop":
            self._stopped = True
        return ""

    def result(self, latency_ms: float) -> ChatResult:
        if self._stop == "refusal":  # raise even if the stream broke off right after
            raise content_filtered_error(self._ctx)
        if not self._stopped or self._stop is None:
            raise dropped_stream_error(self._ctx, "the stream ended before message_stop")
        return _result(
            text="".join(self._parts),
            stop_raw=self._stop,
            input_tokens=self._input_tokens,
            output_tokens=self._output_tokens,
            model=self._model,
            ctx=self._ctx,
            latency_ms=latency_ms,
        )


# -- errors ------------------------------------------------------------------------------------

TRANSLATED_ERRORS: tuple[type[Exception], ...] = (
    anthropic.AnthropicError,
    httpx2.HTTPError,
    json.JSONDecodeError,
    pydantic.ValidationError,
)
# An `error` event inside an HTTP 200 stream carries only its type: the status each type means.
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _error_fields(body: object) -> tuple[str, str]:
    """(type, message) from an Anthropic error body `{"type": "error", "error": {...}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("type") or ""), str(error.get("message") or "")


def translate_error(exc: Exception, ctx: CallContext) -> LLMError:
    """The `core.llm.errors` class for anything `TRANSLATED_ERRORS` holds."""
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return timeout_error(ctx)
    if isinstance(exc, anthropic.APIConnectionError):
        return connection_error(ctx, exc.__cause__)
    if isinstance(exc, httpx2.HTTPError):
        return dropped_stream_error(ctx, type(exc).__name__)
    if isinstance(exc, anthropic.APIResponseValidationError | json.JSONDecodeError):
        return malformed_error(ctx, "invalid JSON" if isinstance(exc, ValueError) else "schema")
    if isinstance(exc, pydantic.ValidationError):
        return malformed_error(ctx, "unexpected shape")
    if isinstance(exc, anthropic.APIStatusError):
        error_type, message = _error_fields(exc.body)
        status = exc.status_code
        if status < 400:  # an error event inside a successful stream
            status = _STATUS_OF_TYPE.get(error_type, 500)
        return error_for_status(
            status,
            ctx,
            vendor_detail=detail(message, ctx),
            retry_after_s=parse_retry_after(exc.response.headers),
            request_id=exc.request_id,
        )
    return unexpected_error(ctx, detail(str(exc), ctx) or type(exc).__name__)
