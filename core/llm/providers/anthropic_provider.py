"""Anthropic adapter: chat and streaming through the official `anthropic` SDK's Messages API.

The only module that calls the `anthropic` SDK. Mapping lives in `anthropic_mapping`; every SDK
failure leaves here as a `core.llm.errors` class. The SDK's own retries are off: the router
retries.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any, NoReturn

import anthropic

from core.llm.errors import UnsupportedCapability
from core.llm.providers import anthropic_mapping as mapping
from core.llm.providers.http_mapping import (
    CallContext,
    capabilities_setting,
    check_chat_request,
    flag_setting,
    missing_key_error,
    timeout_setting,
)
from core.llm.types import (
    Attachment,
    Capability,
    ChatRequest,
    ChatResult,
    ProviderConfig,
    StreamEvent,
)


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class AnthropicProvider:
    """Claude models. Settings in `config.extra`: `send_temperature` ("true" for deployments
    pinned to a model that still honours it), `timeout_s`, `capabilities`."""

    name = "anthropic"
    label = "Anthropic"

    def __init__(self, config: ProviderConfig) -> None:
        self._base_url = config.base_url or mapping.ANTHROPIC_BASE_URL
        self._default_timeout_s = timeout_setting(config.extra, self.name)
        self._extra_capabilities = capabilities_setting(config.extra, self.name)
        self._send_temperature = flag_setting(config.extra, "send_temperature", self.name)
        self._secrets = (config.api_key,) if config.api_key else ()
        self._client: anthropic.Anthropic | None = None
        # Without a configured key the SDK would go looking for one (environment, profile files):
        # the gateway uses only what it was given.
        if config.api_key:
            self._client = anthropic.Anthropic(
                api_key=config.api_key,
                base_url=self._base_url,
                timeout=self._default_timeout_s,
                max_retries=0,
            )

    # -- ChatProvider --------------------------------------------------------------------------

    def capabilities(self, model: str) -> frozenset[Capability]:
        return mapping.anthropic_capabilities(model) | self._extra_capabilities

    def chat(self, request: ChatRequest) -> ChatResult:
        ctx = self._context(request.model, request.timeout_s)
        client = self._ready(ctx)
        kwargs = self._kwargs(request, ctx)
        started = time.perf_counter()
        try:
            message = client.messages.create(**kwargs, timeout=request.timeout_s)
        except mapping.TRANSLATED_ERRORS as exc:
            self._fail(exc, ctx)
        return mapping.chat_result(message, ctx, _elapsed_ms(started))

    def stream(self, request: ChatRequest) -> Generator[StreamEvent, None, None]:
        ctx = self._context(request.model, request.timeout_s)
        client = self._ready(ctx)
        kwargs = self._kwargs(request, ctx)
        accumulator = mapping.StreamAccumulator(ctx)
        started = time.perf_counter()
        try:
            events = client.messages.create(**kwargs, stream=True, timeout=request.timeout_s)
            with events:  # closes the HTTP response if the caller stops early
                for event in events:
                    delta = accumulator.add(event)
                    if delta:
                        yield StreamEvent(delta=delta)
        except mapping.TRANSLATED_ERRORS as exc:
            self._fail(exc, ctx)
        yield StreamEvent(result=accumulator.result(_elapsed_ms(started)))

    # -- what Anthropic does not offer ---------------------------------------------------------

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        raise UnsupportedCapability(
            "Anthropic has no embeddings API. Route embeddings to an OpenAI or local embedding "
            "deployment.",
            provider=self.name,
        )

    def transcribe(self, audio: Attachment, model: str) -> ChatResult:
        raise UnsupportedCapability(
            "Anthropic has no speech-to-text API. Route transcription to an OpenAI deployment "
            "(whisper-1 or gpt-4o-transcribe).",
            provider=self.name,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._client is not None:
            self._client.close()

    # -- internals -----------------------------------------------------------------------------

    def _kwargs(self, request: ChatRequest, ctx: CallContext) -> dict[str, Any]:
        check_chat_request(request, ctx)
        return mapping.message_kwargs(
            request, send_temperature=self._send_temperature, provider=self.name
        )

    def _context(self, model: str, timeout_s: float) -> CallContext:
        return CallContext(
            provider=self.name,
            label=self.label,
            model=model,
            base_url=self._base_url,
            timeout_s=timeout_s,
            secrets=self._secrets,
        )

    def _ready(self, ctx: CallContext) -> anthropic.Anthropic:
        if self._client is None:
            raise missing_key_error(ctx)
        return self._client

    def _fail(self, exc: Exception, ctx: CallContext) -> NoReturn:
        # `from None`: the SDK's exception text can quote the request's key back.
        raise mapping.translate_error(exc, ctx) from None
