"""LiteLLM Router side of bench/llm_router.py; runs inside the peer venv (bench/.peers/litellm).

It imports LiteLLM once and then answers commands, one JSON object a line on stdin:

    {"name": "healthy", "model_list": [...], "router_kwargs": {...}, "model": "bench",
     "n": 100, "warmup": 10}

Each `name` gets its own `litellm.Router`, built on first use and kept, so cooldown state carries
over between rounds as it would in a long-running service. The answer is one JSON line on stdout:
latencies in ms, errors, and the network connections LiteLLM attempted while it ran (recorded by an
audit hook installed before LiteLLM is imported), so the benchmark can show that nothing left the
machine and how often a dead primary was tried. LiteLLM's own prints go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

# No downloads: the cost map is read from the copy inside the package, and no telemetry.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("LITELLM_LOG", "ERROR")

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_connects: Counter[str] = Counter()  # "host:port" -> attempts
_lookups: Counter[str] = Counter()  # DNS lookups of names other than loopback


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            _connects[f"{address[0]}:{address[1]}"] += 1
        else:
            _connects[str(address)] += 1
    elif event == "socket.getaddrinfo":
        host = args[0]
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host is not None and str(host) not in _LOOPBACK:
            _lookups[str(host)] += 1


sys.addaudithook(_audit)

# Keep the protocol channel private: anything LiteLLM prints goes to stderr instead.
_out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

_import_started = time.perf_counter()
import litellm  # noqa: E402 (after the audit hook and the environment)
import openai  # noqa: E402
from litellm import Router  # noqa: E402

_import_s = time.perf_counter() - _import_started

litellm.telemetry = False
litellm.suppress_debug_info = True
litellm.set_verbose = False
litellm.callbacks = []
litellm.success_callback = []
litellm.failure_callback = []
litellm.input_callback = []

_routers: dict[str, Router] = {}
_sdks: dict[str, openai.OpenAI] = {}


def _version() -> str:
    from importlib.metadata import version

    return version("litellm")


def _client(command: dict[str, Any]) -> Callable[[], object]:
    """`direct_url`: the OpenAI SDK of this venv straight at the server (this venv's baseline);
    otherwise a LiteLLM Router, kept per name."""
    name = command["name"]
    messages: list[Any] = [{"role": "user", "content": command.get("prompt", "hi")}]
    if command.get("direct_url"):
        sdk = _sdks.get(name)
        if sdk is None:
            sdk = _sdks[name] = openai.OpenAI(
                base_url=command["direct_url"], api_key="x", max_retries=0, timeout=60
            )
        return partial(
            sdk.chat.completions.create, model="bench-model", messages=messages, temperature=0
        )
    router = _routers.get(name)
    if router is None:
        router = _routers[name] = Router(
            model_list=command["model_list"], **command.get("router_kwargs", {})
        )
    return partial(router.completion, model=command["model"], messages=messages, temperature=0)


def _run(command: dict[str, Any]) -> dict[str, Any]:
    call = _client(command)
    errors: Counter[str] = Counter()

    def once() -> float | None:
        started = time.perf_counter()
        try:
            call()
        except Exception as exc:  # reported, never raised: the benchmark counts them
            errors[type(exc).__name__] += 1
            return None
        return (time.perf_counter() - started) * 1000

    for _ in range(int(command.get("warmup", 0))):
        once()
    errors.clear()
    _connects.clear()
    latencies = []
    cpu = time.process_time()
    for _ in range(int(command["n"])):
        elapsed = once()
        if elapsed is not None:
            latencies.append(elapsed)
    return {
        "name": command["name"],
        "latencies_ms": latencies,
        "cpu_s": time.process_time() - cpu,
        "errors": dict(errors),
        "connects": dict(_connects),
        "lookups": dict(_lookups),
    }


def main() -> None:
    hello = {"litellm_version": _version(), "import_s": round(_import_s, 2), "ready": True}
    _out.write(json.dumps(hello) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        if command.get("quit"):
            break
        try:
            reply = _run(command)
        except Exception as exc:  # the benchmark reports it and goes on without this figure
            reply = {"name": command.get("name"), "failed": f"{type(exc).__name__}: {exc}"}
        _out.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
