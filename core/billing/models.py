"""Billing ledger tables: the catalogue (products, prices, coupons), customers and their
subscriptions, metered usage, invoices with their lines, credit notes, payments and disputes, and
the Stripe sync bookkeeping.

Money is always an integer of minor units next to an ISO 4217 currency (`core.billing.pricing`).
Prices are never edited, as in Stripe: a new price is a new row, so an old invoice still shows what
it was charged at. Every row that mirrors a Stripe object carries its `stripe_id` once synced.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UTCDateTime
from core.llm.models import BigId


class Product(Base):
    __tablename__ = "billing_products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Price(Base):
    """How a product is charged in one currency. `scheme` is one of `core.billing.catalog.SCHEMES`:
    flat (amount per period), per_seat (amount x quantity), and the metered ones, per_unit,
    package, graduated and volume, priced on a usage `metric`."""

    __tablename__ = "billing_prices"
    __table_args__ = (Index("ix_billing_prices_product_currency", "product_id", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("billing_products.id", ondelete="RESTRICT"), index=True
    )
    lookup_key: Mapped[str] = mapped_column(String(64), unique=True)
    nickname: Mapped[str] = mapped_column(String(120), default="")
    currency: Mapped[str] = mapped_column(String(3))
    scheme: Mapped[str] = mapped_column(String(16))
    interval: Mapped[str] = mapped_column(String(8), default="month")
    # minor units per unit (flat, per_seat, per_unit) as a decimal string: usage prices are often
    # fractions of a cent per unit (e.g. "0.015" cents per token)
    unit_amount: Mapped[str] = mapped_column(String(40), default="0")
    package_size: Mapped[int | None] = mapped_column(Integer)
    package_round_up: Mapped[bool] = mapped_column(Boolean, default=True)
    tiers_json: Mapped[str | None] = mapped_column(
        Text
    )  # [{"up_to", "unit_amount", "flat_amount"}]
    metric: Mapped[str | None] = mapped_column(String(64))  # usage metric, metered prices only
    unit_label: Mapped[str] = mapped_column(String(32), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Customer(Base):
    """The billing side of a customer organisation."""

    __tablename__ = "billing_customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), unique=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    country: Mapped[str] = mapped_column(String(2), index=True)
    currency: Mapped[str] = mapped_column(String(3), index=True)
    vat_id: Mapped[str | None] = mapped_column(String(32))
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Coupon(Base):
    __tablename__ = "billing_coupons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    percent_off_bp: Mapped[int | None] = mapped_column(Integer)  # basis points: 2000 = 20 %
    amount_off: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))  # with amount_off only
    duration: Mapped[str] = mapped_column(String(16))  # once | repeating | forever
    duration_months: Mapped[int | None] = mapped_column(Integer)
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Subscription(Base):
    """A customer's subscription. Billed per calendar month in arrears: the invoice for a month
    holds that month's fees (prorated to the second where the subscription started, ended or
    changed during it), its metered usage, and the proration items of plan changes."""

    __tablename__ = "billing_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    trial_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("billing_coupons.id"))
    coupon_starts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SubscriptionItem(Base):
    """One price on a subscription from `started_at` until `ended_at`. A plan change ends the
    old item and starts a new one, so the history (and MRR at any past date) stays readable."""

    __tablename__ = "billing_subscription_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("billing_subscriptions.id", ondelete="CASCADE"), index=True
    )
    price_id: Mapped[int] = mapped_column(ForeignKey("billing_prices.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PendingItem(Base):
    """A charge or credit waiting for the next invoice (proration of a plan change, one-off fee),
    like Stripe's pending invoice items. `invoice_id` is set when an invoice takes it."""

    __tablename__ = "billing_pending_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"), index=True
    )
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("billing_subscriptions.id"))
    description: Mapped[str] = mapped_column(String(300))
    amount: Mapped[int] = mapped_column(BigInteger)  # negative for a credit
    currency: Mapped[str] = mapped_column(String(3))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UsageEvent(Base):
    """Metered usage other than LLM tokens (those are read from the LLM usage ledger), imported
    from CSV. `event_key` is the sender's id for the event: importing a file twice adds nothing."""

    __tablename__ = "billing_usage_events"
    __table_args__ = (UniqueConstraint("event_key", name="uq_billing_usage_events_event_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"), index=True
    )
    metric: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    batch: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invoice(Base):
    """One invoice per customer and billing period (`kind` "period"); the unique constraint is
    what makes an invoice run idempotent even when two runs race or one crashed half-way."""

    __tablename__ = "billing_invoices"
    __table_args__ = (
        UniqueConstraint("customer_id", "period_start", "kind", name="uq_billing_invoices_period"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)  # given at finalisation
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="period")
    status: Mapped[str] = mapped_column(String(16), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    discount: Mapped[int] = mapped_column(BigInteger, default=0)
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_credited: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    tax_note: Mapped[str] = mapped_column(String(200), default="")
    tax_country: Mapped[str] = mapped_column(String(2), default="")
    input_digest: Mapped[str] = mapped_column(String(64), default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoice_runs.id"))
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InvoiceLine(Base):
    __tablename__ = "billing_invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # subscription | usage | proration | discount
    description: Mapped[str] = mapped_column(String(300))
    price_id: Mapped[int | None] = mapped_column(ForeignKey("billing_prices.id"))
    quantity: Mapped[int] = mapped_column(BigInteger, default=1)
    amount: Mapped[int] = mapped_column(BigInteger)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CreditNote(Base):
    __tablename__ = "billing_credit_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)  # tax included, like the invoice total
    tax: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)


class Payment(Base):
    __tablename__ = "billing_payments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))  # stripe | bank_transfer | manual
    reference: Mapped[str] = mapped_column(String(128), default="")
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stripe_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dispute(Base):
    __tablename__ = "billing_disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stripe_id: Mapped[str] = mapped_column(String(64), unique=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InvoiceRun(Base):
    """One run of the invoice generator for a period, with what it did."""

    __tablename__ = "billing_invoice_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class StripeEvent(Base):
    """Every Stripe event applied, by Stripe's id: a re-delivered webhook or a re-pulled page of
    the Events API finds its id here and changes nothing."""

    __tablename__ = "billing_stripe_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    via: Mapped[str] = mapped_column(String(8))  # webhook | poll
    outcome: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SyncState(Base):
    """Small key/value store of the Stripe sync (events cursor, last push, last error)."""

    __tablename__ = "billing_sync_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
