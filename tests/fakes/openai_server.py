"""A local server that speaks the OpenAI REST wire format, for driving the real `openai` SDK.

Endpoints: POST /v1/chat/completions (JSON, or SSE `data:` chunks ending in `data: [DONE]`, with a
usage chunk when `stream_options.include_usage`), POST /v1/embeddings (float or base64),
POST /v1/audio/transcriptions (multipart), GET /v1/models. The answer echoes the last user
message ("echo: <text>"); behaviour is scripted with `Reply` (see `tests/fakes/server.py`).

Standalone, for benchmarks (any OpenAI-compatible client can point at it):

    python -m tests.fakes.openai_server --port 8011 --latency-ms 20 --api-key bench-key
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import struct
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from core.clock import epoch_seconds  # the world of the tests runs on the console's (pinned) clock
from tests.fakes.server import (
    FakeProvider,
    Reply,
    count_tokens,
    echo_answer,
    run_standalone,
    shape_answer,
    split_for_stream,
)

MODELS = ("gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "whisper-1", "gpt-4o-transcribe")
DEFAULT_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
FINISH = {"end": "stop", "stop_sequence": "stop", "max_tokens": "length"}
_ids = itertools.count(1)


def _error_body(status: int, reply: Reply) -> dict[str, Any]:
    default_type, default_code = DEFAULT_ERROR_TYPES.get(status, ("server_error", None))
    return {
        "error": {
            "message": reply.message,
            "type": reply.error_type or default_type,
            "param": None,
            "code": reply.code or default_code,
        }
    }


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _embedding(text: str, dimensions: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = (digest * (dimensions // len(digest) + 1))[:dimensions]
    return [(b - 127.5) / 127.5 for b in raw]


class FakeOpenAI(FakeProvider):
    """`with FakeOpenAI() as fake: OpenAI(base_url=f"{fake.url}/v1", api_key=fake.api_key)`."""

    def __init__(self, api_key: str = "sk-test-fake-openai-key", *, latency_s: float = 0.0):
        super().__init__(api_key, latency_s=latency_s)

    def app(self) -> ASGIApp:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- shared request handling -------------------------------------------------------------

    async def _admit(self, request: Request, body: dict[str, Any]) -> tuple[Reply, Response | None]:
        """Record the request, apply latency and auth; return the reply and any early response."""
        await self.pause(self.latency_s)
        self.record(request.url.path, {k.lower(): v for k, v in request.headers.items()}, body)
        reply = self.next_reply()
        authorization = request.headers.get("authorization", "")
        if authorization != f"Bearer {self.api_key}":
            # The real service quotes (part of) the wrong key back; quote all of it, so the
            # tests prove the adapters never pass it on.
            given = authorization.removeprefix("Bearer ")
            return reply, JSONResponse(
                _error_body(401, Reply(message=f"Incorrect API key provided: {given}.")),
                status_code=401,
            )
        if reply.kind == "error":
            return reply, JSONResponse(
                _error_body(reply.status, reply),
                status_code=reply.status,
                headers=dict(reply.headers),
            )
        if reply.kind == "slow":
            await self.pause(reply.delay_s)
        if reply.kind == "malformed" and not body.get("stream"):
            return reply, Response(
                '{"id": "chatcmpl-broken", "choices": [', media_type="application/json"
            )
        return reply, None

    # -- chat --------------------------------------------------------------------------------

    async def _chat(self, request: Request) -> Response:
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
        stop = body.get("stop") or []
        shaped = shape_answer(
            answer,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            stop=[stop] if isinstance(stop, str) else list(stop),
        )
        finish = FINISH[shaped.ended_by]
        text: str | None = shaped.text
        if reply.kind == "refusal":
            text, finish = None, "content_filter"
        usage = {
            "prompt_tokens": sum(count_tokens(_text_of(m.get("content"))) for m in messages),
            "completion_tokens": count_tokens(text or ""),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {
            "id": f"chatcmpl-fake-{next(_ids)}",
            "created": int(epoch_seconds()),
            "model": body.get("model", ""),
            "system_fingerprint": "fp_fake",
        }
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._chunks(base, reply, text, finish, usage if include_usage else None),
                media_type="text/event-stream",
            )
        message = {"role": "assistant", "content": text, "refusal": None}
        return JSONResponse(
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": usage,
            }
        )

    async def _chunks(
        self,
        base: dict[str, Any],
        reply: Reply,
        text: str | None,
        finish: str,
        usage: dict[str, int] | None,
    ) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            payload = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            if usage is not None:
                payload["usage"] = None
            return f"data: {json.dumps(payload)}\n\n"

        if reply.kind == "malformed":
            yield "data: {not json\n\n"
            return
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for index, piece in enumerate(split_for_stream(text or "")):
            yield chunk({"content": piece})
            if index == 0 and reply.kind == "truncate":
                return
            if index == 0 and reply.kind == "stall":
                await self.pause(reply.delay_s)
            if index == 0 and reply.kind == "midstream_error":
                error = {"message": reply.message, "type": reply.error_type, "code": None}
                yield f"data: {json.dumps({'error': error})}\n\n"
                return
        yield chunk({}, finish)
        if usage is not None:
            final = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            yield f"data: {json.dumps(final)}\n\n"
        yield "data: [DONE]\n\n"

    # -- embeddings --------------------------------------------------------------------------

    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        _reply, early = await self._admit(request, body)
        if early is not None:
            return early
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = int(body.get("dimensions") or 8)
        data = []
        for index, text in enumerate(texts):
            vector: Any = _embedding(str(text), dimensions)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(str(t)) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": list(reversed(data)),  # the order is not guaranteed; clients sort by index
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- audio -------------------------------------------------------------------------------

    async def _transcriptions(self, request: Request) -> Response:
        async with request.form() as form:
            upload = form.get("file")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            body: dict[str, Any] = dict(fields)
            audio = b""
            if isinstance(upload, UploadFile):
                audio = await upload.read()
                body.update(
                    file_name=upload.filename,
                    file_content_type=upload.content_type,
                    file_size=len(audio),
                )
        _reply, early = await self._admit(request, body)
        if early is not None:
            return early
        try:  # tests send UTF-8 "audio" so the transcript is predictable
            text = audio.decode()
        except UnicodeDecodeError:
            text = f"[{len(audio)} bytes of audio]"
        usage: dict[str, Any]
        if body.get("model") == "whisper-1":
            usage = {"type": "duration", "seconds": round(len(audio) / 16000, 3)}
        else:
            out = count_tokens(text)
            usage = {
                "type": "tokens",
                "input_tokens": 50,
                "output_tokens": out,
                "total_tokens": 50 + out,
            }
        return JSONResponse({"text": text, "usage": usage})

    async def _models(self, request: Request) -> Response:
        _reply, early = await self._admit(request, {})
        if early is not None:
            return early
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]
        return JSONResponse({"object": "list", "data": data})


def main() -> None:  # pragma: no cover - manual / benchmark use
    parser = argparse.ArgumentParser(description="Fake OpenAI API server")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--api-key", default="sk-test-fake-openai-key")
    args = parser.parse_args()
    run_standalone(FakeOpenAI(args.api_key, latency_s=args.latency_ms / 1000), args.port)


if __name__ == "__main__":
    main()
