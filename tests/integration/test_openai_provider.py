"""The OpenAI adapter drives the real `openai` SDK against a local server speaking the OpenAI wire
format: what reaches the wire, what comes back, and how each failure is translated."""

from __future__ import annotations

import base64
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import ConfigurationError
from core.llm.errors import (
    BadRequest,
    ContentFiltered,
    LLMError,
    ProviderAuthError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnsupportedCapability,
)
from core.llm.providers import make_provider
from core.llm.providers.openai_provider import OpenAICompatibleProvider, OpenAIProvider
from core.llm.types import (
    Attachment,
    Capability,
    ChatProvider,
    ChatRequest,
    ChatResult,
    EmbeddingProvider,
    Message,
    ProviderConfig,
    StreamEvent,
    TranscriptionProvider,
)
from tests.fakes import FakeOpenAI, Reply, closed_port_url

MODEL = "gpt-4o-mini"
TIMEOUT_S = 0.3
PNG = b"\x89PNG\r\n\x1a\nnot-really-a-png"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeOpenAI) -> FakeOpenAI:
    server.reset()
    return server


@pytest.fixture(scope="module")
def adapter(server: FakeOpenAI) -> Iterator[OpenAIProvider]:
    """One adapter for the module: it keeps no state between calls, and building a client
    (TLS trust store included) costs tens of milliseconds."""
    adapter = OpenAIProvider(
        ProviderConfig("openai", api_key=server.api_key, base_url=f"{server.url}/v1")
    )
    yield adapter
    adapter.close()


@pytest.fixture
def provider(adapter: OpenAIProvider, fake: FakeOpenAI) -> OpenAIProvider:
    return adapter


def ask(prompt: str = "hello there", **params: Any) -> ChatRequest:
    params.setdefault("model", MODEL)
    return ChatRequest.simple(prompt, **params)


def run(provider: ChatProvider, request: ChatRequest, streaming: bool) -> ChatResult:
    """One call, either way; streaming consumes every event and returns the final result."""
    if not streaming:
        return provider.chat(request)
    events = list(provider.stream(request))
    assert events[-1].result is not None
    return events[-1].result


# -- the happy path ----------------------------------------------------------------------------


def test_registry_builds_the_adapters(fake: FakeOpenAI) -> None:
    adapter = make_provider(ProviderConfig("openai", api_key="k", base_url=f"{fake.url}/v1"))
    assert isinstance(adapter, OpenAIProvider) and adapter.name == "openai"
    assert isinstance(adapter, ChatProvider | EmbeddingProvider | TranscriptionProvider)
    local = make_provider(ProviderConfig("openai_compatible", base_url=f"{fake.url}/v1"))
    assert isinstance(local, OpenAICompatibleProvider) and local.name == "openai_compatible"


def test_chat(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    result = provider.chat(ask("hello there", system="be brief"))
    assert result.text == "echo: hello there"
    assert (result.model, result.provider, result.finish_reason) == (MODEL, "openai", "stop")
    assert (result.input_tokens, result.output_tokens) == (4, 3)  # the fake counts words
    assert result.latency_ms > 0 and result.cost_micros == 0
    assert fake.last.headers["authorization"] == f"Bearer {fake.api_key}"


def test_parameters_reach_the_wire(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    request = ChatRequest(
        messages=(
            Message("system", "be brief"),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("user", "again"),
        ),
        model=MODEL,
        temperature=0.2,
        max_tokens=77,
        stop=("END", "STOP"),
    )
    provider.chat(request)
    body = fake.last_body
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    assert (body["temperature"], body["max_completion_tokens"]) == (0.2, 77)
    assert body["stop"] == ["END", "STOP"] and "max_tokens" not in body
    assert not body.get("stream")


def test_reasoning_models_get_no_temperature(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    provider.chat(ask(model="o4-mini", temperature=0.2))
    assert "temperature" not in fake.last_body
    assert fake.last_body["max_completion_tokens"] == 256


@pytest.mark.parametrize(
    ("params", "text", "finish"),
    [
        ({"max_tokens": 3}, "one two three", "length"),
        ({"stop": ("three",)}, "one two ", "stop"),
    ],
)
def test_how_the_answer_ended(
    provider: OpenAIProvider, fake: FakeOpenAI, params: dict[str, Any], text: str, finish: str
) -> None:
    fake.script(Reply.ok("one two three four five"), Reply.ok("one two three four five"))
    for streaming in (False, True):
        result = run(provider, ask(**params), streaming)
        assert (result.text, result.finish_reason) == (text, finish)


def test_stream(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    events = list(provider.stream(ask("tell me a story")))
    deltas = [e.delta for e in events[:-1]]
    assert len(deltas) > 1 and all(deltas) and all(e.result is None for e in events[:-1])
    final = events[-1].result
    assert final is not None and events[-1].delta == ""
    assert "".join(deltas) == final.text == "echo: tell me a story"
    assert (final.input_tokens, final.output_tokens) == (4, 5)
    assert final.finish_reason == "stop" and final.model == MODEL and final.latency_ms > 0
    assert fake.last_body["stream"] is True
    assert fake.last_body["stream_options"] == {"include_usage": True}


def test_stream_closed_early_leaves_the_adapter_usable(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    stream = provider.stream(ask("one two three four"))
    assert next(stream) == StreamEvent(delta="echo:")
    stream.close()
    assert provider.chat(ask("still there")).text == "echo: still there"


def test_latency_is_measured(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    fake.latency_s = 0.05
    assert provider.chat(ask()).latency_ms >= 50


def test_image_reaches_the_wire_as_an_image_url_part(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    message = Message("user", "what is in the picture?", (Attachment("image", PNG, "image/png"),))
    result = provider.chat(ChatRequest(messages=(message,), model="gpt-4.1"))
    assert result.text == "echo: what is in the picture?"
    data_url = f"data:image/png;base64,{base64.b64encode(PNG).decode()}"
    assert fake.last_body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in the picture?"},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        }
    ]


@pytest.mark.parametrize(
    "message",
    [
        Message("assistant", "look", (Attachment("image", PNG, "image/png"),)),
        Message("user", "listen", (Attachment("audio", b"...", "audio/wav"),)),
    ],
    ids=["image-on-assistant-message", "audio-in-chat"],
)
def test_inputs_no_chat_call_can_carry_are_refused_before_any_call(
    provider: OpenAIProvider, fake: FakeOpenAI, message: Message
) -> None:
    with pytest.raises(UnsupportedCapability):
        provider.chat(ChatRequest(messages=(message,), model=MODEL))
    assert fake.request_count == 0


def test_embeddings(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    vectors = provider.embed(["alpha", "beta gamma", "delta"], "text-embedding-3-small")
    assert len(vectors) == 3 and all(len(v) == 8 for v in vectors)
    assert fake.last_body["input"] == ["alpha", "beta gamma", "delta"]
    assert fake.last_body["encoding_format"] == "base64"  # the SDK's default, decoded by it
    # The fake answers out of order; the adapter puts vectors back in input order.
    assert provider.embed(["delta"], "text-embedding-3-small") == [vectors[2]]
    assert provider.embed([], "text-embedding-3-small") == []


@pytest.mark.parametrize(("model", "input_tokens"), [("whisper-1", 0), ("gpt-4o-transcribe", 50)])
def test_transcription(
    provider: OpenAIProvider, fake: FakeOpenAI, model: str, input_tokens: int
) -> None:
    audio = Attachment("audio", b"minutes of the meeting", "audio/mpeg")
    result = provider.transcribe(audio, model)
    assert result.text == "minutes of the meeting"  # the fake "hears" UTF-8 bytes
    assert (result.model, result.provider, result.input_tokens) == (model, "openai", input_tokens)
    body = fake.last_body
    assert body["model"] == model
    assert (body["file_name"], body["file_content_type"]) == ("audio.mp3", "audio/mpeg")
    assert body["file_size"] == len(audio.data)


def test_transcription_needs_audio(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    with pytest.raises(UnsupportedCapability, match="audio attachment"):
        provider.transcribe(Attachment("image", PNG, "image/png"), "whisper-1")
    assert fake.request_count == 0


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(
    ("reply", "cls", "status"),
    [
        (Reply.rate_limited(retry_after="2"), RateLimited, 429),
        (Reply.error(429, code="insufficient_quota"), ProviderAuthError, 429),
        (Reply.error(500), ProviderUnavailable, 500),
        (Reply.error(503), ProviderUnavailable, 503),
        (Reply.slow(2.0), ProviderTimeout, None),
        (Reply.malformed(), ProviderUnavailable, None),
        (Reply.error(400, message="Unrecognized request argument"), BadRequest, 400),
        (Reply.error(404, message="The model `gpt-9` does not exist"), BadRequest, 404),
        (Reply.error(422), BadRequest, 422),
        (Reply.error(403), ProviderAuthError, 403),
        (Reply.error(400, code="content_filter"), ContentFiltered, 400),
        (Reply.refusal(), ContentFiltered, None),
    ],
    ids=lambda v: v.kind + str(v.status) if isinstance(v, Reply) else None,
)
def test_failures_are_translated(
    provider: OpenAIProvider,
    fake: FakeOpenAI,
    streaming: bool,
    reply: Reply,
    cls: type[LLMError],
    status: int | None,
) -> None:
    fake.script(reply)
    started = time.perf_counter()
    with pytest.raises(cls) as caught:
        run(provider, ask(timeout_s=TIMEOUT_S), streaming)
    assert time.perf_counter() - started < 1.5  # a timeout is the request's, not the server's
    error = caught.value
    assert type(error) is cls and error.status == status and error.provider == "openai"
    assert fake.request_count == 1  # the SDK does not retry: the router does


def test_rate_limit_carries_retry_after(provider: OpenAIProvider, fake: FakeOpenAI) -> None:
    fake.script(Reply.rate_limited(retry_after="2"), Reply.rate_limited(retry_after=None))
    with pytest.raises(RateLimited) as caught:
        provider.chat(ask())
    assert caught.value.retry_after_s == 2.0 and caught.value.retryable
    with pytest.raises(RateLimited) as caught:
        provider.chat(ask())
    assert caught.value.retry_after_s is None


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (Reply.stall(2.0), ProviderTimeout),
        (Reply.truncate(), ProviderUnavailable),
        (Reply.midstream_error("server_error"), ProviderUnavailable),
        (Reply.midstream_error("rate_limit_exceeded"), RateLimited),
    ],
    ids=["stall", "truncate", "error-event", "rate-limit-event"],
)
def test_failures_part_way_through_a_stream(
    provider: OpenAIProvider, fake: FakeOpenAI, reply: Reply, cls: type[LLMError]
) -> None:
    fake.script(reply)
    received: list[StreamEvent] = []
    with pytest.raises(cls):
        for event in provider.stream(ask("one two three", timeout_s=TIMEOUT_S)):
            received.append(event)
    assert received == [StreamEvent(delta="echo:")]


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(fake: FakeOpenAI) -> None:
    wrong = "sk-proj-wrong-0123456789abcdef"
    adapter = OpenAIProvider(ProviderConfig("openai", api_key=wrong, base_url=f"{fake.url}/v1"))
    for call in (lambda: adapter.chat(ask()), lambda: list(adapter.stream(ask()))):
        with pytest.raises(ProviderAuthError) as caught:
            call()
        error = caught.value
        assert error.status == 401 and not error.retryable
        shown = "".join(traceback.format_exception(error)) + repr(error.args)
        assert wrong not in shown and "wrong-0123" not in shown
        assert "key" in error.message  # still says what to fix
    # The fake quoted the key back in full: the SDK saw it, the adapter did not pass it on.
    assert fake.request_count == 2


def test_vendor_text_quoting_the_key_is_scrubbed(
    provider: OpenAIProvider, fake: FakeOpenAI
) -> None:
    fake.script(Reply.error(400, message=f"bad request made with {fake.api_key}"))
    with pytest.raises(BadRequest) as caught:
        provider.chat(ask())
    assert fake.api_key not in str(caught.value)
    assert "bad request made with [redacted]" in str(caught.value)


def test_no_key_configured(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)  # never used behind the config's back
    adapter = OpenAIProvider(ProviderConfig("openai", base_url=f"{fake.url}/v1"))
    with pytest.raises(ProviderAuthError, match="No API key is configured"):
        adapter.chat(ask())
    assert fake.request_count == 0


def test_connection_refused() -> None:
    url = closed_port_url()
    adapter = OpenAIProvider(ProviderConfig("openai", api_key="k", base_url=f"{url}/v1"))
    for streaming in (False, True):
        with pytest.raises(ProviderUnavailable, match="Could not reach OpenAI") as caught:
            run(adapter, ask(timeout_s=TIMEOUT_S), streaming)
        assert caught.value.retryable and url in str(caught.value)


# -- OpenAI-compatible servers -----------------------------------------------------------------


def test_compatible_server(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-must-not-leak")
    fake.api_key = "not-needed"  # what the adapter sends when no key is configured
    adapter = OpenAICompatibleProvider(
        ProviderConfig("openai_compatible", base_url=f"{fake.url}/v1")
    )
    result = adapter.chat(ask(model="llama3.2", max_tokens=40, temperature=0.1))
    assert (result.text, result.provider) == ("echo: hello there", "openai_compatible")
    assert fake.last.headers["authorization"] == "Bearer not-needed"
    body = fake.last_body
    assert (body["max_tokens"], body["temperature"]) == (40, 0.1)
    assert "max_completion_tokens" not in body
    assert adapter.embed(["a"], "nomic-embed-text")[0] == pytest.approx(
        OpenAIProvider(
            ProviderConfig("openai", api_key="not-needed", base_url=f"{fake.url}/v1")
        ).embed(["a"], "text-embedding-3-small")[0]
    )
    assert fake.requests[1].body["encoding_format"] == "float"


def test_compatible_server_errors_name_the_server(fake: FakeOpenAI) -> None:
    adapter = OpenAICompatibleProvider(
        ProviderConfig("openai_compatible", api_key=fake.api_key, base_url=f"{fake.url}/v1")
    )
    fake.script(Reply.error(502))
    with pytest.raises(ProviderUnavailable, match="OpenAI-compatible server"):
        adapter.chat(ask(model="llama3.2"))


def test_compatible_server_needs_a_base_url() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        OpenAICompatibleProvider(ProviderConfig("openai_compatible"))


# -- capabilities ------------------------------------------------------------------------------

T, V = Capability.TEXT, Capability.VISION


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", {T, V}),
        ("gpt-4o-2024-08-06", {T, V}),
        ("gpt-4.1-nano", {T, V}),
        ("gpt-5", {T, V}),
        ("gpt-5.1-mini", {T, V}),
        ("o3", {T, V}),
        ("o4-mini", {T, V}),
        ("ft:gpt-4o-mini:acme::abc123", {T, V}),
        ("o1-mini", {T}),
        ("o3-mini", {T}),
        ("gpt-3.5-turbo", {T}),
        ("some-future-model", {T}),
        ("whisper-1", {T, Capability.AUDIO_TRANSCRIPTION}),
        ("gpt-4o-transcribe", {T, Capability.AUDIO_TRANSCRIPTION}),
        ("gpt-4o-mini-transcribe", {T, Capability.AUDIO_TRANSCRIPTION}),
        ("text-embedding-3-large", {T, Capability.EMBEDDINGS}),
        ("gpt-image-1", {T, Capability.IMAGE_GENERATION}),
        ("dall-e-3", {T, Capability.IMAGE_GENERATION}),
    ],
)
def test_openai_capabilities(
    adapter: OpenAIProvider, model: str, expected: set[Capability]
) -> None:
    assert adapter.capabilities(model) == expected


def test_compatible_capabilities_come_from_the_config() -> None:
    url = "http://localhost:11434/v1"
    plain = OpenAICompatibleProvider(ProviderConfig("openai_compatible", base_url=url))
    assert plain.capabilities("llava") == {T}
    assert plain.capabilities("gpt-4o") == {T}  # a local server's names mean nothing
    rich = OpenAICompatibleProvider(
        ProviderConfig("openai_compatible", base_url=url, extra={"capabilities": "vision"})
    )
    assert rich.capabilities("llava") == {T, V}
    with pytest.raises(ConfigurationError, match="Unknown capabilities"):
        OpenAICompatibleProvider(
            ProviderConfig("openai_compatible", base_url=url, extra={"capabilities": "smell"})
        )
