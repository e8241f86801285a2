"""An invoice's life after the run drafted it, as in Stripe:

    draft -> open (finalised: numbered, issued, due date set; its amounts never change again)
    open -> paid | void | uncollectible;  uncollectible -> paid | void

Money owed is `total - amount_credited - amount_paid`; a credit note or payment that would take it
below zero is refused. The session-level functions (`apply_payment`, ...) are what the Stripe
event handlers call inside their own transaction; the actor-level ones check permissions first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.models import Invoice, Payment
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.text import clean_text

STATUSES = ("draft", "open", "paid", "void", "uncollectible")
PAYMENT_METHODS = ("stripe", "bank_transfer", "card_manual", "other")
_ALLOWED = {
    "open": {"draft"},
    "void": {"open", "uncollectible"},
    "uncollectible": {"open"},
    "paid": {"open", "uncollectible"},
}


def amount_due(invoice: Invoice) -> int:
    return max(invoice.total - invoice.amount_credited - invoice.amount_paid, 0)


def load_invoice(session: Session, invoice_id: int, *, for_update: bool = True) -> Invoice:
    invoice = session.get(Invoice, invoice_id, with_for_update=for_update)
    if invoice is None:
        raise NotFound(f"No invoice with id {invoice_id}.")
    return invoice


def _move(invoice: Invoice, status: str) -> None:
    if invoice.status not in _ALLOWED[status]:
        raise Conflict(
            f"Invoice {invoice.number or invoice.id} is {invoice.status}; it cannot become "
            f"{status} (only from {', '.join(sorted(_ALLOWED[status]))})."
        )
    invoice.status = status
    invoice.updated_at = utcnow()


def next_number(session: Session, year: int) -> str:
    prefix = f"INV-{year}-"
    last = session.scalar(select(func.max(Invoice.number)).where(Invoice.number.like(f"{prefix}%")))
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:06d}"


def finalise(session: Session, invoice: Invoice, at: datetime, number: str | None = None) -> None:
    """Number, issue and open a draft. `number` lets a bulk caller that holds the write lock
    (the demo seeder) hand out the sequence itself instead of one query per invoice."""
    _move(invoice, "open")
    invoice.number = number or next_number(session, at.year)
    invoice.issued_at = at
    invoice.due_at = at + timedelta(days=get_settings().billing_days_until_due)
    if invoice.total == 0:  # nothing to collect: Stripe marks such invoices paid at once
        invoice.status, invoice.paid_at = "paid", at


def apply_payment(
    session: Session,
    invoice: Invoice,
    amount: int,
    paid_at: datetime,
    *,
    method: str,
    reference: str = "",
    stripe_id: str | None = None,
) -> Payment | None:
    """Record money received against an open invoice. A payment already recorded under the same
    Stripe id is not recorded again (returns None): events and webhooks may arrive twice."""
    if stripe_id and session.scalar(select(Payment.id).where(Payment.stripe_id == stripe_id)):
        return None
    if method not in PAYMENT_METHODS:
        raise ValidationError(f"Unknown payment method {method!r}: {', '.join(PAYMENT_METHODS)}.")
    if amount <= 0:
        raise ValidationError("A payment must be a positive amount.")
    if invoice.status not in ("open", "uncollectible"):
        raise Conflict(f"Invoice {invoice.number or invoice.id} is {invoice.status}: not payable.")
    due = amount_due(invoice)
    if amount > due:
        raise ValidationError(
            f"The payment ({amount}) is more than the amount due ({due}) on {invoice.number}."
        )
    payment = Payment(
        invoice_id=invoice.id,
        amount=amount,
        currency=invoice.currency,
        method=method,
        reference=clean_text(reference, 128),
        paid_at=paid_at,
        stripe_id=stripe_id,
    )
    session.add(payment)
    invoice.amount_paid += amount
    if amount_due(invoice) == 0:
        _move(invoice, "paid")
        invoice.paid_at = paid_at
    session.flush()
    return payment


def finalise_invoice(actor: Actor, invoice_id: int) -> str:
    require(actor, Permission.BILLING_INVOICE, action="billing.invoice.finalise")
    with unit_of_work() as session:
        invoice = load_invoice(session, invoice_id)
        finalise(session, invoice, utcnow())
        record(
            session,
            actor,
            "billing.invoice.finalise",
            f"invoice:{invoice.number}",
            {"total": invoice.total, "currency": invoice.currency},
        )
        return invoice.number or ""


def finalise_period(actor: Actor, period_start: datetime) -> int:
    """Finalise every draft of a period; returns how many."""
    require(actor, Permission.BILLING_INVOICE, action="billing.invoice.finalise")
    with unit_of_work() as session:
        drafts = session.scalars(
            select(Invoice)
            .where(Invoice.period_start == period_start, Invoice.status == "draft")
            .order_by(Invoice.id)
            .with_for_update()
        ).all()
        now = utcnow()
        for invoice in drafts:
            finalise(session, invoice, now)
        record(
            session,
            actor,
            "billing.invoice.finalise",
            f"period:{period_start.date().isoformat()}",
            {"invoices": len(drafts)},
        )
        return len(drafts)


def void_invoice(actor: Actor, invoice_id: int, reason: str) -> None:
    require(actor, Permission.BILLING_INVOICE, action="billing.invoice.void")
    reason = clean_text(reason, 200)
    if len(reason) < 5:
        raise ValidationError("Say why the invoice is voided (at least 5 characters).")
    with unit_of_work() as session:
        invoice = load_invoice(session, invoice_id)
        if invoice.amount_paid:
            raise Conflict(
                f"{invoice.number} has payments; issue a credit note instead of voiding it."
            )
        _move(invoice, "void")
        invoice.voided_at = utcnow()
        record(
            session, actor, "billing.invoice.void", f"invoice:{invoice.number}", {"reason": reason}
        )


def mark_uncollectible(actor: Actor, invoice_id: int) -> None:
    require(actor, Permission.BILLING_INVOICE, action="billing.invoice.uncollectible")
    with unit_of_work() as session:
        invoice = load_invoice(session, invoice_id)
        _move(invoice, "uncollectible")
        record(session, actor, "billing.invoice.uncollectible", f"invoice:{invoice.number}", {})


def record_payment(
    actor: Actor,
    invoice_id: int,
    amount: int,
    *,
    method: str = "bank_transfer",
    reference: str = "",
    paid_at: datetime | None = None,
) -> None:
    """A payment received outside Stripe (bank transfer), entered by finance."""
    require(actor, Permission.BILLING_INVOICE, action="billing.payment.record")
    paid_at = paid_at or utcnow()
    if paid_at > utcnow():
        raise ValidationError("A payment cannot be dated in the future.")
    with unit_of_work() as session:
        invoice = load_invoice(session, invoice_id)
        apply_payment(session, invoice, amount, paid_at, method=method, reference=reference)
        record(
            session,
            actor,
            "billing.payment.record",
            f"invoice:{invoice.number}",
            {"amount": amount, "currency": invoice.currency, "method": method},
        )
