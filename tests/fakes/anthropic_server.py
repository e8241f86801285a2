"""A local server that speaks the Anthropic Messages wire format, for driving the real SDK.

POST /v1/messages answers with a JSON `message`, or with the SSE event sequence message_start,
content_block_start, ping, content_block_delta..., content_block_stop, message_delta (stop
reason and usage), message_stop. GET /v1/models lists a few models. The answer echoes the last
user message ("echo: <text>"); behaviour is scripted with `Reply` (see `tests/fakes/server.py`).

    python -m tests.fakes.anthropic_server --port 8012 --latency-ms 20
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.fakes.server import (
    FakeProvider,
    Reply,
    count_tokens,
    echo_answer,
    run_standalone,
    shape_answer,
    split_for_stream,
)

MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-8")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
STOP_REASONS = {"end": "end_turn", "stop_sequence": "stop_sequence", "max_tokens": "max_tokens"}
_ids = itertools.count(1)


def _error(status: int, error_type: str, message: str, headers: dict[str, str]) -> Response:
    request_id = f"req_fake_{next(_ids)}"
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=status, headers={"request-id": request_id, **headers})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return ""


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


class FakeAnthropic(FakeProvider):
    """`with FakeAnthropic() as fake: Anthropic(base_url=fake.url, api_key=fake.api_key)`."""

    def __init__(self, api_key: str = "sk-ant-test-fake-key", *, latency_s: float = 0.0):
        super().__init__(api_key, latency_s=latency_s)

    def app(self) -> ASGIApp:
        return Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _admit(self, request: Request, body: dict[str, Any]) -> tuple[Reply, Response | None]:
        await self.pause(self.latency_s)
        self.record(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        reply = self.next_reply()
        # SDK 2.x sends the key as a bearer token; older clients and curl use x-api-key.
        keys = {request.headers.get("x-api-key"), request.headers.get("authorization")}
        if self.api_key not in keys and f"Bearer {self.api_key}" not in keys:
            return reply, _error(401, "authentication_error", "invalid x-api-key", {})
        if "anthropic-version" not in request.headers:
            return reply, _error(400, "invalid_request_error", "anthropic-version is required", {})
        if reply.kind == "error":
            error_type = reply.error_type or ERROR_TYPES.get(reply.status, "api_error")
            return reply, _error(reply.status, error_type, reply.message, dict(reply.headers))
        if reply.kind == "slow":
            await self.pause(reply.delay_s)
        if reply.kind == "malformed" and not body.get("stream"):
            return reply, Response(
                '{"type": "message", "content": [', media_type="application/json"
            )
        return reply, None

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        reply, early = await self._admit(request, body)
        if early is not None:
            return early
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        answer = (
            reply.text
            if reply.text is not None
            else echo_answer(_text_of(users[-1]["content"]) if users else "")
        )
        shaped = shape_answer(
            answer, max_tokens=body.get("max_tokens"), stop=list(body.get("stop_sequences") or [])
        )
        stop_reason = STOP_REASONS[shaped.ended_by]
        system = body.get("system") or ""
        usage = {
            "input_tokens": count_tokens(_text_of(system))
            + sum(count_tokens(_text_of(m.get("content"))) for m in messages),
            "output_tokens": count_tokens(shaped.text),
        }
        message = {
            "id": f"msg_fake_{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": [{"type": "text", "text": shaped.text}],
            "stop_reason": stop_reason,
            "stop_sequence": shaped.stop_sequence,
            "usage": usage,
        }
        if reply.kind == "refusal":
            message.update(content=[], stop_reason="refusal", stop_sequence=None)
        if body.get("stream"):
            return StreamingResponse(self._events(message, reply), media_type="text/event-stream")
        return JSONResponse(message)

    async def _events(self, message: dict[str, Any], reply: Reply) -> AsyncIterator[str]:
        if reply.kind == "malformed":
            yield "event: message_start\ndata: {not json\n\n"
            return
        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
        }
        yield _sse("message_start", {"type": "message_start", "message": start})
        text = message["content"][0]["text"] if message["content"] else ""
        if message["stop_reason"] == "refusal":
            text = "I can help with part of"  # streamed before the classifier stops the answer
        block = {"type": "text", "text": ""}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        yield _sse("ping", {"type": "ping"})
        for index, piece in enumerate(split_for_stream(text)):
            delta = {"type": "text_delta", "text": piece}
            yield _sse(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
            if index == 0 and reply.kind == "truncate":
                return
            if index == 0 and reply.kind == "stall":
                await self.pause(reply.delay_s)
            if index == 0 and reply.kind == "midstream_error":
                error = {"type": reply.error_type, "message": reply.message}
                yield _sse("error", {"type": "error", "error": error})
                return
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
        yield _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": delta,
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        yield _sse("message_stop", {"type": "message_stop"})

    async def _models(self, request: Request) -> Response:
        _reply, early = await self._admit(request, {})
        if early is not None:
            return early
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
            for m in MODELS
        ]
        return JSONResponse(
            {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
        )


def main() -> None:  # pragma: no cover - manual / benchmark use
    parser = argparse.ArgumentParser(description="Fake Anthropic Messages API server")
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default="sk-ant-test-fake-key")
    args = parser.parse_args()
    run_standalone(FakeAnthropic(args.api_key, latency_s=args.latency_ms / 1000), args.port)


if __name__ == "__main__":
    main()
