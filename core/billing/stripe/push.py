"""`push_all`: create in Stripe every ledger object that has no `stripe_id` yet, in dependency
order: products, meters, prices, customers, coupons, subscriptions, finalised invoices.

Crash safety, step by step:
- every write carries an idempotency key derived from the ledger row (`mapping.idempotency_key`),
  so a request retried by the SDK, or re-sent by a re-run after a crash, returns the object
  Stripe created the first time instead of a second one;
- each object's Stripe id is stored in a short transaction of its own right after Stripe answers,
  so a push that fails half-way keeps what it did and the next one resumes where it stopped;
- no transaction is open while Stripe is called (SQLite's write lock is never held on a network
  round trip).
Stripe keeps idempotency keys for 24 hours: re-run a failed push within a day. After that, an
object whose creation was cut off between Stripe's answer and the local commit may be created
twice; the orphan carries the same `omni_*` metadata and can be archived in the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.audit.service import record, record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.catalog import METERED
from core.billing.models import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from core.billing.stripe import mapping
from core.billing.stripe.client import ObjectKind, StripeGateway
from core.billing.stripe.state import (
    LAST_PUSH,
    METER_PREFIX,
    clear_error,
    meters,
    namespace,
    put_json,
    put_text,
    save_error,
)
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import stored_error_text

KINDS = ("product", "meter", "price", "customer", "coupon", "subscription", "invoice")
# Subscriptions still running are mirrored; ended ones have nothing left for Stripe to show.
PUSHED_SUBSCRIPTIONS = ("trialing", "active", "past_due")
# Finalised invoices; drafts can still change, void ones were never owed.
PUSHED_INVOICES = ("open", "paid", "uncollectible")
SyncedModel = type[Product] | type[Price] | type[Customer] | type[Coupon]


@dataclass
class PushReport:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())

    def summary(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "skipped": len(self.skipped),
            "warnings": len(self.warnings),
        }

    def describe(self) -> str:
        made = ", ".join(f"{n} {kind}(s)" for kind, n in self.created.items() if n)
        return f"Created in Stripe: {made or 'nothing (everything was already synced)'}."


def push_all(actor: Actor) -> PushReport:
    """Push every unsynced ledger object to Stripe; audited with the counts."""
    require(actor, Permission.BILLING_SYNC, action="billing.stripe.push")
    gateway = StripeGateway.from_settings()
    report = PushReport()
    try:
        _Pusher(gateway, namespace(), report).run()
    except Exception as exc:
        save_error("push", exc)
        record_now(
            actor,
            "billing.stripe.push",
            "stripe",
            {**report.summary(), "error": stored_error_text(exc, 300)},
            outcome="failed",
        )
        raise
    with unit_of_work() as session:
        put_json(session, LAST_PUSH, {"at": utcnow().isoformat(), **report.summary()})
        clear_error(session, "push")
        record(session, actor, "billing.stripe.push", "stripe", report.summary())
    return report


def _pending(model: Any, *where: ColumnElement[bool]) -> list[int]:
    with unit_of_work(read_only=True) as session:
        stmt = select(model.id).where(model.stripe_id.is_(None), *where).order_by(model.id)
        return list(session.scalars(stmt))


def _store(model: Any, ledger_id: int, stripe_id: str) -> None:
    with unit_of_work() as session:
        row = session.get(model, ledger_id, with_for_update=True)
        if row is not None and row.stripe_id is None:
            row.stripe_id = stripe_id


class _Pusher:
    def __init__(self, gateway: StripeGateway, namespace: str, report: PushReport) -> None:
        self.gateway = gateway
        self.namespace = namespace
        self.report = report
        self.days_until_due = get_settings().billing_days_until_due

    def key(self, kind: str, ledger_id: int | str, step: str = "") -> str:
        return mapping.idempotency_key(self.namespace, kind, ledger_id, step)

    def run(self) -> None:
        self.simple("product", Product, lambda s, p: mapping.product_params(p))
        self.meters()
        self.simple("price", Price, self.price_params)
        self.simple("customer", Customer, lambda s, c: mapping.customer_params(c))
        self.simple("coupon", Coupon, lambda s, c: mapping.coupon_params(c))
        for sub_id in _pending(Subscription, Subscription.status.in_(PUSHED_SUBSCRIPTIONS)):
            self.subscription(sub_id)
        for invoice_id in _pending(Invoice, Invoice.status.in_(PUSHED_INVOICES)):
            self.invoice(invoice_id)

    def simple(
        self,
        kind: ObjectKind,
        model: SyncedModel,
        build: Callable[[Session, Any], mapping.Params | str],
    ) -> None:
        """One create per row; `build` returns the params, or a reason to skip the row."""
        for ledger_id in _pending(model):
            with unit_of_work(read_only=True) as session:
                row = session.get(model, ledger_id)
                if row is None:  # deleted since the list was read
                    continue
                params = build(session, row)
            if isinstance(params, str):
                self.report.skipped.append(params)
                continue
            created = self.gateway.create(kind, params, self.key(kind, ledger_id))
            _store(model, ledger_id, created["id"])
            self.report.created[kind] += 1

    def meters(self) -> None:
        with unit_of_work(read_only=True) as session:
            metrics = set(
                session.scalars(
                    select(Price.metric).where(Price.scheme.in_(METERED), Price.metric.is_not(None))
                )
            ) - set(meters(session))
        for metric in sorted(m for m in metrics if m):
            params = mapping.meter_params(self.namespace, metric)
            created = self.gateway.create("meter", params, self.key("meter", metric))
            with unit_of_work() as session:
                put_text(session, METER_PREFIX + metric, created["id"])
            self.report.created["meter"] += 1

    def price_params(self, session: Session, price: Price) -> mapping.Params | str:
        product = session.get(Product, price.product_id)
        if product is None or product.stripe_id is None:
            return f"price {price.lookup_key}: its product is not in Stripe yet"
        meter_id = meters(session).get(price.metric or "")
        return mapping.price_params(price, product.stripe_id, meter_id)

    def subscription(self, sub_id: int) -> None:
        with unit_of_work(read_only=True) as session:
            params = self._subscription_params(session, sub_id)
        if isinstance(params, str):
            self.report.skipped.append(params)
            return
        created = self.gateway.create("subscription", params, self.key("subscription", sub_id))
        # The console's invoice run is the one billing engine: with collection paused (behavior
        # "void") Stripe voids every invoice the subscription would generate, so a customer is
        # never billed twice. The mirror only exists so Stripe shows who is subscribed to what.
        self.gateway.pause_subscription(created["id"], self.key("subscription", sub_id, "pause"))
        first = created.get("latest_invoice")
        if isinstance(first, dict) and first.get("amount_due"):
            # Stripe drafts the first period's invoice when the subscription is created, before
            # the pause applies: remove it (a draft) or void it (already finalised).
            if first.get("status") == "draft":
                self.gateway.delete_draft_invoice(first["id"])
            elif first.get("status") == "open":
                self.gateway.void_invoice(first["id"], self.key("subscription", sub_id, "void"))
        _store(Subscription, sub_id, created["id"])
        self.report.created["subscription"] += 1

    def _subscription_params(self, session: Session, sub_id: int) -> mapping.Params | str:
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        customer = session.get(Customer, sub.customer_id)
        if customer is None or customer.stripe_id is None:
            return f"subscription {sub_id}: its customer is not in Stripe yet"
        rows = session.execute(
            select(SubscriptionItem, Price)
            .join(Price, Price.id == SubscriptionItem.price_id)
            .where(SubscriptionItem.subscription_id == sub_id, SubscriptionItem.ended_at.is_(None))
            .order_by(SubscriptionItem.id)
        ).all()
        if not rows:
            return f"subscription {sub_id}: no current items"
        items = []
        for item, price in rows:
            if price.stripe_id is None:
                return f"subscription {sub_id}: price {price.lookup_key} is not in Stripe yet"
            items.append(mapping.ItemRef(price, price.stripe_id, item.quantity))
        coupon_id = None
        if sub.coupon_id is not None:
            coupon = session.get(Coupon, sub.coupon_id)
            coupon_id = coupon.stripe_id if coupon else None
            if coupon_id is None:
                return f"subscription {sub_id}: its coupon is not in Stripe yet"
        return mapping.subscription_params(
            sub, customer.stripe_id, items, coupon_id, self.days_until_due, utcnow()
        )

    def invoice(self, invoice_id: int) -> None:
        with unit_of_work(read_only=True) as session:
            invoice = session.get(Invoice, invoice_id)
            assert invoice is not None
            customer = session.get(Customer, invoice.customer_id)
            lines = list(
                session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id))
            )
        if customer is None or customer.stripe_id is None:
            self.report.skipped.append(
                f"invoice {invoice.number or invoice_id}: customer not in Stripe yet"
            )
            return
        days = mapping.days_until_due(invoice, self.days_until_due)
        params = mapping.invoice_params(invoice, customer.stripe_id, days)
        created = self.gateway.create("invoice", params, self.key("invoice", invoice_id))
        for step, item in mapping.invoice_item_params(
            invoice, lines, customer.stripe_id, created["id"]
        ):
            self.gateway.create("invoiceitem", item, self.key("invoice", invoice_id, step))
        final = self.gateway.finalize_invoice(
            created["id"], self.key("invoice", invoice_id, "finalize")
        )
        if final.get("total") != invoice.total:
            self.report.warnings.append(
                f"invoice {invoice.number or invoice_id}: Stripe's total {final.get('total')} "
                f"differs from the ledger's {invoice.total}"
            )
        # Mirror a state the ledger reached without Stripe (bank transfer, write-off).
        if invoice.status == "paid" and final.get("status") != "paid":
            self.gateway.mark_paid_out_of_band(
                created["id"], self.key("invoice", invoice_id, "paid")
            )
        elif invoice.status == "uncollectible":
            self.gateway.mark_uncollectible(
                created["id"], self.key("invoice", invoice_id, "uncollectible")
            )
        _store(Invoice, invoice_id, created["id"])
        self.report.created["invoice"] += 1
