"""OpenAI adapter, and the same adapter for OpenAI-compatible servers (Ollama, vLLM, LM Studio).

The only module that calls the `openai` SDK. Mapping lives in `openai_mapping`; every SDK failure
leaves here as a `core.llm.errors` class. The SDK's own retries are off: the router retries.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Literal, NoReturn

import openai

from core.errors import ConfigurationError
from core.llm.errors import UnsupportedCapability
from core.llm.providers import openai_mapping as mapping
from core.llm.providers.http_mapping import (
    CallContext,
    capabilities_setting,
    check_chat_request,
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

# Local servers ignore the key, but the SDK insists on one; never fall back to OPENAI_API_KEY,
# which would send a real OpenAI key to a third-party server.
_NO_KEY_NEEDED = "not-needed"


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class OpenAIProvider:
    """Chat, streaming, embeddings and transcription through the official `openai` SDK.

    Settings in `config.extra` (all optional): `timeout_s` (embeddings and transcription; chat
    uses the request's), `capabilities` (added to the model table, e.g. `"vision"`),
    `organization`, `project`.
    """

    name = "openai"
    label = "OpenAI"
    compatible = False

    def __init__(self, config: ProviderConfig) -> None:
        self._base_url = self._resolve_base_url(config)
        self._default_timeout_s = timeout_setting(config.extra, self.name)
        self._extra_capabilities = capabilities_setting(config.extra, self.name)
        api_key = config.api_key or (_NO_KEY_NEEDED if self.compatible else None)
        self._secrets = (config.api_key,) if config.api_key else ()
        self._client: openai.OpenAI | None = None
        if api_key:
            self._client = openai.OpenAI(
                api_key=api_key,
                base_url=self._base_url,
                organization=config.extra.get("organization"),
                project=config.extra.get("project"),
                timeout=self._default_timeout_s,
                max_retries=0,
            )

    def _resolve_base_url(self, config: ProviderConfig) -> str:
        return config.base_url or mapping.OPENAI_BASE_URL

    # -- ChatProvider --------------------------------------------------------------------------

    def capabilities(self, model: str) -> frozenset[Capability]:
        return mapping.openai_capabilities(model) | self._extra_capabilities

    def chat(self, request: ChatRequest) -> ChatResult:
        ctx = self._context(request.model, request.timeout_s)
        client = self._ready(ctx)
        check_chat_request(request, ctx)
        kwargs = mapping.chat_kwargs(request, compatible=self.compatible)
        started = time.perf_counter()
        try:
            completion = client.chat.completions.create(**kwargs, timeout=request.timeout_s)
        except mapping.TRANSLATED_ERRORS as exc:
            self._fail(exc, ctx)
        return mapping.chat_result(completion, ctx, _elapsed_ms(started))

    def stream(self, request: ChatRequest) -> Generator[StreamEvent, None, None]:
        ctx = self._context(request.model, request.timeout_s)
        client = self._ready(ctx)
        check_chat_request(request, ctx)
        kwargs = mapping.chat_kwargs(request, compatible=self.compatible)
        accumulator = mapping.StreamAccumulator(ctx)
        started = time.perf_counter()
        try:
            chunks = client.chat.completions.create(
                **kwargs,
                stream=True,
                stream_options={"include_usage": True},
                timeout=request.timeout_s,
            )
            with chunks:  # closes the HTTP response if the caller stops early
                for chunk in chunks:
                    delta = accumulator.add(chunk)
                    if delta:
                        yield StreamEvent(delta=delta)
        except mapping.TRANSLATED_ERRORS as exc:
            self._fail(exc, ctx)
        yield StreamEvent(result=accumulator.result(_elapsed_ms(started)))

    # -- EmbeddingProvider ---------------------------------------------------------------------

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        if not texts:
            return []
        ctx = self._context(model, self._default_timeout_s)
        client = self._ready(ctx)
        # Some compatible servers cannot send base64, the SDK's default; floats work everywhere.
        encoding: Literal["float"] | openai.Omit = "float" if self.compatible else openai.omit
        vectors: list[list[float]] = []
        for start in range(0, len(texts), mapping.EMBEDDING_BATCH):
            batch = texts[start : start + mapping.EMBEDDING_BATCH]
            try:
                response = client.embeddings.create(
                    input=batch, model=model, encoding_format=encoding, timeout=ctx.timeout_s
                )
            except mapping.TRANSLATED_ERRORS as exc:
                self._fail(exc, ctx)
            vectors.extend(mapping.embeddings_from(response, len(batch), ctx))
        return vectors

    # -- TranscriptionProvider -----------------------------------------------------------------

    def transcribe(self, audio: Attachment, model: str) -> ChatResult:
        ctx = self._context(model, self._default_timeout_s)
        client = self._ready(ctx)
        if audio.kind != "audio":
            raise UnsupportedCapability(
                f"Transcription takes an audio attachment, not an {audio.kind}.",
                provider=self.name,
            )
        started = time.perf_counter()
        try:
            transcription = client.audio.transcriptions.create(
                file=mapping.audio_file(audio), model=model, timeout=ctx.timeout_s
            )
        except mapping.TRANSLATED_ERRORS as exc:
            self._fail(exc, ctx)
        return mapping.transcription_result(transcription, ctx, _elapsed_ms(started))

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP connection pool."""
        if self._client is not None:
            self._client.close()

    # -- internals -----------------------------------------------------------------------------

    def _context(self, model: str, timeout_s: float) -> CallContext:
        return CallContext(
            provider=self.name,
            label=self.label,
            model=model,
            base_url=self._base_url,
            timeout_s=timeout_s,
            secrets=self._secrets,
        )

    def _ready(self, ctx: CallContext) -> openai.OpenAI:
        if self._client is None:
            raise missing_key_error(ctx)
        return self._client

    def _fail(self, exc: Exception, ctx: CallContext) -> NoReturn:
        # `from None`: the SDK's exception text can quote the request's key back.
        raise mapping.translate_error(exc, ctx) from None


class OpenAICompatibleProvider(OpenAIProvider):
    """Any server speaking the OpenAI API (Ollama, vLLM, LM Studio). `base_url` is required;
    the key is optional. Text only, unless `extra["capabilities"]` names more
    (e.g. `"vision, embeddings"`)."""

    name = "openai_compatible"
    label = "OpenAI-compatible server"
    compatible = True

    def _resolve_base_url(self, config: ProviderConfig) -> str:
        if not config.base_url:
            raise ConfigurationError(
                "The openai_compatible provider needs a base_url, for example "
                "http://localhost:11434/v1 for Ollama or http://localhost:8000/v1 for vLLM."
            )
        return config.base_url

    def capabilities(self, model: str) -> frozenset[Capability]:
        return frozenset({Capability.TEXT}) | self._extra_capabilities
