"""The platform page's backend checks report what is really configured and reachable."""

from __future__ import annotations

import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.config import reload_settings
from core.errors import PermissionDenied
from core.platform.health import BackendStatus, platform_status
from core.schema import head_revision
from tests.helpers import ADMIN


def _by_concern() -> dict[str, BackendStatus]:
    return {s.concern: s for s in platform_status(ADMIN)}


def test_embedded_defaults(db_url: str) -> None:
    status = _by_concern()
    db = status["Relational store"]
    assert db.state == "ok" and f"schema {head_revision()}" in db.detail
    assert status["Payments"].state == "off"
    assert "Stripe sync is off" in status["Payments"].detail
    assert status["Jobs"].backend == "local executor"
    llm = status["LLM providers"]
    assert "local-smollm2" in llm.detail and "openai-gpt-4o" not in llm.detail.split(":")[1]
    assert status["Cache, rate limits, router state"].backend == "in-process"


def test_unreachable_redis_is_reported_down(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNI_REDIS_URL", "redis://:secretpw@127.0.0.1:1/0")
    reload_settings()
    cache = _by_concern()["Cache, rate limits, router state"]
    assert cache.state == "down"
    assert "secretpw" not in cache.detail


def test_reachable_redis_is_ok(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_REDIS_URL", "redis://127.0.0.1:6379/0")
    reload_settings()
    assert _by_concern()["Cache, rate limits, router state"].state == "ok"


def test_stripe_key_switches_payments_on(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_STRIPE_API_KEY", "sk_test_abc")
    reload_settings()
    payments = _by_concern()["Payments"]
    assert payments.backend == "Stripe (test mode)"


def test_schema_behind_is_degraded(sqlite_db: str) -> None:
    from alembic import command

    from core.schema import alembic_config

    command.downgrade(alembic_config(), "base")
    db = _by_concern()["Relational store"]
    assert db.state == "degraded" and "omni db upgrade" in db.detail


def test_platform_status_needs_permission(sqlite_db: str) -> None:
    with pytest.raises(PermissionDenied):
        platform_status(Actor("ml", Role.ML_ENGINEER))
