"""Router state: circuit breakers, latency averages, rate windows, budget spend, response cache.

In-process by default; in Redis when OMNI_REDIS_URL is set, so every console replica sees the same
cool-downs, limits and spend. Both implement `RouterState` and pass the same tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.clock import epoch_seconds

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
EMA_ALPHA = 0.2  # weight of the newest latency in the moving average


@dataclass(frozen=True)
class CircuitSnapshot:
    state: str
    recent_failures: int
    open_until: float | None  # epoch seconds


class RouterState(Protocol):
    def allow(self, deployment: str) -> bool:
        """False while the circuit is open; after the cool-down one caller gets a trial call."""

    def record_success(self, deployment: str, latency_ms: float) -> None: ...

    def record_failure(
        self, deployment: str, threshold: int, window_s: float, cooldown_s: float
    ) -> bool:
        """Count a failure; open the circuit when `threshold` fall within `window_s`. True if it
        opened (or re-opened after a failed trial)."""

    def cool_down(self, deployment: str, seconds: float) -> None:
        """Skip the deployment for `seconds` (a 429 that asked us to wait)."""

    def circuit(self, deployment: str) -> CircuitSnapshot: ...

    def latency_ms(self, deployment: str) -> float | None: ...

    def acquire(self, deployment: str, rpm: int | None, tpm: int | None, tokens: int) -> bool:
        """Reserve one request and `tokens` in this minute's window; False when over a limit."""

    def add_tokens(self, deployment: str, tokens: int) -> None:
        """Correct this minute's token count once the real usage is known (may be negative)."""

    def spend(self, key: str, load: Callable[[], int]) -> int:
        """Spend so far for a budget key; `load` fills it from the ledger the first time."""

    def add_spend(self, key: str, micros: int) -> None: ...

    def cache_get(self, key: str) -> str | None: ...

    def cache_set(self, key: str, value: str, ttl_s: int) -> None: ...

    def reset(self) -> None:
        """Forget everything (tests, and an admin's 'reset circuits')."""


def _minute(now: float) -> int:
    return int(now // 60)


class InProcessState:
    def __init__(self, clock: Callable[[], float] = epoch_seconds) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self._failures: dict[str, list[float]] = {}
        self._open_until: dict[str, float] = {}
        self._trial: dict[str, bool] = {}
        self._latency: dict[str, float] = {}
        self._window: dict[tuple[str, int], list[int]] = {}
        self._spend: dict[str, int] = {}
        self._cache: dict[str, tuple[float, str]] = {}

    def allow(self, deployment: str) -> bool:
        with self._lock:
            until = self._open_until.get(deployment)
            if until is None:
                return True
            if self._clock() < until or self._trial.get(deployment):
                return False
            self._trial[deployment] = True  # this caller is the half-open trial
            return True

    def record_success(self, deployment: str, latency_ms: float) -> None:
        with self._lock:
            self._failures.pop(deployment, None)
            self._open_until.pop(deployment, None)
            self._trial.pop(deployment, None)
            previous = self._latency.get(deployment)
            self._latency[deployment] = (
                latency_ms
                if previous is None
                else EMA_ALPHA * latency_ms + (1 - EMA_ALPHA) * previous
            )

    def record_failure(
        self, deployment: str, threshold: int, window_s: float, cooldown_s: float
    ) -> bool:
        with self._lock:
            now = self._clock()
            if self._trial.pop(deployment, False):  # the half-open trial failed: open again
                self._open_until[deployment] = now + cooldown_s
                return True
            recent = [t for t in self._failures.get(deployment, []) if t > now - window_s]
            recent.append(now)
            self._failures[deployment] = recent
            if len(recent) >= threshold:
                self._open_until[deployment] = now + cooldown_s
                self._failures[deployment] = []
                return True
            return False

    def cool_down(self, deployment: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + seconds
            self._open_until[deployment] = max(until, self._open_until.get(deployment, 0.0))

    def circuit(self, deployment: str) -> CircuitSnapshot:
        with self._lock:
            now = self._clock()
            until = self._open_until.get(deployment)
            failures = len([t for t in self._failures.get(deployment, []) if t > now - 3600])
            if until is None:
                return CircuitSnapshot(CLOSED, failures, None)
            return CircuitSnapshot(OPEN if now < until else HALF_OPEN, failures, until)

    def latency_ms(self, deployment: str) -> float | None:
        return self._latency.get(deployment)

    def acquire(self, deployment: str, rpm: int | None, tpm: int | None, tokens: int) -> bool:
        with self._lock:
            key = (deployment, _minute(self._clock()))
            counts = self._window.setdefault(key, [0, 0])
            if (rpm is not None and counts[0] + 1 > rpm) or (
                tpm is not None and counts[1] + tokens > tpm
            ):
                return False
            counts[0] += 1
            counts[1] += tokens
            if len(self._window) > 10_000:  # drop windows of past minutes
                current = key[1]
                self._window = {k: v for k, v in self._window.items() if k[1] >= current - 1}
            return True

    def add_tokens(self, deployment: str, tokens: int) -> None:
        with self._lock:
            key = (deployment, _minute(self._clock()))
            self._window.setdefault(key, [0, 0])[1] += tokens

    def spend(self, key: str, load: Callable[[], int]) -> int:
        with self._lock:
            if key in self._spend:
                return self._spend[key]
        value = load()  # outside the lock: a database read
        with self._lock:
            return self._spend.setdefault(key, value)

    def add_spend(self, key: str, micros: int) -> None:
        with self._lock:
            if key in self._spend:  # unloaded keys are read from the ledger when first needed
                self._spend[key] += micros

    def cache_get(self, key: str) -> str | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            if hit[0] < self._clock():
                del self._cache[key]
                return None
            return hit[1]

    def cache_set(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            if len(self._cache) > 5_000:  # bounded: drop the entries closest to expiry
                for stale in sorted(self._cache, key=lambda k: self._cache[k][0])[:1_000]:
                    del self._cache[stale]
            self._cache[key] = (self._clock() + ttl_s, value)


class RedisState:
    """The same contract on Redis. Keys live under `prefix`; every key has an expiry."""

    def __init__(
        self,
        url: str,
        prefix: str = "omni:router:",
        clock: Callable[[], float] = epoch_seconds,
        client: Any = None,
    ) -> None:
        import redis

        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
        )
        self._p = prefix
        self._clock = clock

    def _k(self, *parts: object) -> str:
        return self._p + ":".join(str(p) for p in parts)

    def reset(self) -> None:
        for key in self._redis.scan_iter(self._p + "*"):
            self._redis.delete(key)

    def allow(self, deployment: str) -> bool:
        until = self._redis.get(self._k("open", deployment))
        if until is None:
            return True
        if self._clock() < float(until):
            return False
        # Half-open: the first replica to set the trial flag makes the one trial call.
        return bool(self._redis.set(self._k("trial", deployment), "1", nx=True, ex=300))

    def record_success(self, deployment: str, latency_ms: float) -> None:
        pipe = self._redis.pipeline()
        pipe.delete(
            self._k("fail", deployment), self._k("open", deployment), self._k("trial", deployment)
        )
        pipe.execute()
        key = self._k("lat", deployment)
        previous = self._redis.get(key)
        value = (
            latency_ms
            if previous is None
            else EMA_ALPHA * latency_ms + (1 - EMA_ALPHA) * float(previous)
        )
        self._redis.set(key, f"{value:.3f}", ex=86_400)

    def record_failure(
        self, deployment: str, threshold: int, window_s: float, cooldown_s: float
    ) -> bool:
        now = self._clock()
        if self._redis.delete(self._k("trial", deployment)):
            self._redis.set(
                self._k("open", deployment), f"{now + cooldown_s}", ex=int(cooldown_s) + 60
            )
            return True
        key = self._k("fail", deployment)
        pipe = self._redis.pipeline()
        pipe.zadd(key, {f"{now}:{id(pipe)}:{time.perf_counter_ns()}": now})
        pipe.zremrangebyscore(key, 0, now - window_s)
        pipe.zcard(key)
        pipe.expire(key, int(window_s) + 60)
        count = pipe.execute()[2]
        if count >= threshold:
            self._redis.set(
                self._k("open", deployment), f"{now + cooldown_s}", ex=int(cooldown_s) + 60
            )
            self._redis.delete(key)
            return True
        return False

    def cool_down(self, deployment: str, seconds: float) -> None:
        key = self._k("open", deployment)
        until = self._clock() + seconds
        current = self._redis.get(key)
        if current is None or float(current) < until:
            self._redis.set(key, f"{until}", ex=int(seconds) + 60)

    def circuit(self, deployment: str) -> CircuitSnapshot:
        now = self._clock()
        failures = int(self._redis.zcount(self._k("fail", deployment), now - 3600, "+inf"))
        until = self._redis.get(self._k("open", deployment))
        if until is None:
            return CircuitSnapshot(CLOSED, failures, None)
        return CircuitSnapshot(OPEN if now < float(until) else HALF_OPEN, failures, float(until))

    def latency_ms(self, deployment: str) -> float | None:
        value = self._redis.get(self._k("lat", deployment))
        return None if value is None else float(value)

    def acquire(self, deployment: str, rpm: int | None, tpm: int | None, tokens: int) -> bool:
        minute = _minute(self._clock())
        req_key, tok_key = self._k("rpm", deployment, minute), self._k("tpm", deployment, minute)
        pipe = self._redis.pipeline()
        pipe.incr(req_key)
        pipe.expire(req_key, 120)
        pipe.incrby(tok_key, tokens)
        pipe.expire(tok_key, 120)
        requests, _, used, _ = pipe.execute()
        if (rpm is not None and requests > rpm) or (tpm is not None and used > tpm):
            undo = self._redis.pipeline()  # give the reservation back: we are not calling
            undo.decr(req_key)
            undo.decrby(tok_key, tokens)
            undo.execute()
            return False
        return True

    def add_tokens(self, deployment: str, tokens: int) -> None:
        key = self._k("tpm", deployment, _minute(self._clock()))
        self._redis.incrby(key, tokens)
        self._redis.expire(key, 120)

    def spend(self, key: str, load: Callable[[], int]) -> int:
        value = self._redis.get(self._k("spend", key))
        if value is not None:
            return int(value)
        loaded = load()
        self._redis.set(self._k("spend", key), loaded, nx=True, ex=40 * 86_400)
        return int(self._redis.get(self._k("spend", key)) or loaded)

    def add_spend(self, key: str, micros: int) -> None:
        full = self._k("spend", key)
        if self._redis.exists(full):
            self._redis.incrby(full, micros)

    def cache_get(self, key: str) -> str | None:
        value = self._redis.get(self._k("cache", key))
        return None if value is None else str(value)

    def cache_set(self, key: str, value: str, ttl_s: int) -> None:
        self._redis.set(self._k("cache", key), value, ex=max(1, ttl_s))
