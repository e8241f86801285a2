"""The router survives a provider outage, end to end: the real OpenAI and Anthropic SDKs against
wire-format servers, the real router state, ledger and price table on a real database."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import epoch_seconds
from core.config import reload_settings
from core.llm import gateway
from core.llm.ledger import LEDGER, UsageFilter, search_usage
from core.llm.types import ChatRequest
from tests.fakes import FakeAnthropic, FakeOpenAI, Reply
from tests.helpers import ADMIN

ML = Actor("mia", Role.ML_ENGINEER)


@pytest.fixture
def fakes(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeOpenAI, FakeAnthropic]]:
    with FakeOpenAI() as openai_fake, FakeAnthropic() as anthropic_fake:
        monkeypatch.setenv("OMNI_OPENAI_API_KEY", openai_fake.api_key)
        monkeypatch.setenv("OMNI_ANTHROPIC_API_KEY", anthropic_fake.api_key)
        reload_settings()
        gateway.reload_router(keep_state=False)
        gateway.save_router_config(
            ADMIN,
            f"""
deployments:
  gpt: {{provider: openai, model: gpt-4o-mini, base_url: "{openai_fake.url}/v1", max_retries: 1,
        timeout_s: 0.5}}
  claude: {{provider: anthropic, model: claude-haiku-4-5, base_url: "{anthropic_fake.url}",
           max_retries: 0}}
aliases:
  chat: {{strategy: priority, deployments: [gpt, claude]}}
circuit: {{failure_threshold: 2, window_s: 60, cooldown_s: 30}}
retry: {{base_delay_s: 0.01, max_delay_s: 0.02, max_retry_after_s: 0.5}}
cache: {{exact_ttl_s: 0}}
""",
            "outage test",
        )
        yield openai_fake, anthropic_fake
        LEDGER.flush()
        gateway.reload_router(keep_state=False)


def test_outage_fails_over_then_skips_the_dead_provider_then_recovers(
    fakes: tuple[FakeOpenAI, FakeAnthropic],
) -> None:
    openai_fake, _ = fakes
    request = ChatRequest.simple("status report please", temperature=0)
    assert gateway.chat(ML, "chat", request).deployment == "gpt"

    openai_fake.default = Reply.error(503, message="upstream overloaded")
    answer = gateway.chat(ML, "chat", request)
    assert answer.deployment == "claude" and answer.text  # two failed tries opened the circuit
    tried = openai_fake.request_count
    for _ in range(5):
        assert gateway.chat(ML, "chat", request).deployment == "claude"
    assert openai_fake.request_count == tried  # the open circuit skips it at once

    openai_fake.default = Reply()  # the outage ends
    state = gateway.get_router().state
    state._clock = lambda: epoch_seconds() + 31  # type: ignore[attr-defined]  # cool-down over
    assert state.circuit("gpt").state == "half_open"
    assert gateway.chat(ML, "chat", request).deployment == "gpt"

    rows = search_usage(ML, UsageFilter())
    statuses = [(r.deployment, r.status) for r in reversed(rows)]
    assert statuses.count(("gpt", "unavailable")) == 2
    assert statuses.count(("claude", "ok")) == 6
    assert all(r.cost_micros > 0 for r in rows if r.status == "ok")


def test_streaming_fails_over_before_the_first_token(
    fakes: tuple[FakeOpenAI, FakeAnthropic],
) -> None:
    openai_fake, _ = fakes
    openai_fake.default = Reply.error(500)
    events = list(gateway.stream(ML, "chat", ChatRequest.simple("stream it")))
    final = events[-1].result
    assert final is not None and final.deployment == "claude"
    assert "".join(e.delta for e in events[:-1]) == final.text


def test_slow_primary_times_out_and_the_backup_answers(
    fakes: tuple[FakeOpenAI, FakeAnthropic],
) -> None:
    openai_fake, _ = fakes
    openai_fake.default = Reply.slow(2.0)
    started = time.perf_counter()
    assert gateway.chat(ML, "chat", ChatRequest.simple("hurry")).deployment == "claude"
    assert time.perf_counter() - started < 1.8  # two 0.5 s timeouts, not the full 2 s reply


def test_long_retry_after_goes_to_the_backup_without_waiting(
    fakes: tuple[FakeOpenAI, FakeAnthropic],
) -> None:
    openai_fake, _ = fakes
    openai_fake.script(Reply.rate_limited("30"))
    started = time.perf_counter()
    assert gateway.chat(ML, "chat", ChatRequest.simple("quota?")).deployment == "claude"
    assert time.perf_counter() - started < 1.0
    assert gateway.chat(ML, "chat", ChatRequest.simple("again")).deployment == "claude"
    assert openai_fake.request_count == 1  # cooling down for the 30 s it asked for
