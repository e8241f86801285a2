"""The router's decisions: failover, retries, circuit breaker, limits, budgets, cache, ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.llm.config import parse_config
from core.llm.errors import (
    BadRequest,
    BudgetExceeded,
    NoDeploymentAvailable,
    ProviderAuthError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    UnsupportedCapability,
)
from core.llm.ledger import UsageRecord
from core.llm.pricing import Price
from core.llm.providers import PROVIDERS
from core.llm.router import Budget, CallContext, Router
from core.llm.state import InProcessState
from core.llm.types import Attachment, ChatRequest, Message
from tests import scripted_provider as sp

ACTOR = Actor("mia", Role.ML_ENGINEER)
CONFIG = """
deployments:
  primary: {provider: scripted, model: m-primary, max_retries: 2, priority: 0, tier: large}
  secondary: {provider: scripted, model: m-secondary, max_retries: 0, priority: 1, tier: medium}
  cheap: {provider: scripted, model: m-cheap, max_retries: 0, tier: small}
  limited: {provider: scripted, model: m-limited, max_retries: 0, rpm: 5}
  seeing: {provider: scripted, model: m-vision, max_retries: 0}
aliases:
  chat: {strategy: priority, deployments: [primary, secondary]}
  cheapest: {strategy: cost, required_tier: medium, deployments: [primary, secondary, cheap]}
  fast: {strategy: latency, deployments: [primary, secondary]}
  spread: {strategy: weighted, deployments: [primary, secondary]}
  limited: {deployments: [limited]}
  images: {deployments: [primary, seeing]}
circuit: {failure_threshold: 2, window_s: 60, cooldown_s: 30}
retry: {base_delay_s: 0.01, max_delay_s: 0.05, max_retry_after_s: 1.0}
cache: {exact_ttl_s: 60}
"""
PRICES = {
    "m-primary": (3_000_000, 15_000_000),
    "m-secondary": (150_000, 600_000),
    "m-cheap": (10_000, 20_000),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakePrices:
    def price_at(self, model: str, at: datetime | None = None) -> Price | None:
        if model not in PRICES:
            return None
        i, o = PRICES[model]
        return Price(1, "scripted", model, i, o, datetime(2024, 1, 1, tzinfo=UTC), "t", "")


class ListLedger:
    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []

    def record(self, row: UsageRecord) -> None:
        self.rows.append(row)


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.scripted_provider:ScriptedProvider")
    sp.reset()
    yield
    sp.reset()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger() -> ListLedger:
    return ListLedger()


def make_router(
    clock: Clock, ledger: ListLedger, budgets: list[Budget] | None = None, spent: int = 0
) -> Router:
    return Router(
        parse_config(CONFIG),
        InProcessState(clock=clock),
        budgets=lambda: budgets or [],
        spend=lambda scope, subject, since: spent,
        price_book=FakePrices(),  # type: ignore[arg-type]
        ledger=ledger,
        sleep=lambda s: None,
    )  # type: ignore[arg-type]


def ctx(**kw: object) -> CallContext:
    return CallContext(actor=ACTOR, use_cache=False, **kw)  # type: ignore[arg-type]


REQ = ChatRequest.simple("hello", temperature=0)


def test_priority_serves_from_primary_and_prices_the_call(clock: Clock, ledger: ListLedger) -> None:
    result = make_router(clock, ledger).chat("chat", REQ, ctx())
    assert (result.text, result.deployment) == ("ok from m-primary", "primary")
    assert result.cost_micros == (100 * 3_000_000 + 50 * 15_000_000 + 500_000) // 1_000_000
    assert [(r.deployment, r.status, r.cost_micros) for r in ledger.rows] == [
        ("primary", "ok", result.cost_micros)
    ]
    assert ledger.rows[0].team == "ml_engineer"  # team defaults to the role


def test_retries_transient_errors_then_succeeds(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", ProviderTimeout("slow"), RateLimited("429", retry_after_s=0.1))
    result = make_router(clock, ledger).chat("chat", REQ, ctx())
    assert result.deployment == "primary" and sp.CALLS["m-primary"] == 3
    assert [r.status for r in ledger.rows] == ["timeout", "rate_limited", "ok"]
    assert len({r.request_id for r in ledger.rows}) == 1


def test_retries_stop_once_the_circuit_opens(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", ProviderUnavailable("500"), ProviderTimeout("slow"))
    result = make_router(clock, ledger).chat("chat", REQ, ctx())
    assert result.deployment == "secondary" and sp.CALLS["m-primary"] == 2


def test_fails_over_when_primary_is_down(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", *[ProviderUnavailable("down")] * 3)
    result = make_router(clock, ledger).chat("chat", REQ, ctx())
    assert result.deployment == "secondary"
    assert [r.deployment for r in ledger.rows][-1] == "secondary"


def test_circuit_opens_and_skips_the_dead_deployment_at_once(
    clock: Clock, ledger: ListLedger
) -> None:
    router = make_router(clock, ledger)
    sp.script("m-primary", *[ProviderUnavailable("down")] * 10)
    router.chat("chat", REQ, ctx())  # two failures open the circuit (threshold 2)
    assert router.state.circuit("primary").state == "open"
    calls = sp.CALLS["m-primary"]
    for _ in range(5):
        assert router.chat("chat", REQ, ctx()).deployment == "secondary"
    assert sp.CALLS["m-primary"] == calls  # not tried again while open


def test_circuit_half_opens_after_cooldown_and_closes_on_success(
    clock: Clock, ledger: ListLedger
) -> None:
    router = make_router(clock, ledger)
    sp.script("m-primary", ProviderUnavailable("down"), ProviderUnavailable("down"))
    router.chat("chat", REQ, ctx())
    clock.now += 31
    assert router.state.circuit("primary").state == "half_open"
    assert router.chat("chat", REQ, ctx()).deployment == "primary"
    assert router.state.circuit("primary").state == "closed"


def test_failed_trial_reopens_the_circuit(clock: Clock, ledger: ListLedger) -> None:
    router = make_router(clock, ledger)
    sp.script("m-primary", *[ProviderUnavailable("down")] * 3)
    router.chat("chat", REQ, ctx())
    clock.now += 31
    assert router.chat("chat", REQ, ctx()).deployment == "secondary"  # the trial failed
    assert router.state.circuit("primary").state == "open"


def test_rate_limit_with_long_retry_after_moves_on_and_cools_down(
    clock: Clock, ledger: ListLedger
) -> None:
    router = make_router(clock, ledger)
    sp.script("m-primary", RateLimited("429", retry_after_s=20))
    assert router.chat("chat", REQ, ctx()).deployment == "secondary"
    assert sp.CALLS["m-primary"] == 1
    assert router.chat("chat", REQ, ctx()).deployment == "secondary"  # still cooling down
    clock.now += 21
    assert router.chat("chat", REQ, ctx()).deployment == "primary"


def test_short_retry_after_is_waited_out(clock: Clock, ledger: ListLedger) -> None:
    slept: list[float] = []
    router = make_router(clock, ledger)
    router._sleep = slept.append
    sp.script("m-primary", RateLimited("429", retry_after_s=0.5))
    assert router.chat("chat", REQ, ctx()).deployment == "primary"
    assert slept == [0.5]


def test_bad_requests_are_not_routed_around(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", BadRequest("context too long"))
    with pytest.raises(BadRequest):
        make_router(clock, ledger).chat("chat", REQ, ctx())
    assert sp.CALLS["m-secondary"] == 0


def test_auth_failure_moves_to_next_deployment(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", ProviderAuthError("bad key"))
    assert make_router(clock, ledger).chat("chat", REQ, ctx()).deployment == "secondary"
    assert sp.CALLS["m-primary"] == 1  # not retried: the key will not get better


def test_all_down_names_every_reason(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", *[ProviderUnavailable("primary is down")] * 3)
    sp.script("m-secondary", ProviderUnavailable("secondary is down"))
    with pytest.raises(NoDeploymentAvailable, match="primary: primary is down; secondary: second"):
        make_router(clock, ledger).chat("chat", REQ, ctx())
    assert ledger.rows[-1].status == "no_deployment"


def test_unknown_alias_lists_the_configured_ones(clock: Clock, ledger: ListLedger) -> None:
    with pytest.raises(BadRequest, match="Configured aliases: chat, cheapest, fast"):
        make_router(clock, ledger).chat("gpt-7", REQ, ctx())


def test_cost_strategy_picks_cheapest_capable(clock: Clock, ledger: ListLedger) -> None:
    assert make_router(clock, ledger).chat("cheapest", REQ, ctx()).deployment == "secondary"


def test_latency_strategy_prefers_the_faster(clock: Clock, ledger: ListLedger) -> None:
    router = make_router(clock, ledger)
    router.state.record_success("primary", 900.0)
    router.state.record_success("secondary", 40.0)
    assert router.chat("fast", REQ, ctx()).deployment == "secondary"


def test_weighted_strategy_splits_traffic(clock: Clock, ledger: ListLedger) -> None:
    import random

    router = make_router(clock, ledger)
    router._rng = random.Random(1)
    served = [router.chat("spread", REQ, ctx()).deployment for _ in range(200)]
    assert 60 < served.count("primary") < 140  # equal weights: roughly half each


def test_capabilities_route_images_to_vision_models(clock: Clock, ledger: ListLedger) -> None:
    image = Attachment("image", b"\x89PNG", "image/png", "x.png")
    request = ChatRequest(messages=(Message("user", "what is this?", (image,)),))
    assert make_router(clock, ledger).chat("images", request, ctx()).deployment == "seeing"
    with pytest.raises(UnsupportedCapability, match="cannot take vision"):
        make_router(clock, ledger).chat("chat", request, ctx())


def test_rpm_limit_holds_under_concurrency(clock: Clock, ledger: ListLedger) -> None:
    router = make_router(clock, ledger)
    sp.DELAY_S["m-limited"] = 0.01
    outcomes: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            router.chat("limited", REQ, ctx())
            result = "ok"
        except NoDeploymentAvailable:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5 and outcomes.count("refused") == 15
    assert sp.CALLS["m-limited"] == 5
    clock.now += 60  # a new minute frees the window
    assert router.chat("limited", REQ, ctx()).text == "ok from m-limited"


def test_budget_stops_traffic_when_spent(clock: Clock, ledger: ListLedger) -> None:
    budgets = [Budget("team", "ml_engineer", 5_000)]
    router = make_router(clock, ledger, budgets=budgets, spent=4_000)
    first = router.chat("chat", REQ, ctx())  # 4,000 spent < 5,000: allowed, costs 1,050
    assert first.cost_micros == 1_050
    with pytest.raises(BudgetExceeded, match=r"ml_engineer.*budget"):
        router.chat("chat", REQ, ctx())
    assert ledger.rows[-1].status == "budget_exceeded"
    other_team = router.chat("chat", REQ, ctx(team="support"))
    assert other_team.deployment == "primary"


def test_customer_budget(clock: Clock, ledger: ListLedger) -> None:
    router = make_router(clock, ledger, budgets=[Budget("customer", "42", 100)], spent=100)
    with pytest.raises(BudgetExceeded, match="customer '42'"):
        router.chat("chat", REQ, ctx(customer_id=42))
    assert router.chat("chat", REQ, ctx(customer_id=7)).deployment == "primary"


def test_exact_cache_serves_repeats_and_records_hits(clock: Clock, ledger: ListLedger) -> None:
    router = make_router(clock, ledger)
    cached_ctx = CallContext(actor=ACTOR)
    first = router.chat("chat", REQ, cached_ctx)
    second = router.chat("chat", REQ, CallContext(actor=ACTOR))
    assert second.text == first.text and second.cache_hit == "exact" and second.cost_micros == 0
    assert sp.CALLS["m-primary"] == 1
    assert [r.cache_hit for r in ledger.rows] == ["", "exact"]
    different = ChatRequest.simple("hello", temperature=0.9)
    assert router.chat("chat", different, CallContext(actor=ACTOR)).cache_hit == ""
    clock.now += 61  # TTL passed
    assert router.chat("chat", REQ, CallContext(actor=ACTOR)).cache_hit == ""


def test_streaming_fails_over_before_the_first_token(clock: Clock, ledger: ListLedger) -> None:
    sp.script("m-primary", *[ProviderUnavailable("down")] * 3)
    events = list(make_router(clock, ledger).stream("chat", REQ, ctx()))
    text = "".join(e.delta for e in events if e.result is None)
    final = events[-1].result
    assert final is not None and final.deployment == "secondary"
    assert text.strip() == "ok from m-secondary"


def test_bodies_are_stored_redacted_only_when_enabled(clock: Clock, ledger: ListLedger) -> None:
    request = ChatRequest.simple("mail me at ana@example.si", temperature=0)
    make_router(clock, ledger).chat("chat", request, ctx())
    assert ledger.rows[-1].prompt_redacted is None
    router = make_router(clock, ledger)
    router.config = router.config.model_copy(update={"store_bodies": True})
    router.chat("chat", request, ctx())
    assert ledger.rows[-1].prompt_redacted == "user:mail me at <EMAIL>"


def test_semantic_cache_answers_a_paraphrase(clock: Clock, ledger: ListLedger) -> None:
    import numpy as np

    vectors = {
        "user:How long do we have to answer an access request?": [1.0, 0.0, 0.0],
        "user:What is the deadline for replying to an access request?": [0.98, 0.199, 0.0],
        "user:How many bikes were rented in winter?": [0.0, 0.0, 1.0],
    }
    router = make_router(clock, ledger)
    router.config = router.config.model_copy(
        update={
            "cache": router.config.cache.model_copy(
                update={"semantic": True, "semantic_threshold": 0.95}
            )
        }
    )
    router._embed = lambda text: np.array(vectors[text], dtype=np.float32)
    cached = CallContext(actor=ACTOR)
    first = router.chat(
        "chat",
        ChatRequest.simple("How long do we have to answer an access request?", temperature=0),
        cached,
    )
    paraphrase = router.chat(
        "chat",
        ChatRequest.simple(
            "What is the deadline for replying to an access request?", temperature=0
        ),
        cached,
    )
    assert paraphrase.cache_hit == "semantic" and paraphrase.text == first.text
    other = router.chat(
        "chat", ChatRequest.simple("How many bikes were rented in winter?", temperature=0), cached
    )
    assert other.cache_hit == ""
    assert sp.CALLS["m-primary"] == 2
