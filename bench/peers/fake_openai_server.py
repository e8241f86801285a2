"""A minimal OpenAI-compatible chat server with a fixed latency, for the LLM router benchmark.

Standard library only, so any interpreter can run it (the project's venv or a peer's). It answers
POST /v1/chat/completions with a non-streaming `chat.completion` (with usage) after sleeping a
fixed time, keeps connections alive (HTTP/1.1) and writes each response in one send with
TCP_NODELAY, so Nagle's algorithm and delayed ACKs cannot add their own 40 ms.

    python bench/peers/fake_openai_server.py --latency-ms 20 [--port 0]

It prints `PORT <n>` on its first line of stdout once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ids = itertools.count(1)
_ids_lock = threading.Lock()


def completion_body(model: str, prompt_chars: int) -> bytes:
    with _ids_lock:
        n = next(_ids)
    prompt_tokens = max(1, prompt_chars // 4)
    return json.dumps(
        {
            "id": f"chatcmpl-bench{n}",
            "object": "chat.completion",
            "created": int(time.time()),  # noqa: TID251  (a stand-in for the vendor: its clock)
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 1,
                "total_tokens": prompt_tokens + 1,
            },
        },
        separators=(",", ":"),
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as every real provider does
    latency_s = 0.02
    server_version = "bench-fake-openai/1"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would cost more than the request itself

    def _send(self, status: int, body: bytes) -> None:
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: keep-alive\r\n\r\n"
        ).encode()
        self.wfile.write(head + body)  # one write: headers and body in one segment

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
            return
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, b'{"error":{"message":"bad json","type":"invalid_request_error"}}')
            return
        if payload.get("stream"):
            self._send(400, b'{"error":{"message":"no streaming","type":"invalid_request_error"}}')
            return
        chars = sum(len(str(m.get("content", ""))) for m in payload.get("messages", []))
        time.sleep(self.latency_s)
        self._send(200, completion_body(str(payload.get("model", "bench-model")), chars))

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, b'{"object":"list","data":[{"id":"bench-model","object":"model"}]}')
            return
        self._send(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    Handler.latency_s = args.latency_ms / 1000
    server = Server((args.host, args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
