"""Reading invoices: the list with filters, one invoice in full, and its PDF."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.invoice_status import STATUSES, amount_due
from core.billing.models import CreditNote, Customer, Invoice, InvoiceLine, Payment
from core.billing.periods import label, parse_period
from core.db import unit_of_work
from core.errors import NotFound, ValidationError


@dataclass(frozen=True)
class InvoiceRow:
    id: int
    number: str | None
    customer_id: int
    customer: str
    status: str
    currency: str
    period: str
    subtotal: int
    discount: int
    tax: int
    total: int
    amount_due: int
    issued_at: datetime | None
    due_at: datetime | None
    stripe_id: str | None


def _row(inv: Invoice, customer: str) -> InvoiceRow:
    return InvoiceRow(
        inv.id,
        inv.number,
        inv.customer_id,
        customer,
        inv.status,
        inv.currency,
        f"{inv.period_start:%Y-%m}",
        inv.subtotal,
        inv.discount,
        inv.tax,
        inv.total,
        amount_due(inv) if inv.status in ("open", "uncollectible") else 0,
        inv.issued_at,
        inv.due_at,
        inv.stripe_id,
    )


def list_invoices(
    actor: Actor,
    *,
    period: str | None = None,
    status: str | None = None,
    customer_id: int | None = None,
    limit: int = 5000,
) -> list[InvoiceRow]:
    require(actor, Permission.BILLING_READ, action="billing.invoice.read")
    stmt = select(Invoice, Customer.name).join(Customer, Customer.id == Invoice.customer_id)
    if period:
        start, _ = parse_period(period)
        stmt = stmt.where(Invoice.period_start == start)
    if status:
        if status not in STATUSES:
            raise ValidationError(f"Unknown invoice status {status[:20]!r}: {', '.join(STATUSES)}.")
        stmt = stmt.where(Invoice.status == status)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    stmt = stmt.order_by(Invoice.period_start.desc(), Customer.name).limit(limit)
    with unit_of_work(read_only=True) as session:
        return [_row(inv, name) for inv, name in session.execute(stmt)]


def latest_invoiced_period(actor: Actor) -> str | None:
    """The newest period ("2026-10") that has invoices; None when there are none at all."""
    require(actor, Permission.BILLING_READ, action="billing.invoice.read")
    with unit_of_work(read_only=True) as session:
        latest = session.scalar(select(func.max(Invoice.period_start)))
    return label(latest) if latest is not None else None


@dataclass(frozen=True)
class InvoiceDetail:
    invoice: InvoiceRow
    customer: Customer
    period_start: datetime
    period_end: datetime
    tax_rate_bp: int
    tax_note: str
    amount_paid: int
    amount_credited: int
    lines: list[InvoiceLine]
    payments: list[Payment]
    credit_notes: list[CreditNote]


def invoice_detail(actor: Actor, invoice_id: int) -> InvoiceDetail:
    require(actor, Permission.BILLING_READ, action="billing.invoice.read")
    with unit_of_work(read_only=True) as session:
        inv = session.get(Invoice, invoice_id)
        if inv is None:
            raise NotFound(f"No invoice with id {invoice_id}.")
        customer = session.get(Customer, inv.customer_id)
        assert customer is not None
        return InvoiceDetail(
            _row(inv, customer.name),
            customer,
            inv.period_start,
            inv.period_end,
            inv.tax_rate_bp,
            inv.tax_note,
            inv.amount_paid,
            inv.amount_credited,
            list(
                session.scalars(
                    select(InvoiceLine)
                    .where(InvoiceLine.invoice_id == inv.id)
                    .order_by(InvoiceLine.id)
                )
            ),
            list(
                session.scalars(
                    select(Payment).where(Payment.invoice_id == inv.id).order_by(Payment.paid_at)
                )
            ),
            list(
                session.scalars(
                    select(CreditNote)
                    .where(CreditNote.invoice_id == inv.id)
                    .order_by(CreditNote.id)
                )
            ),
        )
