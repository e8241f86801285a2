"""LLM router overhead: the project's Router against the official OpenAI SDK and LiteLLM's Router.

    .venv/bin/python bench/llm_router.py              # about 2 minutes; appends to bench/RESULTS.md
    .venv/bin/python bench/llm_router.py --no-record  # print only

A fake OpenAI-compatible server with a fixed latency (bench/peers/fake_openai_server.py) runs in
its own process; a bound but never listening socket is the dead address (connection refused).
Every figure is N sequential single-client requests after a warm-up, measured in rounds that
alternate the clients so that drift on a shared machine hits them all alike:

* healthy: the SDK directly (the baseline), the project's `Router` (alias -> one
  `openai_compatible` deployment, ledger on, cache off) and LiteLLM's `Router` (in its own venv,
  bench/.peers/litellm, created on first run; bench/peers/litellm_router_peer.py);
* primary down: an alias whose primary is the dead address and whose fallback is the server. The
  project's router opens the primary's circuit during warm-up; LiteLLM gets
  `fallbacks=[{"primary": ["secondary"]}]`, measured with everything else at its defaults
  (which retry the dead primary twice with back-off and never cool a one-deployment group down:
  seconds a request, so a handful of requests only), with `num_retries=0`, and with
  `allowed_fails=1, cooldown_time=30` (which does cool it down).

Latency is wall time around the call in the calling process; CPU is the calling process's CPU
time per request (all its threads: the ledger writer included), which shows overhead with less
noise than a difference of two medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / "peers"
PEER_VENV = BENCH / ".peers" / "litellm"
LITELLM_VERSION = "1.110.2"
RESULTS = BENCH / "RESULTS.md"
RESULTS_HEADER = "# Benchmark results (appended by the scripts in bench/; newest last)\n"

if str(ROOT) not in sys.path:  # run as a script from anywhere: the project's packages import
    sys.path.insert(0, str(ROOT))

from core import clock  # noqa: E402  (the console's one clock)

# --- statistics ---------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    dead_attempts: int = 0  # connection attempts to the dead primary while measuring
    note: str = ""

    def add(self, latencies: list[float], cpu_s: float) -> None:
        self.latencies_ms.extend(latencies)
        self.cpu_s += cpu_s

    @property
    def n(self) -> int:
        return len(self.latencies_ms)

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        k = (len(data) - 1) * q / 100  # linear interpolation, numpy's default
        lo = int(k)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (k - lo)

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def cpu_ms(self) -> float:
        calls = self.n + sum(self.errors.values())
        return self.cpu_s * 1000 / calls if calls else float("nan")


def timed(call: Callable[[], object], n: int) -> tuple[list[float], float]:
    """Latencies (ms) of `n` sequential calls, and the process CPU seconds they used."""
    out = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out, time.process_time() - cpu


# --- processes ----------------------------------------------------------------------------------


def stop(proc: subprocess.Popen[Any], name: str) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop on SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=5)


def read_line(stream: IO[str], proc: subprocess.Popen[Any], what: str, timeout_s: float) -> str:
    """One line from a child's stdout, or an error naming `what` if it dies or takes too long."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise RuntimeError(f"{what}: no answer within {timeout_s:.0f} s")
    line = stream.readline()
    if not line:
        raise RuntimeError(f"{what}: the process exited (code {proc.poll()})")
    return line


@contextlib.contextmanager
def fake_server(latency_ms: float, log: IO[str]) -> Iterator[str]:
    proc = subprocess.Popen(  # noqa: S603 (our own script, fixed arguments)
        [sys.executable, str(PEERS / "fake_openai_server.py"), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(read_line(proc.stdout, proc, "fake server", 30).split()[1])
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, "fake server")


@contextlib.contextmanager
def dead_address() -> Iterator[str]:
    """A port that refuses connections: bound (so nothing else takes it) but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


def _peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def _installed_litellm() -> str | None:
    python = _peer_python()
    if not python.exists():
        return None
    probe = subprocess.run(  # noqa: S603 (the peer venv's interpreter)
        [str(python), "-c", "from importlib.metadata import version; print(version('litellm'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_peer_venv() -> str:
    """The LiteLLM venv, created on first run; returns the installed LiteLLM version."""
    version = _installed_litellm()
    if version:
        return version
    base = shutil.which("python3.11") or sys.executable
    print(f"Creating {PEER_VENV.relative_to(ROOT)} with litellm=={LITELLM_VERSION} (first run)...")
    if not _peer_python().exists():
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)  # noqa: S603
    pip = [str(_peer_python()), "-m", "pip", "install", "--quiet"]
    exact = subprocess.run([*pip, f"litellm=={LITELLM_VERSION}"], check=False)  # noqa: S603
    if exact.returncode != 0:
        print(
            f"litellm=={LITELLM_VERSION} is not installable here; taking the newest 1.x instead",
            file=sys.stderr,
        )
        subprocess.run([*pip, "litellm>=1,<2"], check=True)  # noqa: S603
    version = _installed_litellm()
    if not version:
        raise RuntimeError(f"LiteLLM did not install into {PEER_VENV}")
    return version


class Peer:
    """The LiteLLM side: one long-lived process in the peer venv, driven by JSON lines."""

    def __init__(self, log: IO[str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 (our own script in our own venv)
            [str(_peer_python()), str(PEERS / "litellm_router_peer.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )
        self.hello = json.loads(self._read("starting LiteLLM", 120))

    def _read(self, what: str, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        return read_line(self.proc.stdout, self.proc, f"LiteLLM peer ({what})", timeout_s)

    def run(self, command: dict[str, Any], timeout_s: float = 300) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self._read(command["name"], timeout_s))
        if "failed" in reply:
            raise RuntimeError(f"LiteLLM peer, {command['name']}: {reply['failed']}")
        return reply

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write('{"quit": true}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stop(self.proc, "LiteLLM peer")


# --- the project's router -----------------------------------------------------------------------


def router_yaml(primary_url: str, secondary_url: str | None) -> str:
    """One alias -> one deployment, or primary + fallback (priority order). Cache off, so every
    call reaches the server; circuit at its defaults (3 failures in 60 s open it for 30 s)."""
    deployments = f"""
  primary:
    provider: openai_compatible
    model: bench-model
    base_url: {primary_url}
    max_retries: 0
    priority: 0"""
    names = "[primary]"
    if secondary_url:
        deployments += f"""
  secondary:
    provider: openai_compatible
    model: bench-model
    base_url: {secondary_url}
    max_retries: 0
    priority: 1"""
        names = "[primary, secondary]"
    return f"""
deployments:{deployments}
aliases:
  bench:
    strategy: priority
    deployments: {names}
circuit:
  failure_threshold: 3
  window_s: 60
  cooldown_s: 30
cache:
  exact_ttl_s: 0
"""


class Project:
    """The project's Router on a throw-away OMNI_HOME database (the ledger writes there)."""

    def __init__(self, home: Path) -> None:
        os.environ["OMNI_HOME"] = str(home)
        os.environ.pop("OMNI_DATABASE_URL", None)
        os.environ.pop("OMNI_REDIS_URL", None)
        from core import schema
        from core.config import reload_settings

        reload_settings()
        schema.upgrade()

    def router(self, yaml_text: str, ledger: Any = None) -> Callable[[], object]:
        """`router.chat` as the gateway calls it; `ledger` replaces LEDGER (--diagnose only)."""
        from core.auth.actor import Actor
        from core.llm.config import parse_config
        from core.llm.router import CallContext, Router
        from core.llm.state import InProcessState
        from core.llm.types import ChatRequest

        extra = {} if ledger is None else {"ledger": ledger}
        router = Router(parse_config(yaml_text), InProcessState(), **extra)
        actor = Actor.system("bench")

        def call() -> object:
            return router.chat(
                "bench",
                ChatRequest.simple("hi", temperature=0),
                CallContext(actor=actor, use_cache=False),
            )

        return call

    @staticmethod
    def flush() -> None:
        from core.llm.ledger import LEDGER

        LEDGER.flush()

    @staticmethod
    def ledger_counts(since: datetime) -> Counter[tuple[str, str]]:
        """(deployment, status) -> rows recorded since `since`."""
        from sqlalchemy import func, select

        from core.db import unit_of_work
        from core.llm.models import LLMUsage

        Project.flush()
        with unit_of_work(read_only=True) as session:
            stmt = (
                select(LLMUsage.deployment, LLMUsage.status, func.count())
                .where(LLMUsage.ts >= since)
                .group_by(LLMUsage.deployment, LLMUsage.status)
            )
            return Counter({(d, s): int(c) for d, s, c in session.execute(stmt)})


def sdk_client(base_url: str) -> Callable[[], object]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)
    messages: list[Any] = [{"role": "user", "content": "hi"}]

    def call() -> object:
        return client.chat.completions.create(model="bench-model", messages=messages, temperature=0)

    return call


# --- the run ------------------------------------------------------------------------------------


def litellm_entry(name: str, url: str) -> dict[str, Any]:
    return {
        "model_name": name,
        "litellm_params": {"model": "openai/bench-model", "api_base": url, "api_key": "x"},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=300, help="measured requests per client")
    parser.add_argument("--rounds", type=int, default=3, help="the N requests are split in rounds")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up requests per client")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="the fake server's latency")
    parser.add_argument(
        "--defaults-n",
        type=int,
        default=4,
        help="requests for LiteLLM's all-defaults fallback (each takes seconds; 0 skips it)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip LiteLLM")
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="instead: where the project router's added time goes (ledger ablation, cProfile)",
    )
    parser.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS}")
    parser.add_argument("--json", type=Path, help="also write every latency here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups on SIGTERM too
    started = time.monotonic()
    if args.diagnose:
        return diagnose(args)
    version = None if args.no_peer else ensure_peer_venv()
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-llm-router-")))
        server_log = stack.enter_context((tmp / "server.log").open("w"))
        peer_log = stack.enter_context((tmp / "peer.log").open("w"))
        try:
            return _run(args, stack, tmp, server_log, peer_log, version, started)
        except Exception:
            for log in (server_log, peer_log):
                log.flush()
                tail = Path(log.name).read_text(errors="replace")[-3000:]
                if tail.strip():
                    print(f"--- {Path(log.name).name} (tail) ---\n{tail}", file=sys.stderr)
            raise


def _run(
    args: argparse.Namespace,
    stack: contextlib.ExitStack,
    tmp: Path,
    server_log: IO[str],
    peer_log: IO[str],
    version: str | None,
    started: float,
) -> int:
    url = stack.enter_context(fake_server(args.latency_ms, server_log))
    dead = stack.enter_context(dead_address())
    dead_port = dead.rsplit(":", 1)[1].split("/")[0]
    print(f"fake server {url} ({args.latency_ms:g} ms); dead primary {dead}")

    peer: Peer | None = None
    if version:
        peer = Peer(peer_log)
        stack.callback(peer.close)
        print(f"LiteLLM {peer.hello['litellm_version']} imported in {peer.hello['import_s']} s")

    project = Project(tmp / "omni")
    bench_started = clock.utcnow()
    direct_call = sdk_client(url)
    router_call = project.router(router_yaml(url, None))
    fallback_call = project.router(router_yaml(dead, url))

    keys = ("direct", "router", "router_fb", "peer_direct", "litellm")
    samples = {k: Sample(k) for k in (*keys, "litellm_fb_noretry", "litellm_fb_cool")}
    ours: dict[str, Callable[[], object]] = {
        "direct": direct_call,
        "router": router_call,
        "router_fb": fallback_call,
    }
    fb_list = [litellm_entry("primary", dead), litellm_entry("secondary", url)]
    theirs: dict[str, dict[str, Any]] = {
        "peer_direct": {"direct_url": url},
        "litellm": {"model_list": [litellm_entry("bench", url)], "model": "bench"},
        "litellm_fb_noretry": {
            "model_list": fb_list,
            "model": "primary",
            "router_kwargs": {"fallbacks": [{"primary": ["secondary"]}], "num_retries": 0},
        },
        "litellm_fb_cool": {
            "model_list": fb_list,
            "model": "primary",
            "router_kwargs": {
                "fallbacks": [{"primary": ["secondary"]}],
                "allowed_fails": 1,
                "cooldown_time": 30,
            },
        },
    }
    order = [k for k in samples if k in ours or peer is not None]
    fb_windows: list[tuple[datetime, datetime]] = []
    outside: Counter[str] = Counter()  # LiteLLM's connects and lookups beyond this machine
    per_round = [args.n // args.rounds + (i < args.n % args.rounds) for i in range(args.rounds)]

    for rnd, n in enumerate(per_round):
        warm = args.warmup if rnd == 0 else max(3, args.warmup // 10)
        rotated = order[rnd % len(order) :] + order[: rnd % len(order)]
        print(f"round {rnd + 1}/{args.rounds}: {n} requests each ({', '.join(rotated)})")
        for key in rotated:
            if key in ours:
                for _ in range(warm):
                    ours[key]()
                t0 = clock.utcnow()
                latencies, cpu = timed(ours[key], n)
                if key == "router_fb":
                    fb_windows.append((t0, clock.utcnow()))
                samples[key].add(latencies, cpu)
            elif peer is not None:
                reply = peer.run({"name": key, "n": n, "warmup": warm, **theirs[key]})
                samples[key].add(reply["latencies_ms"], reply["cpu_s"])
                samples[key].errors.update(reply["errors"])
                samples[key].dead_attempts += _tries(reply, dead_port, outside)

    if peer is not None and args.defaults_n > 0:
        print(f"LiteLLM fallback with all defaults: {args.defaults_n} requests (seconds each)")
        s = samples["litellm_fb_defaults"] = Sample("litellm_fb_defaults")
        reply = peer.run(
            {
                "name": "litellm_fb_defaults",
                "n": args.defaults_n,
                "warmup": 1,
                "model_list": fb_list,
                "model": "primary",
                "router_kwargs": {"fallbacks": [{"primary": ["secondary"]}]},
            },
            timeout_s=60 * (args.defaults_n + 2),
        )
        s.add(reply["latencies_ms"], reply["cpu_s"])
        s.errors.update(reply["errors"])
        s.dead_attempts = _tries(reply, dead_port, outside)
    if outside:
        print(f"LiteLLM tried to reach other hosts: {dict(outside)}", file=sys.stderr)

    # Attempts at the dead primary while the project's router was measured, from its own ledger.
    ledger = project.ledger_counts(bench_started)
    for t0, t1 in fb_windows:
        samples["router_fb"].dead_attempts += _ledger_primary_failures(t0, t1)
    elapsed = time.monotonic() - started
    table = render(samples, args, version, ledger, outside)
    print()
    print(table)
    print(f"\n(total {elapsed:.0f} s)")
    added = samples["router"].p50 - samples["direct"].p50
    if added > 1.0:
        print(
            f"The project router adds {added:.2f} ms at p50 (target: at most 1 ms); "
            "`--diagnose` shows where the time goes."
        )
    if args.json:
        args.json.write_text(
            json.dumps({k: s.latencies_ms for k, s in samples.items()}, indent=1) + "\n"
        )
    if not args.no_record:
        record(table, args, offline=version is not None and not outside)
        print(f"appended to {RESULTS.relative_to(ROOT)}")
    return 0


def _tries(reply: dict[str, Any], dead_port: str, outside: Counter[str]) -> int:
    """Connection attempts to the dead port in one peer reply; notes any non-local ones."""
    for hostport, count in reply["connects"].items():
        if not hostport.startswith(("127.0.0.1:", "::1:", "localhost:")):
            outside[hostport] += count
    for host, count in reply["lookups"].items():
        outside[f"DNS {host}"] += count
    return sum(c for hp, c in reply["connects"].items() if hp.endswith(f":{dead_port}"))


def _ledger_primary_failures(t0: datetime, t1: datetime) -> int:
    from sqlalchemy import func, select

    from core.db import unit_of_work
    from core.llm.models import LLMUsage

    with unit_of_work(read_only=True) as session:
        stmt = select(func.count()).where(
            LLMUsage.ts >= t0,
            LLMUsage.ts <= t1,
            LLMUsage.deployment == "primary",
            LLMUsage.status != "ok",
        )
        return int(session.scalar(stmt) or 0)


# --- diagnosis ----------------------------------------------------------------------------------


class NullLedger:
    def record(self, row: object) -> None:
        pass


def diagnose(args: argparse.Namespace) -> int:
    """Ablation (same server, interleaved rounds) and a main-thread profile of the router."""
    import cProfile
    import pstats

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-llm-router-")))
        log = stack.enter_context((tmp / "server.log").open("w"))
        url = stack.enter_context(fake_server(args.latency_ms, log))
        dead = stack.enter_context(dead_address())
        project = Project(tmp / "omni")
        yaml_text, fb_yaml = router_yaml(url, None), router_yaml(dead, url)
        # The core writer now batches (0.5 s linger); linger 0 is how it was before, one commit
        # per call, kept here to show what that cost.
        from core.llm.ledger import LedgerWriter

        per_call = LedgerWriter(linger_s=0.0)
        calls = {
            "direct": sdk_client(url),
            "router": project.router(yaml_text),
            "router, ledger.record a no-op": project.router(yaml_text, NullLedger()),
            "router, ledger committing per call": project.router(yaml_text, per_call),
            "router, primary down": project.router(fb_yaml),
            "router, primary down, ledger committing per call": project.router(fb_yaml, per_call),
        }
        samples = {k: Sample(k) for k in calls}
        for rnd in range(args.rounds):
            for key, call in calls.items():
                for _ in range(args.warmup if rnd == 0 else max(3, args.warmup // 10)):
                    call()  # the first ones open the dead primary's circuit
                samples[key].add(*timed(call, args.n // args.rounds))
        project.flush()
        per_call.flush()
        base = samples["direct"]
        print(f"\nLedger ablation ({machine()}, {args.n} requests each, interleaved rounds):\n")
        print("| client | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms | CPU ms/req |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for key, s in samples.items():
            print(
                f"| {key} | {s.p50:.2f} | {s.p99:.2f} | {s.mean:.2f} | {s.p50 - base.p50:+.2f} "
                f"| {s.p99 - base.p99:+.2f} | {s.cpu_ms:.2f} |"
            )

        # Main thread only: where the router's calls spend time that the direct SDK does not.
        per_call: dict[str, dict[str, float]] = {}
        for key in ("direct", "router"):
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.n):
                calls[key]()
            profile.disable()
            project.flush()
            stats: Any = pstats.Stats(profile).stats  # {(file, line, fn): (cc, nc, tt, ct, ...)}
            buckets: Counter[str] = Counter()
            for (file, _line, fn), (_cc, _nc, tt, _ct, _callers) in stats.items():
                if fn == "<built-in method posix.urandom>":
                    buckets["os.urandom (uuid4)"] += tt
                elif fn == "<method 'send' of '_socket.socket' objects>":
                    buckets["socket.send"] += tt
                elif fn == "<method 'recv' of '_socket.socket' objects>":
                    buckets["socket.recv (server + GIL wait)"] += tt
                elif "/core/" in file:
                    buckets["core/ Python code (router, state, ledger.record...)"] += tt
                else:
                    buckets["everything else (SDK, httpx, pydantic...)"] += tt
            per_call[key] = {k: v * 1000 / args.n for k, v in buckets.items()}
        print(
            "\nMain-thread profile, ms per call (cProfile tottime; a C call that releases the GIL"
        )
        print("also counts the wait to get it back from the ledger thread):\n")
        print("| bucket | direct | router | router - direct |")
        print("| --- | ---: | ---: | ---: |")
        names = sorted(set(per_call["direct"]) | set(per_call["router"]))
        for name in names:
            d, r = per_call["direct"].get(name, 0.0), per_call["router"].get(name, 0.0)
            print(f"| {name} | {d:.3f} | {r:.3f} | {r - d:+.3f} |")
    return 0


# --- report -------------------------------------------------------------------------------------


def machine() -> str:
    return f"{os.cpu_count()}-core {platform.machine()} {platform.system()}"


LABELS = {
    "direct": "OpenAI SDK direct (baseline)",
    "router": "project Router",
    "peer_direct": "OpenAI SDK direct, LiteLLM's venv",
    "litellm": "LiteLLM Router",
    "router_fb": "project Router, primary down (circuit open)",
    "litellm_fb_cool": "LiteLLM, primary down, allowed_fails=1 cooldown_time=30",
    "litellm_fb_noretry": "LiteLLM, primary down, num_retries=0 (cool-down settings at defaults)",
    "litellm_fb_defaults": "LiteLLM, primary down, all defaults (num_retries=2 with back-off)",
}


def render(
    samples: dict[str, Sample],
    args: argparse.Namespace,
    version: str | None,
    ledger: Counter[tuple[str, str]],
    outside: Counter[str],
) -> str:
    base = samples["direct"]
    lines = [
        f"Machine: {machine()}, Python {platform.python_version()}; fake server "
        f"{args.latency_ms:g} ms fixed latency in its own process; LiteLLM "
        f"{version or 'not run'}; N = {args.n} sequential requests per row in {args.rounds} "
        f"interleaved rounds after {args.warmup} warm-up (all-defaults LiteLLM row: "
        f"N = {args.defaults_n}).",
        "",
        "| client | n | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms | p50 ratio "
        "| CPU ms/req | dead-primary tries |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, label in LABELS.items():
        s = samples.get(key)
        if s is None or (s.n == 0 and not s.errors):
            continue
        is_fb = "_fb" in key
        tries = f"{s.dead_attempts} in {s.n}" if is_fb else "-"
        errors = f" ({sum(s.errors.values())} errors: {dict(s.errors)})" if s.errors else ""
        added = key != "direct"
        lines.append(
            f"| {label}{errors} | {s.n} | {s.p50:.1f} | {s.p99:.1f} | {s.mean:.1f} | "
            + (f"{s.p50 - base.p50:+.2f} | {s.p99 - base.p99:+.2f} | " if added else "- | - | ")
            + (f"{s.p50 / base.p50:.3f} | " if added else "1 | ")
            + f"{s.cpu_ms:.2f} | {tries} |"
        )
    lines += ["", targets(samples)]
    ok_rows = sum(c for (_d, st), c in ledger.items() if st == "ok")
    bad_rows = sum(c for (_d, st), c in ledger.items() if st != "ok")
    lines += [
        "",
        "Added = row minus the direct SDK baseline against the same server (for the primary-down "
        "rows: the secondary). Ratio = row p50 / baseline p50. CPU = the calling process's CPU "
        "time per request, all threads. Dead-primary tries: connection attempts to the refusing "
        "address during the measured requests (project: failed-attempt rows in its ledger; "
        f"LiteLLM: audited socket connects). Project ledger rows written: {ok_rows} ok, "
        f"{bad_rows} failed attempts."
        + (
            f" LiteLLM network use beyond this machine: {dict(outside)}."
            if outside
            else (" LiteLLM made no connection or DNS lookup beyond 127.0.0.1." if version else "")
        ),
    ]
    return "\n".join(lines)


def targets(samples: dict[str, Sample]) -> str:
    """The issue's targets, judged on this run's figures."""
    base, ours, fb = samples["direct"], samples["router"], samples["router_fb"]
    added = ours.p50 - base.p50
    parts = [f"router added p50 <= 1 ms: {'met' if added <= 1.0 else 'MISSED'} ({added:+.2f} ms)"]
    theirs = samples.get("litellm")
    if theirs is not None and theirs.n:
        their_added = theirs.p50 - base.p50
        verdict = "met" if added <= their_added else "MISSED"
        parts.append(f"no worse than LiteLLM: {verdict} ({added:+.2f} vs {their_added:+.2f} ms)")
    extra = fb.p50 - ours.p50
    verdict = "met" if fb.dead_attempts == 0 and extra <= 0.5 else "MISSED"
    parts.append(
        f"primary down, circuit open, nothing added beyond the healthy path: {verdict} "
        f"({extra:+.2f} ms p50 over the healthy router, {fb.dead_attempts} tries of the dead "
        f"primary; {fb.p50 - base.p50:+.2f} ms over the secondary called directly)"
    )
    return "Targets: " + "; ".join(parts) + "."


def record(table: str, args: argparse.Namespace, *, offline: bool) -> None:
    today = clock.now().strftime("%Y-%m-%d")
    section = (
        f"\n## LLM router (bench/llm_router.py) — {today}, {machine()}\n\n"
        f"Method: `.venv/bin/python bench/llm_router.py -n {args.n}`. Sequential single-client "
        "requests against a local OpenAI-compatible server (own process, fixed latency), timed "
        "around each call; the clients alternate in rounds; the project's Router runs with its "
        "ledger writing to a temporary SQLite database and its cache off; LiteLLM runs in its own "
        "venv with telemetry off and its local cost map"
        + (" (audited: no connection left the machine).\n\n" if offline else ".\n\n")
        + f"{table}\n"
    )
    if not RESULTS.exists():
        RESULTS.write_text(RESULTS_HEADER, encoding="utf-8")
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(section)


if __name__ == "__main__":
    sys.exit(main())
