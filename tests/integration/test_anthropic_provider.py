"""The Anthropic adapter drives the real `anthropic` SDK against a local server speaking the
Messages wire format: what reaches the wire, what comes back, and how each failure is translated."""

from __future__ import annotations

import base64
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

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
from core.llm.providers.anthropic_provider import AnthropicProvider
from core.llm.types import (
    Attachment,
    Capability,
    ChatProvider,
    ChatRequest,
    ChatResult,
    Message,
    ProviderConfig,
    StreamEvent,
)
from tests.fakes import FakeAnthropic, Reply, closed_port_url

MODEL = "claude-sonnet-4-6"
TIMEOUT_S = 0.3
PNG = b"\x89PNG\r\n\x1a\nnot-really-a-png"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


def adapter_for(fake: FakeAnthropic, **extra: str) -> AnthropicProvider:
    return AnthropicProvider(
        ProviderConfig("anthropic", api_key=fake.api_key, base_url=fake.url, extra=extra)
    )


@pytest.fixture(scope="module")
def adapter(server: FakeAnthropic) -> Iterator[AnthropicProvider]:
    """One adapter for the module: it keeps no state between calls, and building a client
    (TLS trust store included) costs tens of milliseconds."""
    adapter = adapter_for(server)
    yield adapter
    adapter.close()


@pytest.fixture
def provider(adapter: AnthropicProvider, fake: FakeAnthropic) -> AnthropicProvider:
    return adapter


def ask(prompt: str = "hello there", **params: Any) -> ChatRequest:
    params.setdefault("model", MODEL)
    return ChatRequest.simple(prompt, **params)


def run(provider: ChatProvider, request: ChatRequest, streaming: bool) -> ChatResult:
    if not streaming:
        return provider.chat(request)
    events = list(provider.stream(request))
    assert events[-1].result is not None
    return events[-1].result


# -- the happy path ----------------------------------------------------------------------------


def test_registry_builds_the_adapter() -> None:
    adapter = make_provider(ProviderConfig("anthropic", api_key="k"))
    assert isinstance(adapter, AnthropicProvider) and adapter.name == "anthropic"


def test_chat(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    result = provider.chat(ask("hello there", system="be brief"))
    assert result.text == "echo: hello there"
    assert (result.model, result.provider, result.finish_reason) == (MODEL, "anthropic", "stop")
    assert (result.input_tokens, result.output_tokens) == (4, 3)  # the fake counts words
    assert result.latency_ms > 0 and result.cost_micros == 0
    # SDK 2.x sends the key as a bearer token, with the API version it speaks.
    assert fake.last.headers["authorization"] == f"Bearer {fake.api_key}"
    assert fake.last.headers["anthropic-version"]


def test_parameters_reach_the_wire(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
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
    assert (body["model"], body["max_tokens"], body["system"]) == (MODEL, 77, "be brief")
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    assert body["stop_sequences"] == ["END", "STOP"]
    # The 2.x SDK dropped sampling parameters (current models refuse them): none by default.
    assert "temperature" not in body and not body.get("stream")


def test_temperature_for_models_that_still_take_it(fake: FakeAnthropic) -> None:
    adapter = adapter_for(fake, send_temperature="true")
    adapter.chat(ask(temperature=0.2))
    assert fake.last_body["temperature"] == 0.2
    adapter.chat(ask(temperature=1.8))
    assert fake.last_body["temperature"] == 1.0  # Anthropic's range ends at 1


@pytest.mark.parametrize(
    ("params", "text", "finish"),
    [
        ({"max_tokens": 3}, "one two three", "length"),
        ({"stop": ("three",)}, "one two ", "stop"),
    ],
)
def test_how_the_answer_ended(
    provider: AnthropicProvider,
    fake: FakeAnthropic,
    params: dict[str, Any],
    text: str,
    finish: str,
) -> None:
    fake.script(Reply.ok("one two three four five"), Reply.ok("one two three four five"))
    for streaming in (False, True):
        result = run(provider, ask(**params), streaming)
        assert (result.text, result.finish_reason) == (text, finish)


def test_stream(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = list(provider.stream(ask("tell me a story", system="be brief")))
    deltas = [e.delta for e in events[:-1]]
    assert len(deltas) > 1 and all(deltas) and all(e.result is None for e in events[:-1])
    final = events[-1].result
    assert final is not None
    assert "".join(deltas) == final.text == "echo: tell me a story"
    assert (final.input_tokens, final.output_tokens) == (6, 5)
    assert final.finish_reason == "stop" and final.model == MODEL and final.latency_ms > 0
    assert fake.last_body["stream"] is True and fake.last_body["system"] == "be brief"


def test_stream_closed_early_leaves_the_adapter_usable(provider: AnthropicProvider) -> None:
    stream = provider.stream(ask("one two three four"))
    assert next(stream) == StreamEvent(delta="echo:")
    stream.close()
    assert provider.chat(ask("still there")).text == "echo: still there"


def test_image_reaches_the_wire_as_a_base64_image_block(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    message = Message("user", "what is in the picture?", (Attachment("image", PNG, "image/png"),))
    result = provider.chat(ChatRequest(messages=(message,), model=MODEL))
    assert result.text == "echo: what is in the picture?"
    assert fake.last_body["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {
                        "type": "base64",
                        "media_type": "image/png",
                        "data": base64.b64encode(PNG).decode(),
                    },
                },
                {"type": "text", "text": "what is in the picture?"},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("request_", "cls"),
    [
        (
            ChatRequest(
                messages=(Message("user", "x", (Attachment("image", PNG, "image/bmp"),)),),
                model=MODEL,
            ),
            UnsupportedCapability,
        ),
        (
            ChatRequest(
                messages=(
                    Message("user", "x"),
                    Message("assistant", "y", (Attachment("image", PNG, "image/png"),)),
                ),
                model=MODEL,
            ),
            UnsupportedCapability,
        ),
        (
            ChatRequest(
                messages=(Message("user", "x", (Attachment("audio", b"..", "audio/wav"),)),),
                model=MODEL,
            ),
            UnsupportedCapability,
        ),
        (
            ChatRequest(messages=(Message("system", "only a system prompt"),), model=MODEL),
            BadRequest,
        ),
        (ChatRequest.simple("no model"), BadRequest),
    ],
    ids=["bmp", "image-on-assistant-message", "audio", "system-only", "no-model"],
)
def test_requests_refused_before_any_call(
    provider: AnthropicProvider, fake: FakeAnthropic, request_: ChatRequest, cls: type[LLMError]
) -> None:
    with pytest.raises(cls):
        provider.chat(request_)
    assert fake.request_count == 0


def test_no_embeddings_or_transcription(provider: AnthropicProvider) -> None:
    with pytest.raises(UnsupportedCapability, match="no embeddings API"):
        provider.embed(["x"], MODEL)
    with pytest.raises(UnsupportedCapability, match="no speech-to-text API"):
        provider.transcribe(Attachment("audio", b"x", "audio/wav"), MODEL)


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize(
    ("reply", "cls", "status"),
    [
        (Reply.rate_limited(retry_after="2"), RateLimited, 429),
        (Reply.error(500), ProviderUnavailable, 500),
        (Reply.error(529), ProviderUnavailable, 529),
        (Reply.slow(2.0), ProviderTimeout, None),
        (Reply.malformed(), ProviderUnavailable, None),
        (Reply.error(400, message="prompt is too long"), BadRequest, 400),
        (Reply.error(404, message="model: claude-nope"), BadRequest, 404),
        (Reply.error(413), BadRequest, 413),
        (Reply.error(402), ProviderAuthError, 402),
        (Reply.error(403), ProviderAuthError, 403),
        (Reply.refusal(), ContentFiltered, None),
    ],
    ids=lambda v: v.kind + str(v.status) if isinstance(v, Reply) else None,
)
def test_failures_are_translated(
    provider: AnthropicProvider,
    fake: FakeAnthropic,
    streaming: bool,
    reply: Reply,
    cls: type[LLMError],
    status: int | None,
) -> None:
    fake.script(reply)
    started = time.perf_counter()
    with pytest.raises(cls) as caught:
        run(provider, ask(timeout_s=TIMEOUT_S), streaming)
    assert time.perf_counter() - started < 1.5
    error = caught.value
    assert type(error) is cls and error.status == status and error.provider == "anthropic"
    assert fake.request_count == 1  # the SDK does not retry: the router does


def test_rate_limit_carries_retry_after(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    fake.script(Reply.rate_limited(retry_after="2"))
    with pytest.raises(RateLimited) as caught:
        provider.chat(ask())
    assert caught.value.retry_after_s == 2.0 and caught.value.retryable
    assert "request id req_fake_" in caught.value.message  # for a support ticket


@pytest.mark.parametrize(
    ("reply", "cls", "received"),
    [
        (Reply.stall(2.0), ProviderTimeout, ["echo:"]),
        (Reply.truncate(), ProviderUnavailable, ["echo:"]),
        (Reply.midstream_error("overloaded_error"), ProviderUnavailable, ["echo:"]),
        (Reply.midstream_error("rate_limit_error"), RateLimited, ["echo:"]),
        # A streamed refusal: part of an answer, then the safety stop. Callers must drop it.
        (Reply.refusal(), ContentFiltered, ["I", " can", " help", " with", " part", " of"]),
    ],
    ids=["stall", "truncate", "overloaded-event", "rate-limit-event", "refusal"],
)
def test_failures_part_way_through_a_stream(
    provider: AnthropicProvider,
    fake: FakeAnthropic,
    reply: Reply,
    cls: type[LLMError],
    received: list[str],
) -> None:
    fake.script(reply)
    deltas: list[str] = []
    with pytest.raises(cls):
        for event in provider.stream(ask("one two three", timeout_s=TIMEOUT_S)):
            deltas.append(event.delta)
    assert deltas == received


def test_overloaded_event_mid_stream_reads_as_529(
    provider: AnthropicProvider, fake: FakeAnthropic
) -> None:
    fake.script(Reply.midstream_error("overloaded_error"))
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.stream(ask()))
    assert caught.value.status == 529 and caught.value.retryable


def test_wrong_key_is_an_auth_error_that_never_shows_the_key(fake: FakeAnthropic) -> None:
    wrong = "sk-ant-api03-wrong-0123456789abcdef"
    adapter = AnthropicProvider(ProviderConfig("anthropic", api_key=wrong, base_url=fake.url))
    for call in (lambda: adapter.chat(ask()), lambda: list(adapter.stream(ask()))):
        with pytest.raises(ProviderAuthError) as caught:
            call()
        error = caught.value
        assert error.status == 401 and not error.retryable
        shown = "".join(traceback.format_exception(error)) + repr(error.args)
        assert wrong not in shown and "wrong-0123" not in shown


def test_no_key_configured(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake.api_key)  # never used behind the config's back
    adapter = AnthropicProvider(ProviderConfig("anthropic", base_url=fake.url))
    with pytest.raises(ProviderAuthError, match="No API key is configured for Anthropic"):
        adapter.chat(ask())
    assert fake.request_count == 0


def test_connection_refused() -> None:
    url = closed_port_url()
    adapter = AnthropicProvider(ProviderConfig("anthropic", api_key="k", base_url=url))
    for streaming in (False, True):
        with pytest.raises(ProviderUnavailable, match="Could not reach Anthropic") as caught:
            run(adapter, ask(timeout_s=TIMEOUT_S), streaming)
        assert caught.value.retryable and url in str(caught.value)


# -- capabilities ------------------------------------------------------------------------------

T, V = Capability.TEXT, Capability.VISION


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4-6", {T, V}),
        ("claude-opus-4-8", {T, V}),
        ("claude-haiku-4-5-20251001", {T, V}),
        ("claude-3-5-sonnet-20241022", {T, V}),
        ("claude-3-haiku-20240307", {T, V}),
        ("claude-2.1", {T}),
        ("claude-instant-1.2", {T}),
    ],
)
def test_capabilities(adapter: AnthropicProvider, model: str, expected: set[Capability]) -> None:
    assert adapter.capabilities(model) == expected
