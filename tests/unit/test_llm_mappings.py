"""The adapters' pure mapping: requests to SDK arguments, SDK objects to results, and vendor
exceptions, statuses and Retry-After headers to the core error classes. No server, no network."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import (
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    RawMessageStreamEvent,
)
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from core.errors import ConfigurationError
from core.llm.errors import (
    BadRequest,
    ContentFiltered,
    LLMError,
    ProviderAuthError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from core.llm.providers import anthropic_mapping, openai_mapping
from core.llm.providers.http_mapping import (
    CallContext,
    capabilities_setting,
    detail,
    error_for_status,
    flag_setting,
    parse_retry_after,
    safe_url,
    scrub,
    timeout_setting,
)
from core.llm.types import Attachment, Capability, ChatRequest, Message

KEY = "sk-unit-test-secret-key-0123456789"
CTX = CallContext(
    provider="openai",
    label="OpenAI",
    model="gpt-4o-mini",
    base_url="https://api.openai.com/v1",
    timeout_s=5.0,
    secrets=(KEY,),
)
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\nfake-image"


# -- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after": " 0 "}, 0.0),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "Thu, 26 Nov 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Thu, 26 Nov 2026 11:59:00 GMT"}, 0.0),  # already past
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "junk"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_retry_after_reads_sdk_headers_case_insensitively() -> None:
    headers = httpx2.Headers({"Retry-After": "Thu, 26 Nov 2026 12:01:00 GMT"})
    assert parse_retry_after(headers, now=NOW) == 60.0


# -- secrets and details -----------------------------------------------------------------------


def test_scrub_removes_the_key_and_key_shaped_text() -> None:
    text = f"key {KEY} or sk-abc***wxyz, header Bearer abc.def, plain words stay"
    cleaned = scrub(text, (KEY,))
    assert KEY not in cleaned
    assert "sk-abc" not in cleaned and "abc.def" not in cleaned
    assert cleaned.endswith("plain words stay")


def test_detail_is_one_short_line() -> None:
    text = "line one\n  line two " + "x" * 500
    shown = detail(text, CTX)
    assert "\n" not in shown and len(shown) <= 240 and shown.startswith("line one line two")
    assert detail(None, CTX) == "" and detail("   ", CTX) == ""


def test_call_context_repr_hides_the_key() -> None:
    assert KEY not in repr(CTX) and "gpt-4o-mini" in repr(CTX)


def test_safe_url_drops_credentials_and_query() -> None:
    assert safe_url("http://user:pw@localhost:11434/v1?token=x#f") == "http://localhost:11434/v1"
    assert safe_url("not a url") == "the configured base URL"


# -- statuses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequest),
        (401, ProviderAuthError),
        (402, ProviderAuthError),
        (403, ProviderAuthError),
        (404, BadRequest),
        (408, ProviderTimeout),
        (409, ProviderUnavailable),
        (413, BadRequest),
        (422, BadRequest),
        (429, RateLimited),
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (503, ProviderUnavailable),
        (504, ProviderTimeout),
        (529, ProviderUnavailable),
    ],
)
def test_error_for_status(status: int, cls: type[LLMError]) -> None:
    error = error_for_status(status, CTX, vendor_detail="why", request_id="req_1")
    assert type(error) is cls
    assert error.status == status and error.provider == "openai"
    assert "req_1" in str(error)


def test_rate_limited_carries_retry_after() -> None:
    error = error_for_status(429, CTX, retry_after_s=2.5)
    assert isinstance(error, RateLimited) and error.retry_after_s == 2.5 and error.retryable
    assert "2.5 s" in str(error)


def test_auth_error_never_repeats_the_vendor_text() -> None:
    error = error_for_status(401, CTX, vendor_detail=f"Incorrect API key provided: {KEY}")
    assert KEY not in str(error) and "Incorrect" not in str(error)


# -- finish reasons ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        (None, "unknown"),
        ("something_new", "unknown"),
    ],
)
def test_openai_finish_reasons(raw: str | None, expected: str) -> None:
    assert openai_mapping.map_finish_reason(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "unknown"),
        (None, "unknown"),
    ],
)
def test_anthropic_stop_reasons(raw: str | None, expected: str) -> None:
    assert anthropic_mapping.map_stop_reason(raw) == expected


# -- OpenAI requests ---------------------------------------------------------------------------


def _request(model: str = "gpt-4o-mini", **params: object) -> ChatRequest:
    return ChatRequest.simple("hello", system="be brief", model=model, **params)


def test_openai_kwargs() -> None:
    kwargs = openai_mapping.chat_kwargs(
        _request(temperature=0.2, max_tokens=64, stop=("END",)), compatible=False
    )
    assert kwargs == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
        ],
        "max_completion_tokens": 64,
        "temperature": 0.2,
        "stop": ["END"],
    }


def test_openai_reasoning_models_get_no_temperature() -> None:
    kwargs = openai_mapping.chat_kwargs(_request("o4-mini"), compatible=False)
    assert "temperature" not in kwargs and kwargs["max_completion_tokens"] == 256


def test_compatible_servers_get_classic_parameters() -> None:
    kwargs = openai_mapping.chat_kwargs(_request("o4-mini", max_tokens=10), compatible=True)
    assert kwargs["max_tokens"] == 10 and kwargs["temperature"] == 0.7
    assert "max_completion_tokens" not in kwargs and "stop" not in kwargs


def test_openai_image_becomes_a_data_url_part() -> None:
    message = Message("user", "what is this?", (Attachment("image", PNG, "image/png"),))
    wire = openai_mapping.to_wire_message(message)
    data = base64.b64encode(PNG).decode()
    assert wire["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
    ]


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("", "audio/mpeg", "audio.mp3"),
        ("meeting", "audio/x-wav", "meeting.wav"),
        ("call.m4a", "audio/mp4", "call.m4a"),
        ("clip", "audio/unknown", "clip.wav"),
    ],
)
def test_transcription_file_name_carries_the_format(name: str, mime: str, expected: str) -> None:
    file_name, data, content_type = openai_mapping.audio_file(Attachment("audio", b"x", mime, name))
    assert (file_name, data, content_type) == (expected, b"x", mime)


# -- OpenAI responses --------------------------------------------------------------------------


def _completion(content: str | None, finish: str, refusal: str | None = None) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
    )


def test_openai_chat_result() -> None:
    result = openai_mapping.chat_result(_completion("hi", "length"), CTX, latency_ms=12.5)
    assert (result.text, result.finish_reason, result.model) == (
        "hi",
        "length",
        "gpt-4o-mini-2024-07-18",
    )
    assert (result.input_tokens, result.output_tokens, result.latency_ms) == (11, 7, 12.5)
    assert result.provider == "openai" and result.cost_micros == 0


@pytest.mark.parametrize(
    "completion",
    [_completion(None, "content_filter"), _completion(None, "stop", refusal="I can't help.")],
)
def test_openai_filtered_answers_raise(completion: ChatCompletion) -> None:
    with pytest.raises(ContentFiltered):
        openai_mapping.chat_result(completion, CTX, latency_ms=1)


def test_openai_completion_without_choices_is_malformed() -> None:
    completion = ChatCompletion.model_construct(
        id="c", choices=[], model="m", created=0, object="chat.completion"
    )
    with pytest.raises(ProviderUnavailable, match="no choices"):
        openai_mapping.chat_result(completion, CTX, latency_ms=1)


def _chunk(
    content: str | None = None, finish: str | None = None, usage: bool = False
) -> ChatCompletionChunk:
    choices = (
        [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    )
    data = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": choices,
    }
    if usage:
        data["usage"] = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return ChatCompletionChunk.model_validate(data)


def test_openai_stream_accumulator() -> None:
    acc = openai_mapping.StreamAccumulator(CTX)
    deltas = [
        acc.add(c) for c in (_chunk("he"), _chunk("llo"), _chunk(finish="stop"), _chunk(usage=True))
    ]
    assert deltas == ["he", "llo", "", ""]
    result = acc.result(latency_ms=3)
    assert (result.text, result.input_tokens, result.output_tokens) == ("hello", 3, 2)


def test_openai_stream_without_finish_is_incomplete() -> None:
    acc = openai_mapping.StreamAccumulator(CTX)
    acc.add(_chunk("he"))
    with pytest.raises(ProviderUnavailable, match="part-way"):
        acc.result(latency_ms=3)


# -- OpenAI errors -----------------------------------------------------------------------------

_REQ = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")


def _response(status: int, body: Mapping[str, object], **headers: str) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers, request=_REQ)


def _openai_status(
    cls: type[openai.APIStatusError], status: int, code: str = "", message: str = "", **headers: str
) -> openai.APIStatusError:
    body = {"error": {"message": message, "type": "x", "param": None, "code": code or None}}
    return cls(
        f"Error code: {status} - {body}",
        response=_response(status, body, **headers),
        body=body["error"],
    )


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (openai.APITimeoutError(request=_REQ), ProviderTimeout),
        (openai.APIConnectionError(request=_REQ), ProviderUnavailable),
        (_openai_status(openai.RateLimitError, 429, **{"retry-after": "4"}), RateLimited),
        (_openai_status(openai.RateLimitError, 429, code="insufficient_quota"), ProviderAuthError),
        (_openai_status(openai.BadRequestError, 400, code="content_filter"), ContentFiltered),
        (_openai_status(openai.BadRequestError, 400, code="context_length_exceeded"), BadRequest),
        (_openai_status(openai.NotFoundError, 404, code="model_not_found"), BadRequest),
        (_openai_status(openai.UnprocessableEntityError, 422), BadRequest),
        (_openai_status(openai.PermissionDeniedError, 403), ProviderAuthError),
        (_openai_status(openai.InternalServerError, 503), ProviderUnavailable),
        (
            openai.APIError("boom", _REQ, body={"message": "boom", "type": "server_error"}),
            ProviderUnavailable,
        ),
        (
            openai.APIError("slow", _REQ, body={"message": "slow", "code": "rate_limit_exceeded"}),
            RateLimited,
        ),
        (json.JSONDecodeError("Expecting value", "{", 1), ProviderUnavailable),
        (httpx2.ReadTimeout("timed out", request=_REQ), ProviderTimeout),
        (httpx2.RemoteProtocolError("peer closed", request=_REQ), ProviderUnavailable),
        (openai.OpenAIError("something else"), ProviderUnavailable),
    ],
)
def test_openai_errors(exc: Exception, cls: type[LLMError]) -> None:
    error = openai_mapping.translate_error(exc, CTX)
    assert type(error) is cls
    assert error.provider == "openai"


def test_openai_rate_limit_keeps_retry_after_and_status() -> None:
    exc = _openai_status(openai.RateLimitError, 429, **{"retry-after-ms": "250"})
    error = openai_mapping.translate_error(exc, CTX)
    assert isinstance(error, RateLimited) and error.retry_after_s == 0.25 and error.status == 429


def test_openai_error_text_never_carries_the_key() -> None:
    exc = _openai_status(
        openai.AuthenticationError, 401, message=f"Incorrect API key provided: {KEY}"
    )
    assert KEY not in str(openai_mapping.translate_error(exc, CTX))
    exc = _openai_status(openai.BadRequestError, 400, message=f"bad key {KEY} in request")
    error = openai_mapping.translate_error(exc, CTX)
    assert KEY not in str(error) and "bad key [redacted]" in str(error)


# -- Anthropic requests ------------------------------------------------------------------------


def test_anthropic_kwargs() -> None:
    request = ChatRequest(
        messages=(
            Message("system", "be brief"),
            Message("system", "answer in English"),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("user", "again"),
        ),
        model="claude-sonnet-4-6",
        max_tokens=50,
        stop=("END",),
    )
    kwargs = anthropic_mapping.message_kwargs(request, send_temperature=False, provider="anthropic")
    assert kwargs == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 50,
        "system": "be brief\n\nanswer in English",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "stop_sequences": ["END"],
    }


def test_anthropic_temperature_only_on_request_and_clamped() -> None:
    request = _request("claude-sonnet-4-6", temperature=1.5)
    kwargs = anthropic_mapping.message_kwargs(request, send_temperature=True, provider="anthropic")
    assert kwargs["extra_body"] == {"temperature": 1.0}


def test_anthropic_image_block_comes_before_the_text() -> None:
    message = Message("user", "what is this?", (Attachment("image", PNG, "image/png"),))
    wire = anthropic_mapping.to_wire_message(message, "anthropic")
    data = base64.b64encode(PNG).decode()
    assert wire["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "text", "text": "what is this?"},
    ]


def test_anthropic_needs_a_turn_besides_the_system_prompt() -> None:
    request = ChatRequest(messages=(Message("system", "be brief"),), model="claude-sonnet-4-6")
    with pytest.raises(BadRequest, match="at least one user message"):
        anthropic_mapping.message_kwargs(request, send_temperature=False, provider="anthropic")


# -- Anthropic responses and errors ------------------------------------------------------------

ACTX = CallContext(
    "anthropic", "Anthropic", "claude-sonnet-4-6", "https://api.anthropic.com", 5.0, (KEY,)
)


def test_anthropic_stream_accumulator_counts_cached_input() -> None:
    acc = anthropic_mapping.StreamAccumulator(ACTX)
    usage = {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 100}
    events: list[RawMessageStreamEvent] = [
        RawMessageStartEvent.model_validate(
            {
                "type": "message_start",
                "message": {
                    "id": "m",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-sonnet-4-6",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            }
        ),
        RawContentBlockDeltaEvent.model_validate(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "hi"},
            }
        ),
        RawMessageDeltaEvent.model_validate(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens"},
                "usage": {"output_tokens": 9},
            }
        ),
        RawMessageStopEvent.model_validate({"type": "message_stop"}),
    ]
    assert [acc.add(e) for e in events] == ["", "hi", "", ""]
    result = acc.result(latency_ms=1)
    assert (result.text, result.finish_reason) == ("hi", "length")
    assert (result.input_tokens, result.output_tokens) == (105, 9)


_AREQ = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


def _anthropic_status(status: int, error_type: str, **headers: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": error_type, "message": f"{error_type} happened"}}
    response = httpx2.Response(status, json=body, headers=headers, request=_AREQ)
    return anthropic.APIStatusError(f"{body}", response=response, body=body)


@pytest.mark.parametrize(
    ("exc", "cls", "status"),
    [
        (_anthropic_status(429, "rate_limit_error", **{"retry-after": "7"}), RateLimited, 429),
        (_anthropic_status(529, "overloaded_error"), ProviderUnavailable, 529),
        (_anthropic_status(400, "invalid_request_error"), BadRequest, 400),
        (_anthropic_status(401, "authentication_error"), ProviderAuthError, 401),
        (_anthropic_status(402, "billing_error"), ProviderAuthError, 402),
        # An `error` event in the middle of an HTTP 200 stream: the type decides.
        (_anthropic_status(200, "overloaded_error"), ProviderUnavailable, 529),
        (_anthropic_status(200, "rate_limit_error"), RateLimited, 429),
        (_anthropic_status(200, "something_new"), ProviderUnavailable, 500),
        (anthropic.APITimeoutError(request=_AREQ), ProviderTimeout, None),
        (anthropic.APIConnectionError(request=_AREQ), ProviderUnavailable, None),
        (httpx2.ReadTimeout("timed out", request=_AREQ), ProviderTimeout, None),
        (json.JSONDecodeError("Expecting value", "{", 1), ProviderUnavailable, None),
    ],
)
def test_anthropic_errors(exc: Exception, cls: type[LLMError], status: int | None) -> None:
    error = anthropic_mapping.translate_error(exc, ACTX)
    assert type(error) is cls
    assert error.status == status and error.provider == "anthropic"


def test_anthropic_retry_after() -> None:
    exc = _anthropic_status(429, "rate_limit_error", **{"retry-after": "7"})
    error = anthropic_mapping.translate_error(exc, ACTX)
    assert isinstance(error, RateLimited) and error.retry_after_s == 7.0


# -- capabilities and settings -----------------------------------------------------------------


def test_settings_are_validated() -> None:
    assert timeout_setting({}, "openai") == 60.0
    assert timeout_setting({"timeout_s": "12.5"}, "openai") == 12.5
    with pytest.raises(ConfigurationError, match="timeout_s"):
        timeout_setting({"timeout_s": "0"}, "openai")
    assert flag_setting({"send_temperature": "Yes"}, "send_temperature", "anthropic") is True
    assert flag_setting({}, "send_temperature", "anthropic") is False
    with pytest.raises(ConfigurationError, match="true or false"):
        flag_setting({"send_temperature": "maybe"}, "send_temperature", "anthropic")
    assert capabilities_setting({"capabilities": "Vision, embeddings"}, "x") == {
        Capability.VISION,
        Capability.EMBEDDINGS,
    }
    with pytest.raises(ConfigurationError, match="Valid capabilities: audio_transcription"):
        capabilities_setting({"capabilities": "telepathy"}, "x")
