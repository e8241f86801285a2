"""Run an ASGI app with uvicorn on a free 127.0.0.1 port in a background thread, and the
scripting shared by the vendor fakes (replies queued per test, request recording, latency).

    with ServerThread(app) as server:
        client = SomeSDK(base_url=server.url)

The socket is bound before the thread starts, so the port is known and listening as soon as
`start()` returns. A `FakeProvider` cuts its scripted sleeps short when it shuts down, so leaving
its `with` block takes about a tenth of a second even after a `Reply.slow(...)`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self

import uvicorn
from starlette.types import ASGIApp

ReplyKind = Literal[
    "ok", "error", "slow", "malformed", "refusal", "stall", "truncate", "midstream_error"
]


@dataclass(frozen=True)
class Reply:
    """What the fake does with one request. Build them with the class methods."""

    kind: ReplyKind = "ok"
    status: int = 200
    error_type: str = ""
    code: str = ""
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    text: str | None = None  # the answer; None echoes the last user message

    @classmethod
    def ok(cls, text: str | None = None) -> Reply:
        return cls(text=text)

    @classmethod
    def error(
        cls,
        status: int,
        *,
        error_type: str = "",
        code: str = "",
        message: str = "scripted failure",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return cls(
            kind="error",
            status=status,
            error_type=error_type,
            code=code,
            message=message,
            headers=tuple((headers or {}).items()),
        )

    @classmethod
    def rate_limited(cls, retry_after: str | None = "2") -> Reply:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        return cls.error(429, message="Rate limit reached for requests", headers=headers)

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        """Answer normally, but only after `seconds` (longer than the client's timeout)."""
        return cls(kind="slow", delay_s=seconds)

    @classmethod
    def malformed(cls) -> Reply:
        """HTTP 200 whose body is not the JSON (or SSE data) the SDK expects."""
        return cls(kind="malformed")

    @classmethod
    def refusal(cls) -> Reply:
        """The model's safety system stops the answer (finish/stop reason, not an HTTP error)."""
        return cls(kind="refusal")

    @classmethod
    def stall(cls, seconds: float) -> Reply:
        """Streaming: send the first delta, then go silent for `seconds`."""
        return cls(kind="stall", delay_s=seconds)

    @classmethod
    def midstream_error(cls, error_type: str = "overloaded_error") -> Reply:
        """Streaming: send the first delta, then an error event in the (HTTP 200) stream."""
        return cls(kind="midstream_error", error_type=error_type, message="scripted failure")

    @classmethod
    def truncate(cls) -> Reply:
        """Streaming: send the first delta, then end the body without finishing the answer."""
        return cls(kind="truncate")


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeProvider:
    """Scripted behaviour and recorded traffic of one vendor fake; subclasses add the routes.

    `script(...)` queues replies for the next requests; `default` is the mode once the queue is
    empty (`fake.default = Reply.error(503)` makes the fake fail until `reset()`). Every request
    is recorded (`requests`, `last`, `last_body`, `request_count`), rejected ones included.
    Thread-safe: the SDK runs in the test thread, the app in the server thread.
    """

    def __init__(self, api_key: str, *, latency_s: float = 0.0) -> None:
        self.api_key = api_key
        self.latency_s = latency_s  # added to every request (the router benchmark uses 0.02)
        self._initial = (api_key, latency_s)
        self.default = Reply()
        self.requests: list[Recorded] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ServerThread | None = None

    def app(self) -> ASGIApp:
        raise NotImplementedError

    # -- scripting ---------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order; afterwards `default` applies."""
        with self._lock:
            self._queue.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.default = Reply()
            self.api_key, self.latency_s = self._initial

    # -- recording ---------------------------------------------------------------------------

    def record(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(Recorded(path, headers, body))

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def last(self) -> Recorded:
        with self._lock:
            if not self.requests:
                raise AssertionError("the fake has not received any request")
            return self.requests[-1]

    @property
    def last_body(self) -> dict[str, Any]:
        return self.last.body

    # -- serving -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running; use it as a context manager")
        return self._server.url

    async def pause(self, seconds: float) -> None:
        """Sleep, but end early when the fake shuts down: stopping never waits on a slow reply."""
        deadline = time.monotonic() + seconds
        while not self._closing.is_set() and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(remaining, 0.02))

    def __enter__(self) -> Self:
        self._closing.clear()
        self._server = ServerThread(self.app())
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.stop()
            self._server = None


def echo_answer(last_user_text: str) -> str:
    return f"echo: {last_user_text}"


def count_tokens(text: str) -> int:
    """The fakes' deterministic stand-in for a tokenizer: whitespace-separated words."""
    return len(text.split())


def split_for_stream(text: str) -> list[str]:
    """Deltas that concatenate back to `text` exactly: each word with its leading space."""
    words = text.split(" ")
    return [words[0]] + [f" {w}" for w in words[1:]] if text else []


@dataclass(frozen=True)
class Shaped:
    text: str
    ended_by: Literal["end", "max_tokens", "stop_sequence"]
    stop_sequence: str | None = None


def shape_answer(answer: str, *, max_tokens: int | None, stop: list[str]) -> Shaped:
    """Apply the stop sequences, then the token limit, the way a real model run would end."""
    for sequence in stop:
        index = answer.find(sequence)
        if index >= 0:
            return Shaped(answer[:index], "stop_sequence", sequence)
    words = answer.split(" ")
    if max_tokens is not None and len(words) > max_tokens:
        return Shaped(" ".join(words[:max_tokens]), "max_tokens")
    return Shaped(answer, "end")


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app: ASGIApp, *, port: int = 0) -> None:
        self._app = app
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the server is not running")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 5.0) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it, small SSE writes wait ~40 ms on delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self._port))
        self._socket = sock
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-server"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._thread.is_alive():
            if self._server.started:
                return
            time.sleep(0.002)
        self.stop()
        raise RuntimeError("the fake server did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_standalone(fake: FakeProvider, port: int) -> None:  # pragma: no cover - manual use
    """Serve `fake` on 127.0.0.1:`port` until interrupted (for benchmarks and manual tries)."""
    server = ServerThread(fake.app(), port=port)
    server.start()
    print(f"{type(fake).__name__} listening on {server.url} (key {fake.api_key!r}); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` for the duration of the block and yield its base URL."""
    with ServerThread(app) as server:
        yield server.url


def closed_port_url() -> str:
    """A URL where nothing listens (the port was free a moment ago): connection refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
