"""The invoice run for a month: one invoice per customer with anything to bill.

Idempotent by construction. Invoices are unique per (customer, period) in the database, and the
run writes customers in batches, one transaction each. Running a period again, or after a crash
half-way, creates the invoices still missing, rewrites a draft whose inputs changed (late usage,
a plan change), and leaves every other invoice alone: each customer ends with exactly one
correct invoice. Finalised invoices are never touched; corrections go through credit notes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.invoice_builder import Draft, SubscriptionFacts, build_draft
from core.billing.models import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    PendingItem,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from core.billing.periods import label, parse_period
from core.billing.subscriptions import end_trials
from core.billing.usage_lake import UsageTotals, period_usage
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import Conflict, ValidationError, stored_error_text

BATCH_SIZE = 250


@dataclass(frozen=True)
class RunReport:
    run_id: int
    period: str
    customers: int
    created: int
    updated: int
    unchanged: int
    finalised_skipped: int
    total_by_currency: dict[str, int]


@dataclass
class _Facts:
    customers: dict[int, Customer]
    subscriptions: dict[int, list[SubscriptionFacts]]
    pending: dict[int, list[PendingItem]]


def load_facts(session: Session, start: datetime, end: datetime) -> _Facts:
    """Everything the period's invoices depend on, in a handful of queries."""
    subs = session.scalars(
        select(Subscription).where(
            Subscription.started_at < end,
            or_(Subscription.ended_at.is_(None), Subscription.ended_at > start),
        )
    ).all()
    by_sub: dict[int, list[tuple[SubscriptionItem, Price, str]]] = defaultdict(list)
    if subs:
        rows = session.execute(
            select(SubscriptionItem, Price, Product.name)
            .join(Price, Price.id == SubscriptionItem.price_id)
            .join(Product, Product.id == Price.product_id)
            .where(
                SubscriptionItem.subscription_id.in_([s.id for s in subs]),
                SubscriptionItem.started_at < end,
                or_(SubscriptionItem.ended_at.is_(None), SubscriptionItem.ended_at > start),
            )
        ).all()
        for item, price, product in rows:
            by_sub[item.subscription_id].append((item, price, product))
    coupons = {c.id: c for c in session.scalars(select(Coupon))}
    subscriptions: dict[int, list[SubscriptionFacts]] = defaultdict(list)
    for sub in subs:
        facts = SubscriptionFacts(sub, by_sub[sub.id], coupons.get(sub.coupon_id or 0))
        subscriptions[sub.customer_id].append(facts)
    drafts = select(Invoice.id).where(Invoice.period_start == start, Invoice.status == "draft")
    pending: dict[int, list[PendingItem]] = defaultdict(list)
    for pending_item in session.scalars(
        select(PendingItem).where(
            PendingItem.effective_at < end,
            or_(PendingItem.invoice_id.is_(None), PendingItem.invoice_id.in_(drafts)),
        )
    ):
        pending[pending_item.customer_id].append(pending_item)
    ids = set(subscriptions) | set(pending)
    customers = (
        {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
        if ids
        else {}
    )
    return _Facts(customers, subscriptions, pending)


def build_drafts(facts: _Facts, usage: UsageTotals, start: datetime, end: datetime) -> list[Draft]:
    seller = get_settings().billing_seller_country
    per_customer: dict[int, dict[str, int]] = defaultdict(dict)
    for (customer_id, metric), quantity in usage.items():
        per_customer[customer_id][metric] = quantity
    drafts = []
    for customer_id in sorted(facts.customers):
        draft = build_draft(
            facts.customers[customer_id],
            facts.subscriptions.get(customer_id, []),
            per_customer.get(customer_id, {}),
            facts.pending.get(customer_id, []),
            start,
            end,
            seller,
        )
        if draft.lines:
            drafts.append(draft)
    return drafts


def _totals(draft: Draft, run_id: int) -> dict[str, object]:
    return {
        "subtotal": draft.subtotal,
        "discount": draft.discount,
        "tax": draft.tax_amount,
        "total": draft.total,
        "tax_rate_bp": draft.tax.rate_bp,
        "tax_note": draft.tax.note,
        "tax_country": draft.tax.country,
        "input_digest": draft.digest(),
        "run_id": run_id,
        "updated_at": utcnow(),
    }


def _line_rows(invoice_id: int, draft: Draft) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "invoice_id": invoice_id,
            "kind": ln.kind,
            "description": ln.description[:300],
            "price_id": ln.price_id,
            "quantity": ln.quantity,
            "amount": ln.amount,
            "period_start": ln.period_start,
            "period_end": ln.period_end,
        }
        for ln in draft.lines
    ]
    if draft.discount:
        rows.append(
            {
                "invoice_id": invoice_id,
                "kind": "discount",
                "description": f"Discount: {draft.discount_label}"[:300],
                "price_id": None,
                "quantity": 1,
                "amount": -draft.discount,
                "period_start": None,
                "period_end": None,
            }
        )
    return rows


def write_batch(
    session: Session, drafts: list[Draft], start: datetime, end: datetime, run_id: int
) -> tuple[int, int, int, int]:
    """Insert missing invoices, rewrite changed drafts; (created, updated, unchanged, locked).
    New invoices and all lines go in as bulk inserts: this is the invoice run's hot path."""
    existing = {
        inv.customer_id: inv
        for inv in session.scalars(
            select(Invoice)
            .where(
                Invoice.period_start == start,
                Invoice.kind == "period",
                Invoice.customer_id.in_([d.customer_id for d in drafts]),
            )
            .with_for_update()
        )
    }
    new = [d for d in drafts if d.customer_id not in existing]
    targets: list[tuple[int, Draft]] = []
    if new:
        rows = [
            {
                "customer_id": d.customer_id,
                "kind": "period",
                "status": "draft",
                "currency": d.currency,
                "period_start": start,
                "period_end": end,
                **_totals(d, run_id),
            }
            for d in new
        ]
        ids = session.scalars(
            insert(Invoice).returning(Invoice.id, sort_by_parameter_order=True), rows
        ).all()
        targets += list(zip(ids, new, strict=True))
    updated = unchanged = locked = 0
    for draft in drafts:
        invoice = existing.get(draft.customer_id)
        if invoice is None:
            continue
        if invoice.status != "draft":
            locked += 1
        elif invoice.input_digest == draft.digest():
            unchanged += 1
        else:
            session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
            session.execute(
                update(PendingItem)
                .where(PendingItem.invoice_id == invoice.id)
                .values(invoice_id=None)
            )
            for key, value in _totals(draft, run_id).items():
                setattr(invoice, key, value)
            targets.append((invoice.id, draft))
            updated += 1
    session.flush()
    lines = [row for invoice_id, draft in targets for row in _line_rows(invoice_id, draft)]
    if lines:
        session.execute(insert(InvoiceLine), lines)
    for invoice_id, draft in targets:
        pending_ids = [ln.pending_id for ln in draft.lines if ln.pending_id is not None]
        if pending_ids:
            session.execute(
                update(PendingItem)
                .where(PendingItem.id.in_(pending_ids))
                .values(invoice_id=invoice_id)
            )
    return len(new), updated, unchanged, locked


def run_invoices(
    actor: Actor,
    period: str,
    *,
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> RunReport:
    """Draft the invoices of `period` ("YYYY-MM"), which must have ended. `after_batch` is called
    with the batch number after each committed batch (progress; tests inject crashes there)."""
    require(actor, Permission.BILLING_INVOICE, action="billing.invoice.run")
    start, end = parse_period(period)
    now = now or utcnow()
    if end > now:
        raise ValidationError(
            f"{label(start)} has not ended: its invoices can be run from {end:%d %B %Y} "
            "(usage is billed in arrears)."
        )
    with unit_of_work() as session:
        end_trials(session, now)
        run = InvoiceRun(period_start=start, actor=actor.username, status="running")
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        with unit_of_work() as session:
            facts = load_facts(session, start, end)
            usage = period_usage(session, start, end)
        drafts = build_drafts(facts, usage, start, end)
        counts = [0, 0, 0, 0]
        for number, i in enumerate(range(0, len(drafts), batch_size), start=1):
            batch = drafts[i : i + batch_size]
            counts = [
                a + b
                for a, b in zip(counts, _write_with_retry(batch, start, end, run_id), strict=True)
            ]
            if after_batch is not None:
                after_batch(number)
    except Exception as exc:
        with unit_of_work() as session:
            failed = session.get(InvoiceRun, run_id)
            if failed is not None:
                failed.status, failed.finished_at = "failed", utcnow()
                failed.error = stored_error_text(exc)
            record(
                session,
                actor,
                "billing.invoice.run",
                f"period:{label(start)}",
                {"run": run_id},
                outcome="failed",
            )
        raise
    totals: dict[str, int] = defaultdict(int)
    for draft in drafts:
        totals[draft.currency] += draft.total
    created, updated, unchanged, locked = counts
    with unit_of_work() as session:
        done = session.get(InvoiceRun, run_id)
        assert done is not None
        done.status, done.finished_at = "done", utcnow()
        done.created, done.updated, done.unchanged = created, updated, unchanged + locked
        record(
            session,
            actor,
            "billing.invoice.run",
            f"period:{label(start)}",
            {
                "run": run_id,
                "created": created,
                "updated": updated,
                "unchanged": unchanged,
                "finalised": locked,
            },
        )
    return RunReport(
        run_id, label(start), len(drafts), created, updated, unchanged, locked, dict(totals)
    )


def _write_with_retry(
    batch: list[Draft], start: datetime, end: datetime, run_id: int
) -> tuple[int, int, int, int]:
    """A concurrent run may insert one of these invoices first: the unique constraint refuses
    ours, and the retry then finds it and compares digests instead of duplicating it."""
    for attempt in range(2):
        try:
            with unit_of_work() as session:
                return write_batch(session, batch, start, end, run_id)
        except IntegrityError:
            if attempt:
                raise Conflict(
                    "Another invoice run for this period is writing; try again."
                ) from None
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class RunRow:
    id: int
    period: str
    actor: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    created: int
    updated: int
    unchanged: int
    error: str | None


def list_runs(actor: Actor, limit: int = 20) -> list[RunRow]:
    require(actor, Permission.BILLING_READ, action="billing.invoice.read")
    with unit_of_work(read_only=True) as session:
        runs = session.scalars(select(InvoiceRun).order_by(InvoiceRun.id.desc()).limit(limit))
        return [
            RunRow(
                r.id,
                label(r.period_start),
                r.actor,
                r.status,
                r.started_at,
                r.finished_at,
                r.created,
                r.updated,
                r.unchanged,
                r.error,
            )
            for r in runs
        ]
