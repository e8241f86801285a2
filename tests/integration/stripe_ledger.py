"""A small billing ledger for the Stripe sync tests, built straight from the models and the
catalogue's session-level helpers (no demo seeder): every price scheme, both coupon kinds, two
customers with subscriptions, an open and a paid invoice, and rows the push must leave alone (a
canceled subscription, a draft invoice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from core.billing.catalog import PriceSpec, add_coupon, add_price, add_product
from core.billing.models import (
    Customer,
    Invoice,
    InvoiceLine,
    Subscription,
    SubscriptionItem,
)
from core.billing.pricing import Tier
from core.db import unit_of_work
from core.orgs.models import Organisation
from tests.helpers import ADMIN

T0 = datetime(2026, 9, 1, tzinfo=UTC)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Ledger:
    customers: list[int]
    subscriptions: list[int]  # the two live ones
    canceled_subscription: int
    open_invoice: int  # 48 932 EUR cents, 19 % VAT, 20 % discount
    paid_invoice: int  # 9 225 EUR cents, paid by bank transfer
    draft_invoice: int


def _org(session: Any, name: str, country: str, domain: str) -> Organisation:
    org = Organisation(
        name=name,
        country=country,
        plan="pro",
        industry="software",
        employees=40,
        domain=domain,
        signed_up_at=T0,
    )
    session.add(org)
    session.flush()
    return org


def _customer(session: Any, org: Organisation, email: str, vat_id: str | None = None) -> Customer:
    customer = Customer(
        organisation_id=org.id,
        name=org.name,
        email=email,
        country=org.country,
        currency="EUR",
        vat_id=vat_id,
    )
    session.add(customer)
    session.flush()
    return customer


def _subscription(
    session: Any, customer: Customer, items: list[tuple[int, int]], **fields: Any
) -> Subscription:
    fields.setdefault("status", "active")
    sub = Subscription(customer_id=customer.id, started_at=T0, **fields)
    session.add(sub)
    session.flush()
    for price_id, quantity in items:
        session.add(
            SubscriptionItem(
                subscription_id=sub.id, price_id=price_id, quantity=quantity, started_at=T0
            )
        )
    session.flush()
    return sub


def add_invoice(
    session: Any,
    customer: Customer,
    lines: list[tuple[str, int]],
    *,
    status: str,
    number: str | None,
    period_start: datetime = OCT,
    discount: int = 0,
    tax_rate_bp: int = 0,
    **fields: Any,
) -> Invoice:
    subtotal = sum(amount for _, amount in lines)
    tax = (subtotal - discount) * tax_rate_bp // 10_000
    issued = NOV if status != "draft" else None
    invoice = Invoice(
        customer_id=customer.id,
        number=number,
        status=status,
        currency=customer.currency,
        period_start=period_start,
        period_end=period_start + timedelta(days=31),
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        tax_rate_bp=tax_rate_bp,
        total=subtotal - discount + tax,
        issued_at=issued,
        due_at=issued + timedelta(days=14) if issued else None,
        **fields,
    )
    session.add(invoice)
    session.flush()
    for description, amount in lines:
        session.add(
            InvoiceLine(
                invoice_id=invoice.id,
                kind="subscription",
                description=description,
                amount=amount,
                period_start=period_start,
                period_end=period_start + timedelta(days=31),
            )
        )
    session.flush()
    return invoice


def build_ledger(*, bad_email: bool = False) -> Ledger:
    with unit_of_work() as s:
        add_product(s, ADMIN, "platform", "Omni platform", "The ops console")
        add_product(s, ADMIN, "usage", "Usage")
        flat = add_price(s, ADMIN, PriceSpec("platform", "platform-eur", "EUR", "flat", "49900"))
        seats = add_price(s, ADMIN, PriceSpec("platform", "seats-eur", "EUR", "per_seat", "1500"))
        tokens_in = add_price(
            s,
            ADMIN,
            PriceSpec(
                "usage", "tokens-in-eur", "EUR", "per_unit", "0.015", metric="llm_input_tokens"
            ),
        )
        add_price(
            s,
            ADMIN,
            PriceSpec(
                "usage", "calls-eur", "EUR", "package", "500", metric="api_calls", package_size=1000
            ),
        )
        add_price(
            s,
            ADMIN,
            PriceSpec(
                "usage",
                "storage-eur",
                "EUR",
                "graduated",
                metric="kb_storage_gb",
                tiers=[Tier(10, Decimal(0), 0), Tier(None, Decimal("25.5"), 100)],
            ),
        )
        add_price(
            s,
            ADMIN,
            PriceSpec(
                "usage",
                "tokens-out-eur",
                "EUR",
                "volume",
                metric="llm_output_tokens",
                tiers=[Tier(1_000_000, Decimal("0.02")), Tier(None, Decimal("0.01"))],
            ),
        )
        launch = add_coupon(
            s, ADMIN, "LAUNCH20", "Launch", percent_off_bp=2000, duration="repeating",
            duration_months=3,
        )  # fmt: skip
        add_coupon(s, ADMIN, "TENOFF", "Ten off", amount_off=1000, currency="EUR")
        acme = _customer(
            s,
            _org(s, "Acme GmbH", "DE", "acme.example"),
            "not-an-email" if bad_email else "billing@acme.example",
            vat_id="DE123456789",
        )
        brio = _customer(s, _org(s, "Brio Ltd", "IE", "brio.example"), "billing@brio.example")
        sub1 = _subscription(s, acme, [(flat.id, 1), (tokens_in.id, 1)], coupon_id=launch.id)
        sub2 = _subscription(s, brio, [(seats.id, 5)])
        gone = _subscription(
            s, brio, [(flat.id, 1)], status="canceled", ended_at=T0 + timedelta(days=3)
        )
        open_inv = add_invoice(
            s,
            acme,
            [("Omni platform, October", 49900), ("LLM input tokens", 1500)],
            status="open",
            number="INV-2026-000001",
            discount=10280,
            tax_rate_bp=1900,
        )
        paid_inv = add_invoice(
            s,
            brio,
            [("5 seats, October", 7500)],
            status="paid",
            number="INV-2026-000002",
            tax_rate_bp=2300,
            amount_paid=9225,
            paid_at=NOV + timedelta(days=2),
        )
        draft = add_invoice(
            s, brio, [("5 seats, November", 7500)], status="draft", number=None, period_start=NOV
        )
        return Ledger(
            customers=[acme.id, brio.id],
            subscriptions=[sub1.id, sub2.id],
            canceled_subscription=gone.id,
            open_invoice=open_inv.id,
            paid_invoice=paid_inv.id,
            draft_invoice=draft.id,
        )
