"""The Stripe sync drives the real `stripe` SDK against a local server speaking Stripe's wire
format (`tests/fakes/stripe_server.py`): what the push creates and how it survives failures, how
vendor errors are translated, and how pulled events change the ledger exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from stripe._http_client import HTTPClient
from typer.testing import CliRunner

from core.audit.models import AuditEntry
from core.auth.actor import Actor
from core.auth.roles import Role
from core.billing.catalog import create_product
from core.billing.models import (
    Coupon,
    Customer,
    Dispute,
    Invoice,
    Payment,
    Price,
    Product,
    StripeEvent,
    Subscription,
    SyncState,
)
from core.billing.stripe.cli import stripe_app, webhooks_app
from core.billing.stripe.client import (
    SYNC_OFF,
    StripeGateway,
    StripeRequestRejected,
    StripeUnavailable,
    sync_enabled,
)
from core.billing.stripe.events import apply_event
from core.billing.stripe.pull import pull_events
from core.billing.stripe.push import push_all
from core.billing.stripe.status import sync_status
from core.config import reload_settings
from core.db import unit_of_work
from core.errors import ConfigurationError, Conflict, PermissionDenied, ValidationError
from tests.fakes.server import closed_port_url
from tests.fakes.stripe_server import FakeStripe
from tests.integration.stripe_ledger import build_ledger

FINANCE = Actor("fiona", Role.FINANCE)
ML = Actor("mia", Role.ML_ENGINEER)
ALL_CREATED = {
    "product": 2,
    "meter": 4,
    "price": 6,
    "customer": 2,
    "coupon": 2,
    "subscription": 2,
    "invoice": 2,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    server.reset()
    # The SDK's retry back-off is real; keep it, but in milliseconds.
    monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.001)
    monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.002)
    return server


@pytest.fixture
def stripe_env(fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Call it (after the database fixture) to point the settings at the fake."""

    def on(key: str | None = None) -> None:
        monkeypatch.setenv("OMNI_STRIPE_API_KEY", key or fake.api_key)
        monkeypatch.setenv("OMNI_STRIPE_API_BASE", fake.url)
        reload_settings()

    yield on
    monkeypatch.delenv("OMNI_STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("OMNI_STRIPE_API_BASE", raising=False)
    reload_settings()


def stripe_ids(model: Any) -> dict[int, str | None]:
    with unit_of_work(read_only=True) as s:
        return {row_id: sid for row_id, sid in s.execute(select(model.id, model.stripe_id))}


def ledger_row(model: Any, row_id: int) -> Any:
    with unit_of_work(read_only=True) as s:
        return s.get(model, row_id)


def by_meta(fake: FakeStripe, kind: str, key: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"][key]: o for o in fake.objects(kind)}


def test_push_then_pull_end_to_end(
    db_url: str, fake: FakeStripe, stripe_env: Callable[..., None]
) -> None:
    ledger = build_ledger()
    stripe_env()
    report = push_all(FINANCE)
    assert report.created == ALL_CREATED and not report.skipped and not report.warnings

    prices = by_meta(fake, "price", "omni_price_key")
    meters = {m["id"] for m in fake.objects("meter")}
    assert prices["platform-eur"]["unit_amount"] == 49900
    assert prices["platform-eur"]["currency"] == "eur"
    assert prices["platform-eur"]["recurring"] == {"interval": "month", "usage_type": "licensed"}
    tokens = prices["tokens-in-eur"]
    assert tokens["unit_amount_decimal"] == "0.015" and "unit_amount" not in tokens
    assert tokens["recurring"]["usage_type"] == "metered"
    assert tokens["recurring"]["meter"] in meters
    assert prices["calls-eur"]["transform_quantity"] == {"divide_by": 1000, "round": "up"}
    storage = prices["storage-eur"]
    assert storage["tiers_mode"] == "graduated" and storage["billing_scheme"] == "tiered"
    assert storage["tiers"] == [
        {"up_to": 10, "unit_amount": 0, "flat_amount": 0},
        {"up_to": "inf", "unit_amount_decimal": "25.5", "flat_amount": 100},
    ]
    assert prices["tokens-out-eur"]["tiers_mode"] == "volume"

    customers = by_meta(fake, "customer", "omni_customer_id")
    acme = customers[str(ledger.customers[0])]
    assert acme["address"] == {"country": "DE"} and acme["email"] == "billing@acme.example"
    coupons = by_meta(fake, "coupon", "omni_coupon_code")
    assert coupons["LAUNCH20"]["percent_off"] == "20"
    assert coupons["LAUNCH20"]["duration_in_months"] == 3
    assert coupons["TENOFF"]["amount_off"] == 1000 and coupons["TENOFF"]["currency"] == "eur"

    subs = by_meta(fake, "subscription", "omni_subscription_id")
    assert set(subs) == {str(i) for i in ledger.subscriptions}  # not the canceled one
    first, second = (subs[str(i)] for i in ledger.subscriptions)
    assert all(s["pause_collection"] == {"behavior": "void"} for s in subs.values())
    assert all(s["collection_method"] == "send_invoice" for s in subs.values())
    flat_item, metered_item = first["items"]["data"]
    assert flat_item["quantity"] == 1 and "quantity" not in metered_item
    assert first["discounts"] == [{"coupon": coupons["LAUNCH20"]["id"]}]
    assert second["items"]["data"][0]["quantity"] == 5
    # Stripe's own first-period invoices were deleted: only the two ledger invoices remain
    invoices = by_meta(fake, "invoice", "omni_invoice_id")
    assert len(fake.objects("invoice")) == 2
    open_inv = invoices[str(ledger.open_invoice)]
    assert open_inv["number"] == "INV-2026-000001" and open_inv["status"] == "open"
    assert open_inv["total"] == 48932 and open_inv["auto_advance"] is False
    assert open_inv["days_until_due"] == 14
    assert [(li["description"], li["amount"]) for li in open_inv["lines"]["data"]] == [
        ("Omni platform, October", 49900),
        ("LLM input tokens", 1500),
        ("Discount", -10280),
        ("VAT 19 %", 7812),
    ]
    paid_inv = invoices[str(ledger.paid_invoice)]
    assert paid_inv["status"] == "paid" and paid_inv["paid_out_of_band"] is True
    posts = [(path, key) for method, path, key in fake.calls if method == "POST"]
    assert posts and all(key and key.startswith("omni-") for _, key in posts)
    assert len({key for _, key in posts}) == len(posts)  # one key per write
    assert [m for m, _, _ in fake.calls if m == "DELETE"] == ["DELETE", "DELETE"]  # the drafts

    assert all(stripe_ids(Product).values()) and all(stripe_ids(Price).values())
    assert all(stripe_ids(Customer).values()) and all(stripe_ids(Coupon).values())
    subs_ids = stripe_ids(Subscription)
    assert subs_ids[ledger.canceled_subscription] is None
    assert all(subs_ids[i] for i in ledger.subscriptions)
    assert stripe_ids(Invoice)[ledger.draft_invoice] is None

    # A second push finds nothing to do and sends nothing.
    before = fake.request_count
    assert push_all(FINANCE).total_created == 0
    assert fake.request_count == before

    # The customer pays through Stripe, in two parts; the pull records both payments.
    in_id = open_inv["id"]
    fake.pay_invoice(in_id, 20000)
    fake.pay_invoice(in_id)  # the rest: payment_succeeded, then invoice.paid
    pulled = pull_events(FINANCE, page_size=2)
    assert pulled.fetched == 3 and pulled.applied == 2 and pulled.counts["unchanged"] == 1
    invoice = ledger_row(Invoice, ledger.open_invoice)
    assert invoice.status == "paid" and invoice.amount_paid == 48932
    with unit_of_work(read_only=True) as s:
        payments = s.scalars(select(Payment).order_by(Payment.id)).all()
        assert [(p.amount, p.method) for p in payments] == [(20000, "stripe"), (28932, "stripe")]
        assert all(p.stripe_id and p.stripe_id.startswith("pi_") for p in payments)
        actions = set(s.scalars(select(AuditEntry.action).where(AuditEntry.actor == "fiona")))
        assert {"billing.stripe.push", "billing.stripe.pull", "billing.stripe.event"} <= actions

    status = sync_status(FINANCE)
    assert status.enabled and status.mode == "test" and status.pending_total == 0
    assert status.events_by_via == {"poll": 3} and status.events_cursor == pulled.cursor
    assert status.last_push_at is not None and status.last_push["created"]["product"] == 0
    assert status.last_error is None


def test_push_resumes_after_failing_half_way(
    sqlite_db: str, fake: FakeStripe, stripe_env: Callable[..., None]
) -> None:
    ledger = build_ledger()
    stripe_env()
    # The first product's answer is lost once: the SDK retries with the same key, Stripe replays.
    fake.fail(500, path="/v1/products", after_commit=True)
    # The second customer is created, then every answer fails: the push stops there.
    fake.fail(500, path="/v1/customers", skip=1, times=3, after_commit=True)
    with pytest.raises(StripeUnavailable, match=r"HTTP 500.*next run resumes"):
        push_all(FINANCE)
    assert fake.count("product") == 2 and fake.replays == 1
    assert fake.count("customer") == 2  # Stripe has both; the ledger knows only the first
    ids = stripe_ids(Customer)
    assert ids[ledger.customers[0]] and ids[ledger.customers[1]] is None
    assert all(stripe_ids(Price).values()) and not any(stripe_ids(Coupon).values())
    failed = sync_status(FINANCE)
    assert failed.last_error_operation == "push" and "HTTP 500" in (failed.last_error or "")
    assert failed.pending_total == 2 + 2 + 2 + 1  # subscriptions, invoices, coupons, a customer

    report = push_all(FINANCE)
    assert report.created["customer"] == 1 and report.created["product"] == 0
    assert fake.count("customer") == 2 and fake.replays == 2  # the lost answer was replayed
    customer_keys = [
        r.headers["idempotency-key"] for r in fake.requests if r.path == "/v1/customers"
    ]
    assert customer_keys[-1] == customer_keys[1]  # the same key as the failed attempt
    for kind, n in ALL_CREATED.items():
        assert fake.count(kind) == n + (2 if kind == "invoice" else 0)  # + Stripe's first drafts
    assert sync_status(FINANCE).last_error is None
    with unit_of_work(read_only=True) as s:
        outcomes = s.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "billing.stripe.push")
        ).all()
    assert outcomes == ["failed", "ok"]


def test_vendor_errors_are_translated(
    sqlite_db: str, fake: FakeStripe, stripe_env: Callable[..., None]
) -> None:
    build_ledger(bad_email=True)
    stripe_env("sk_test_wrong_key_123")
    with pytest.raises(ConfigurationError, match="check that OMNI_STRIPE_API_KEY") as info:
        push_all(FINANCE)
    assert "wrong_key" not in info.value.message  # Stripe quotes the key; the console does not

    stripe_env()
    with pytest.raises(StripeRequestRejected) as rejected:
        push_all(FINANCE)
    assert isinstance(rejected.value, ValidationError) and rejected.value.param == "email"
    assert "(parameter email): Invalid email address: not-an-email" in rejected.value.message
    assert "Invalid email" in (sync_status(FINANCE).last_error or "")

    gateway = StripeGateway(fake.api_key, fake.url)
    gateway.create("product", {"name": "A"}, "key-1")
    with pytest.raises(Conflict, match="same idempotency key"):
        gateway.create("product", {"name": "B"}, "key-1")
    fake.fail(429, path="/v1/products")
    with pytest.raises(StripeUnavailable, match="rate limiting"):
        gateway.create("product", {"name": "C"}, "key-2")
    offline = StripeGateway("sk_test_x", closed_port_url(), max_network_retries=0)
    with pytest.raises(StripeUnavailable, match=r"unreachable at 127\.0\.0\.1"):
        offline.create("product", {"name": "D"}, "key-3")


def test_sync_is_off_without_a_key(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMNI_STRIPE_API_KEY", raising=False)
    reload_settings()
    assert not sync_enabled()
    for call in (push_all, pull_events):
        with pytest.raises(ConfigurationError, match="Stripe sync is off: set OMNI_STRIPE_API_KEY"):
            call(FINANCE)
    create_product(FINANCE, "platform", "Platform")  # the ledger works as before
    status = sync_status(FINANCE)
    assert not status.enabled and status.mode == "off" and status.message == SYNC_OFF
    assert status.counts[0].kind == "products" and status.counts[0].pending == 1
    runner = CliRunner()
    result = runner.invoke(stripe_app, ["push"])
    assert result.exit_code == 1 and "Stripe sync is off" in result.output
    result = runner.invoke(stripe_app, ["status"])
    assert (
        result.exit_code == 0
        and "products" in result.output
        and "Stripe sync is off" in result.output
    )
    assert runner.invoke(webhooks_app, ["serve", "--help"]).exit_code == 0


def test_roles_without_billing_sync_are_refused(sqlite_db: str) -> None:
    with pytest.raises(PermissionDenied, match=r"billing\.sync"):
        push_all(ML)
    with pytest.raises(PermissionDenied, match=r"billing\.sync"):
        pull_events(ML)
    with pytest.raises(PermissionDenied, match=r"billing\.read"):
        sync_status(ML)
    with unit_of_work(read_only=True) as s:
        denied = s.scalar(
            select(func.count()).where(AuditEntry.actor == "mia", AuditEntry.outcome == "denied")
        )
    assert denied == 3


def test_pull_pages_through_events_and_applies_each_once(
    sqlite_db: str, fake: FakeStripe, stripe_env: Callable[..., None]
) -> None:
    ledger = build_ledger()
    stripe_env()
    push_all(FINANCE)
    in_id = stripe_ids(Invoice)[ledger.open_invoice]
    sub_id = stripe_ids(Subscription)[ledger.subscriptions[0]]
    assert in_id and sub_id
    fake.emit("product.created", fake.objects("product")[0])  # ignored
    fake.fail_invoice_payment(in_id)  # Acme's subscription becomes past_due
    fake.pay_invoice(in_id)  # payment_succeeded (applied) + invoice.paid (unchanged)
    fake.set_subscription_status(sub_id, "active")  # Stripe says it is current again
    fake.emit("invoice.paid", {"id": "in_elsewhere", "object": "invoice", "amount_paid": 5})
    dispute = fake.dispute(in_id)
    fake.dispute(
        in_id,
        status="won",
        event_type="charge.dispute.closed",
        dispute_id=dispute["data"]["object"]["id"],
    )
    report = pull_events(FINANCE, page_size=3)
    assert report.fetched == 8
    assert report.counts == {"applied": 5, "unchanged": 1, "ignored": 1, "unknown": 1}
    assert sum(1 for r in fake.requests if r.path == "/v1/events") == 3  # 8 events, 3 a page
    invoice = ledger_row(Invoice, ledger.open_invoice)
    assert invoice.status == "paid"
    assert ledger_row(Subscription, ledger.subscriptions[0]).status == "active"
    with unit_of_work(read_only=True) as s:
        disputes = s.scalars(select(Dispute)).all()
        assert [(d.status, d.invoice_id, d.amount, d.currency) for d in disputes] == [
            ("won", ledger.open_invoice, 48932, "EUR")
        ]
        outcomes = sorted(s.execute(select(StripeEvent.type, StripeEvent.outcome)).all())
    assert ("product.created", "ignored") in outcomes
    assert ("invoice.paid", "no new payment: already recorded") in outcomes
    assert ("invoice.paid", "unknown object: no ledger invoice in_elsewhere") in outcomes
    from core.billing.stripe.status import recent_events

    shown = recent_events(FINANCE, limit=5)
    assert len(shown) == 5 and {e.via for e in shown} == {"poll"}

    assert pull_events(FINANCE, page_size=3).fetched == 0  # nothing newer than the cursor
    with unit_of_work() as s:  # forget the cursor: every event returns, and is skipped by id
        s.delete(s.get(SyncState, "events_cursor"))
    again = pull_events(FINANCE, page_size=3)
    assert again.fetched == 8 and again.duplicates == 8
    with unit_of_work(read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 1
        assert s.scalar(select(func.count()).select_from(StripeEvent)) == 8


def test_interrupted_pull_resumes_after_the_last_applied_event(
    sqlite_db: str, fake: FakeStripe, stripe_env: Callable[..., None]
) -> None:
    stripe_env()
    first = fake.emit("customer.created", {"id": "cus_a", "object": "customer"})
    assert pull_events(FINANCE).cursor == first["id"]
    later = [fake.emit("customer.created", {"id": f"cus_{i}"})["id"] for i in range(5)]
    fake.fail(429, path="/v1/events", skip=1)  # the second page is refused
    with pytest.raises(StripeUnavailable, match="rate limiting"):
        pull_events(FINANCE, page_size=2)
    with unit_of_work(read_only=True) as s:
        stored = set(s.scalars(select(StripeEvent.id)))
    assert stored == {first["id"], *later[:2]}  # oldest first, each committed with the cursor
    assert sync_status(FINANCE).events_cursor == later[1]
    resumed = pull_events(FINANCE, page_size=2)
    assert resumed.fetched == 3 and resumed.counts == {"ignored": 3} and resumed.cursor == later[-1]
    # A cursor Stripe no longer has (events expire after 30 days): read everything again
    with unit_of_work() as s:
        s.get(SyncState, "events_cursor").value = '{"id": "evt_expired"}'
    again = pull_events(FINANCE, page_size=4)
    assert again.fetched == 6 and again.duplicates == 6 and again.cursor == later[-1]


def test_event_handlers_change_the_ledger_or_say_why_not(sqlite_db: str) -> None:
    ledger = build_ledger()
    with unit_of_work() as s:
        s.get(Invoice, ledger.open_invoice).stripe_id = "in_open"
        s.get(Invoice, ledger.paid_invoice).stripe_id = "in_paid"
        s.get(Subscription, ledger.subscriptions[0]).stripe_id = "sub_1"
        s.get(Subscription, ledger.subscriptions[1]).stripe_id = "sub_2"
    seq = iter(range(1, 100))

    def apply(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> Any:
        event = {
            "id": event_id or f"evt_{next(seq)}",
            "type": event_type,
            "created": 1_790_000_000,
            "data": {"object": obj},
        }
        with unit_of_work() as s:
            return apply_event(s, event, "poll", FINANCE)

    refused = apply("invoice.voided", {"id": "in_paid"})
    assert refused.kind == "review" and "the ledger has as paid" in refused.outcome
    assert ledger_row(Invoice, ledger.paid_invoice).status == "paid"
    assert apply("invoice.marked_uncollectible", {"id": "in_open"}).kind == "applied"
    assert apply("invoice.marked_uncollectible", {"id": "in_open"}).kind == "unchanged"
    paid = apply(
        "invoice.payment_succeeded",
        {"id": "in_open", "amount_paid": 48932, "charge": "ch_legacy"},
        "evt_pay",
    )
    assert paid.kind == "applied" and "now paid" in paid.outcome
    assert apply("invoice.payment_succeeded", {"id": "in_open"}, "evt_pay").duplicate
    with unit_of_work(read_only=True) as s:
        assert s.scalars(select(Payment.stripe_id)).all() == ["ch_legacy"]
    opened = {"id": "dp_1", "charge": "ch_legacy", "amount": 900, "status": "needs_response"}
    dispute = apply("charge.dispute.created", {**opened, "currency": "eur"})
    assert dispute.kind == "applied" and f"invoice #{ledger.open_invoice}" in dispute.outcome

    ended = apply("customer.subscription.deleted", {"id": "sub_2", "ended_at": 1_790_000_100})
    assert ended.kind == "applied"
    sub = ledger_row(Subscription, ledger.subscriptions[1])
    assert sub.status == "canceled" and sub.ended_at is not None
    assert apply("customer.subscription.updated", {"id": "sub_2", "status": "active"}).kind == (
        "review"
    )
    assert apply("customer.subscription.updated", {"id": "sub_1", "status": "paused"}).kind == (
        "unchanged"
    )
    failed = apply("invoice.payment_failed", {"id": "in_nowhere", "customer": "cus_unknown"})
    assert failed.kind == "unknown" and failed.outcome.startswith("unknown object")
    assert apply("customer.created", {"id": "cus_x"}).kind == "ignored"
    odd = apply("charge.dispute.created", {"id": "dp_2", "amount": "lots"})
    assert odd.kind == "review" and "unexpected payload (ValueError)" in odd.outcome
    with pytest.raises(ValidationError, match="Not a Stripe event"):
        apply("", {})
