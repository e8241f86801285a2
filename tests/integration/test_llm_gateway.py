"""The gateway on a real database: ledger rows, versioned prices, budgets, router configs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from core.audit.service import AuditFilter, search
from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.errors import PermissionDenied, ValidationError
from core.llm import gateway
from core.llm.budgets import delete_budget, list_budgets, set_budget
from core.llm.errors import BudgetExceeded
from core.llm.ledger import LEDGER, UsageFilter, export_usage_csv, search_usage
from core.llm.pricing import PRICE_BOOK, list_prices, set_price
from core.llm.providers import PROVIDERS
from core.llm.types import ChatRequest
from tests import scripted_provider as sp
from tests.helpers import ADMIN

ML = Actor("mia", Role.ML_ENGINEER)
FINANCE = Actor("fin", Role.FINANCE)
CONFIG = """
deployments:
  primary: {provider: scripted, model: gpt-4o-mini, max_retries: 0}
  backup: {provider: scripted, model: m-backup, max_retries: 0}
aliases:
  chat: {deployments: [primary, backup]}
cache: {exact_ttl_s: 0}
"""


@pytest.fixture(autouse=True)
def scripted_gateway(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.scripted_provider:ScriptedProvider")
    sp.reset()
    PRICE_BOOK.invalidate()
    gateway.reload_router(keep_state=False)
    gateway.save_router_config(ADMIN, CONFIG, "tests")
    yield
    LEDGER.flush()
    gateway.reload_router(keep_state=False)


def test_calls_land_in_the_ledger_with_the_price_of_their_time() -> None:
    request = ChatRequest.simple("hi", temperature=0)
    first = gateway.chat(ML, "chat", request, customer_id=None)
    # gpt-4o-mini list price from migration 0002: $0.15 / $0.60 per million tokens
    assert first.cost_micros == (100 * 150_000 + 50 * 600_000 + 500_000) // 1_000_000 == 45
    set_price(FINANCE, "openai", "gpt-4o-mini", "1.00", "2.00", note="price rise")
    second = gateway.chat(ML, "chat", request)
    assert second.cost_micros == 200
    rows = search_usage(ML, UsageFilter())
    assert [r.cost_micros for r in rows] == [200, 45]  # the old row keeps its old price
    assert {r.status for r in rows} == {"ok"} and {r.actor for r in rows} == {"mia"}


def test_failover_shows_as_two_rows_of_one_request() -> None:
    from core.llm.errors import ProviderUnavailable

    sp.script("gpt-4o-mini", ProviderUnavailable("down"))
    result = gateway.chat(ML, "chat", ChatRequest.simple("hi"))
    assert result.deployment == "backup"
    rows = search_usage(ML, UsageFilter())
    assert sorted((r.deployment, r.status) for r in rows) == [
        ("backup", "ok"),
        ("primary", "unavailable"),
    ]
    assert len({r.request_id for r in rows}) == 1


def test_prices_are_versioned_and_validated() -> None:
    past = utcnow() - timedelta(days=30)
    set_price(FINANCE, "openai", "gpt-4o-mini", "0.10", "0.40", effective_from=past)
    assert (
        PRICE_BOOK.price_at("gpt-4o-mini", past + timedelta(seconds=1)).input_per_mtok_micros
        == 100_000
    )  # type: ignore[union-attr]
    assert PRICE_BOOK.price_at("gpt-4o-mini", past - timedelta(days=9999)) is None
    history = [p for p in list_prices(ML) if p.model == "gpt-4o-mini"]
    assert len(history) == 2
    for bad in ("-1", "abc", "5000"):
        with pytest.raises(ValidationError):
            set_price(FINANCE, "openai", "gpt-4o-mini", bad, "1")
    with pytest.raises(PermissionDenied):
        set_price(ML, "openai", "gpt-4o-mini", "1", "1")
    assert search(ADMIN, AuditFilter(actions=["llm.prices.set"]))[0].target == "gpt-4o-mini"


def test_team_budget_from_the_database_stops_traffic() -> None:
    set_budget(FINANCE, "team", "ml_engineer", "0.0001")  # 100 micro-USD
    gateway.chat(ML, "chat", ChatRequest.simple("one"))  # 45: under the limit
    gateway.chat(ML, "chat", ChatRequest.simple("two"))  # 90: still under
    gateway.chat(ML, "chat", ChatRequest.simple("three"))  # 135 after this one
    with pytest.raises(BudgetExceeded, match="ml_engineer"):
        gateway.chat(ML, "chat", ChatRequest.simple("four"))
    views = list_budgets(FINANCE)
    assert [(v.scope, v.subject, v.limit_micros, v.spent_micros) for v in views] == [
        ("team", "ml_engineer", 100, 135)
    ]
    delete_budget(FINANCE, "team", "ml_engineer")
    assert gateway.chat(ML, "chat", ChatRequest.simple("five")).text == "ok from gpt-4o-mini"


def test_budget_input_is_validated_and_permissioned() -> None:
    with pytest.raises(ValidationError, match="by its number"):
        set_budget(FINANCE, "customer", "acme", "10")
    with pytest.raises(ValidationError, match="Unknown budget scope"):
        set_budget(FINANCE, "planet", "x", "10")
    with pytest.raises(PermissionDenied):
        set_budget(ML, "team", "ml_engineer", "10")


def test_router_config_versions_are_validated_audited_and_active() -> None:
    with pytest.raises(ValidationError, match="unknown deployments"):
        gateway.save_router_config(ADMIN, "deployments: {}\naliases: {a: {deployments: [x]}}")
    with pytest.raises(PermissionDenied):
        gateway.save_router_config(ML, CONFIG)
    gateway.save_router_config(
        ADMIN, CONFIG.replace("[primary, backup]", "[backup]"), "backup only"
    )
    assert gateway.chat(ML, "chat", ChatRequest.simple("x")).deployment == "backup"
    history = gateway.config_history(ML)
    assert [h.comment for h in history[:2]] == ["backup only", "tests"]
    entry = search(ADMIN, AuditFilter(actions=["llm.router.save"]))[0]
    assert entry.summary.startswith('{"aliases_added":[]')


def test_ledger_export_is_audited_and_permissioned() -> None:
    gateway.chat(ML, "chat", ChatRequest.simple("x"))
    csv_text, rows = export_usage_csv(FINANCE, UsageFilter())
    assert rows == 1 and csv_text.splitlines()[0].startswith("ts,request_id,actor")
    with pytest.raises(PermissionDenied):
        export_usage_csv(Actor("c", Role.COMPLIANCE_OFFICER), UsageFilter())
    with pytest.raises(PermissionDenied):
        gateway.chat(FINANCE, "chat", ChatRequest.simple("x"))  # finance does not send prompts
