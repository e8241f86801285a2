"""One contract, two stores: in-process state and Redis state behave the same, so several console
replicas share cool-downs, limits, spend and cache through Redis."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from core.llm.state import CLOSED, HALF_OPEN, OPEN, InProcessState, RedisState, RouterState

REDIS_URL = os.environ.get("OMNI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


class Clock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc}); .ci/run starts it")


@pytest.fixture(params=["in_process", "redis"])
def states(request: pytest.FixtureRequest) -> Iterator[tuple[Clock, RouterState, RouterState]]:
    """Two 'replicas' over the same store (for in-process: the same object)."""
    clock = Clock()
    if request.param == "in_process":
        state = InProcessState(clock=clock)
        yield clock, state, state
        return
    _redis_or_skip()
    prefix = f"omni:test:{uuid.uuid4().hex}:"
    a, b = RedisState(REDIS_URL, prefix, clock=clock), RedisState(REDIS_URL, prefix, clock=clock)
    yield clock, a, b
    a.reset()


def test_circuit_opens_half_opens_and_closes(
    states: tuple[Clock, RouterState, RouterState],
) -> None:
    clock, a, b = states
    assert not a.record_failure("d", 3, 60, 30)
    assert not b.record_failure("d", 3, 60, 30)
    assert a.record_failure("d", 3, 60, 30)  # third failure within the window
    assert b.circuit("d").state == OPEN and not b.allow("d")
    clock.now += 31
    assert a.circuit("d").state == HALF_OPEN
    assert a.allow("d")  # one replica gets the trial...
    assert not b.allow("d")  # ...and only one
    a.record_success("d", 120.0)
    assert b.circuit("d").state == CLOSED and b.allow("d")


def test_failures_outside_the_window_do_not_count(
    states: tuple[Clock, RouterState, RouterState],
) -> None:
    clock, a, _ = states
    a.record_failure("d", 2, 10, 30)
    clock.now += 11
    assert not a.record_failure("d", 2, 10, 30)


def test_failed_trial_reopens(states: tuple[Clock, RouterState, RouterState]) -> None:
    clock, a, b = states
    a.record_failure("d", 1, 60, 30)
    clock.now += 31
    assert a.allow("d")
    assert b.record_failure("d", 1, 60, 30)
    assert a.circuit("d").state == OPEN


def test_cool_down_is_shared(states: tuple[Clock, RouterState, RouterState]) -> None:
    clock, a, b = states
    a.cool_down("d", 20)
    assert not b.allow("d")
    clock.now += 21
    assert b.allow("d")


def test_latency_moving_average(states: tuple[Clock, RouterState, RouterState]) -> None:
    _, a, b = states
    assert a.latency_ms("d") is None
    a.record_success("d", 100.0)
    b.record_success("d", 200.0)
    assert b.latency_ms("d") == pytest.approx(120.0)


def test_rate_window_is_shared_and_exact_under_concurrency(
    states: tuple[Clock, RouterState, RouterState],
) -> None:
    clock, a, b = states
    granted: list[bool] = []
    lock = threading.Lock()

    def take(state: RouterState) -> None:
        ok = state.acquire("d", 10, None, 1)
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=take, args=(a if i % 2 else b,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert granted.count(True) == 10
    clock.now += 60
    assert a.acquire("d", 10, None, 1)


def test_token_limit_and_correction(states: tuple[Clock, RouterState, RouterState]) -> None:
    _, a, b = states
    assert a.acquire("d", None, 1000, 900)
    assert not b.acquire("d", None, 1000, 200)  # refused, and the refusal reserves nothing
    b.add_tokens("d", -500)  # the call used 400, not 900
    assert b.acquire("d", None, 1000, 200)


def test_spend_loads_once_then_counts(states: tuple[Clock, RouterState, RouterState]) -> None:
    _, a, b = states
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return 700

    assert a.spend("team:x:2026-11", load) == 700
    a.add_spend("team:x:2026-11", 50)
    assert b.spend("team:x:2026-11", load) == 750
    assert len(loads) == 1


def test_cache_expires(states: tuple[Clock, RouterState, RouterState]) -> None:
    clock, a, b = states
    a.cache_set("k", "v", 5)
    assert b.cache_get("k") == "v"
    if isinstance(a, InProcessState):  # Redis expires on its own clock; checked by TTL below
        clock.now += 6
        assert a.cache_get("k") is None
    else:
        assert 0 < a._redis.ttl(a._k("cache", "k")) <= 5  # type: ignore[attr-defined]
