"""Accounts receivable ageing: what customers owe on open and uncollectible invoices, by how long
it is past due.

Days past due count calendar days (UTC) from the due date, as accountants date things: an invoice
due today is still current, one due yesterday is 1 day past due. An invoice counts only if it was
issued by `as_of`; its status and payments are the current ones (they are not historised), so an
ageing "as of" a past date shows today's balances of the invoices that existed then.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing import fx
from core.billing.metrics_frames import as_instant, check_currency
from core.billing.models import Customer, Invoice
from core.clock import utcnow
from core.db import unit_of_work

OWED_STATUSES = ("open", "uncollectible")
BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_90_plus")
BUCKET_LABELS = {
    "current": "Current",
    "days_1_30": "1-30 days",
    "days_31_60": "31-60 days",
    "days_61_90": "61-90 days",
    "days_90_plus": "90+ days",
}
CUSTOMER_COLUMNS = ["customer_id", "customer", "invoices", *BUCKETS, "overdue", "total"]
INVOICE_COLUMNS = [
    "invoice_id",
    "number",
    "customer_id",
    "customer",
    "status",
    "due_at",
    "days_past_due",
    "bucket",
    "invoice_currency",
    "amount_due_invoice_currency",
    "amount_due",
]


def bucket_of(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "days_90_plus"


def days_past_due(due_at: datetime | None, as_of: datetime) -> int:
    if due_at is None:  # an open invoice always has one; a missing one is not overdue
        return 0
    return (as_of.astimezone(UTC).date() - due_at.astimezone(UTC).date()).days


@dataclass(frozen=True)
class Ageing:
    currency: str
    as_of: datetime
    customers: pd.DataFrame  # CUSTOMER_COLUMNS, most overdue first
    invoices: pd.DataFrame  # INVOICE_COLUMNS, oldest due date first
    totals: dict[str, int]  # every bucket, "overdue" (all but current) and "total"


def ageing(session: Session, as_of: datetime, currency: str | None = None) -> Ageing:
    target = check_currency(currency)
    stmt = (
        select(
            Invoice.id,
            Invoice.number,
            Invoice.customer_id,
            Customer.name,
            Invoice.status,
            Invoice.due_at,
            Invoice.currency,
            Invoice.total - Invoice.amount_credited - Invoice.amount_paid,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.status.in_(OWED_STATUSES), Invoice.issued_at <= as_of)
        .order_by(Invoice.due_at, Invoice.id)
    )
    if currency is not None:
        stmt = stmt.where(Customer.currency == target)
    invoices = []
    per_customer: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BUCKETS, 0))
    names: dict[int, str] = {}
    counts: dict[int, int] = defaultdict(int)
    for inv_id, number, cust_id, name, status, due_at, inv_currency, owed in session.execute(stmt):
        owed = max(int(owed), 0)
        if owed == 0:
            continue
        days = days_past_due(due_at, as_of)
        bucket = bucket_of(days)
        amount = fx.convert(owed, inv_currency, target)
        per_customer[cust_id][bucket] += amount
        names[cust_id], counts[cust_id] = name, counts[cust_id] + 1
        invoices.append(
            (
                inv_id,
                number,
                cust_id,
                name,
                status,
                due_at,
                max(days, 0),
                bucket,
                inv_currency,
                owed,
                amount,
            )
        )
    rows = []
    for cust_id, buckets in per_customer.items():
        overdue = sum(v for k, v in buckets.items() if k != "current")
        total = overdue + buckets["current"]
        rows.append((cust_id, names[cust_id], counts[cust_id], *buckets.values(), overdue, total))
    customers = pd.DataFrame(rows, columns=CUSTOMER_COLUMNS)
    customers = customers.astype({c: "int64" for c in CUSTOMER_COLUMNS if c != "customer"})
    customers = customers.sort_values(["overdue", "total"], ascending=False, kind="stable")
    totals = {b: int(customers[b].sum()) for b in BUCKETS}
    totals["overdue"] = int(customers["overdue"].sum())
    totals["total"] = int(customers["total"].sum())
    return Ageing(
        target,
        as_of,
        customers.reset_index(drop=True),
        pd.DataFrame(invoices, columns=INVOICE_COLUMNS),
        totals,
    )


def ar_ageing(
    actor: Actor, as_of: date | datetime | None = None, currency: str | None = None
) -> Ageing:
    """Open and uncollectible invoices by amount due, in ageing buckets, per customer and in
    total, at `as_of` (default now; a date means the end of that day)."""
    require(actor, Permission.BILLING_READ, action="billing.metrics.read")
    when = utcnow() if as_of is None else as_instant(as_of, end_of_day=True)
    with unit_of_work(read_only=True) as session:
        return ageing(session, when, currency)
