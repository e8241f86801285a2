"""The Stripe webhook receiver, with deliveries signed by the SDK's own scheme
(`stripe.WebhookSignature`): a valid delivery is applied once, a replay is reported as a
duplicate, and a tampered, expired or unsigned one changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from sqlalchemy import func, select
from starlette.testclient import TestClient

from core.audit.models import AuditEntry
from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing.models import Invoice, Payment, StripeEvent
from core.billing.stripe.pull import pull_events
from core.billing.stripe.webhook import PATH, create_app
from core.clock import FrozenClock, epoch_seconds
from core.config import reload_settings
from core.db import unit_of_work
from tests.fakes.stripe_server import FakeStripe, dumps
from tests.integration.stripe_ledger import build_ledger

SECRET = "whsec_test_secret_for_the_fake"
FINANCE = Actor("fiona", Role.FINANCE)


@pytest.fixture
def webhook(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("OMNI_STRIPE_WEBHOOK_SECRET", SECRET)
    reload_settings()
    with TestClient(create_app()) as client:
        yield client
    monkeypatch.delenv("OMNI_STRIPE_WEBHOOK_SECRET")
    reload_settings()


@pytest.fixture
def open_invoice(webhook: TestClient) -> int:
    ledger = build_ledger()
    with unit_of_work() as s:
        s.get(Invoice, ledger.open_invoice).stripe_id = "in_open"
    return ledger.open_invoice


def paid_event(event_id: str = "evt_paid_1", amount: int = 48932) -> dict[str, Any]:
    invoice = {
        "id": "in_open",
        "object": "invoice",
        "amount_paid": amount,
        "status": "paid",
        "payments": {"data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_1"}}]},
    }
    return {
        "id": event_id,
        "object": "event",
        "type": "invoice.paid",
        "created": int(epoch_seconds()),
        "data": {"object": invoice},
    }


def post(
    client: TestClient,
    body: str,
    *,
    signed: str | None = None,
    timestamp: int | None = None,
    secret: str = SECRET,
    header: str | None = None,
) -> Any:
    """POST `body`, signed over `signed` (default: the body itself) unless `header` is given."""
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(
            signed if signed is not None else body,
            secret,
            # signed now by the console's clock (the SDK's default reads the system clock)
            timestamp=timestamp if timestamp is not None else int(epoch_seconds()),
        )
    headers = {"Stripe-Signature": header} if header else {}
    return client.post(PATH, content=body.encode(), headers=headers)


def counts() -> tuple[int, int]:
    with unit_of_work(read_only=True) as s:
        events = s.scalar(select(func.count()).select_from(StripeEvent)) or 0
        payments = s.scalar(select(func.count()).select_from(Payment)) or 0
    return events, payments


def test_valid_delivery_is_applied_once(webhook: TestClient, open_invoice: int) -> None:
    body = dumps(paid_event())
    first = post(webhook, body)
    assert first.status_code == 200 and first.json() == {"received": True, "duplicate": False}
    with unit_of_work(read_only=True) as s:
        invoice = s.get(Invoice, open_invoice)
        assert invoice is not None and invoice.status == "paid"
        assert s.scalars(select(Payment.stripe_id)).all() == ["pi_1"]
        stored = s.get(StripeEvent, "evt_paid_1")
        assert stored is not None and stored.via == "webhook"
        audited = s.scalar(
            select(AuditEntry.summary).where(AuditEntry.actor == "system:stripe-webhook")
        )
    assert audited and json.loads(audited)["type"] == "invoice.paid"

    # Stripe redelivers (no 2xx seen in time): same id, applied once
    again = post(webhook, body)
    assert again.status_code == 200 and again.json() == {"received": True, "duplicate": True}
    assert counts() == (1, 1)


def test_bad_signatures_change_nothing(webhook: TestClient, open_invoice: int) -> None:
    body = dumps(paid_event())
    tampered = body.replace("48932", "99999")
    cases = {
        "tampered": post(webhook, tampered, signed=body),
        "expired": post(webhook, body, timestamp=int(epoch_seconds()) - 301),
        "wrong secret": post(webhook, body, secret="whsec_someone_else"),
        "missing": post(webhook, body, header=""),
        "garbled": post(webhook, body, header="t=abc,v1=zz"),
    }
    for name, response in cases.items():
        assert response.status_code == 400, name
        assert response.json()["error"].startswith("Invalid Stripe signature"), name
    assert "more than 300 s old" in cases["expired"].json()["error"]
    assert "header is missing" in cases["missing"].json()["error"]
    assert "does not match the body" in cases["tampered"].json()["error"]
    not_json = post(webhook, "not json")
    assert not_json.status_code == 400 and "not a Stripe event" in not_json.json()["error"]
    assert counts() == (0, 0)
    with unit_of_work(read_only=True) as s:
        invoice = s.get(Invoice, open_invoice)
        assert invoice is not None and invoice.status == "open"


def test_a_delivery_expires_by_the_consoles_clock(
    webhook: TestClient, open_invoice: int, frozen_clock: FrozenClock
) -> None:
    signed_at = int(epoch_seconds())
    body = dumps(paid_event())
    frozen_clock.advance(seconds=301)  # five minutes and a second later, by the console's clock
    late = post(webhook, body, timestamp=signed_at)
    assert late.status_code == 400 and "more than 300 s old" in late.json()["error"]
    assert counts() == (0, 0)
    frozen_clock.advance(seconds=-2)  # within the five minutes
    assert post(webhook, body, timestamp=signed_at).status_code == 200
    assert counts() == (1, 1)


def test_without_a_secret_deliveries_wait(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNI_STRIPE_WEBHOOK_SECRET", raising=False)
    reload_settings()
    with TestClient(create_app()) as client:
        response = post(client, dumps(paid_event()))
        assert response.status_code == 503
        assert "set OMNI_STRIPE_WEBHOOK_SECRET" in response.json()["error"]
        assert client.get("/healthz").json() == {"ok": True, "webhooks": "off"}
    assert counts() == (0, 0)


def test_an_event_delivered_and_pulled_is_applied_once(
    webhook: TestClient, open_invoice: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeStripe() as fake:
        monkeypatch.setenv("OMNI_STRIPE_API_KEY", fake.api_key)
        monkeypatch.setenv("OMNI_STRIPE_API_BASE", fake.url)
        reload_settings()
        event = fake.emit("invoice.paid", paid_event()["data"]["object"])
        assert post(webhook, dumps(event)).json()["duplicate"] is False
        pulled = pull_events(FINANCE)
    monkeypatch.delenv("OMNI_STRIPE_API_KEY")
    monkeypatch.delenv("OMNI_STRIPE_API_BASE")
    assert pulled.fetched == 1 and pulled.duplicates == 1
    assert counts() == (1, 1)
    with unit_of_work(read_only=True) as s:
        vias = s.scalars(select(StripeEvent.via)).all()
    assert vias == ["webhook"]
