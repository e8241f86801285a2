"""Credit notes: the only way to correct a finalised invoice (its amounts never change).

The amount includes tax, as on the invoice, and is split exactly into net and VAT in the
invoice's proportions (`pricing.allocate`), so the credited VAT always matches what was charged.
On an open invoice a credit lowers what is due, and a fully credited one is settled; on a paid
invoice it records money owed back to the customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.invoice_status import amount_due, load_invoice
from core.billing.models import CreditNote
from core.billing.pricing import allocate
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, ValidationError
from core.text import clean_text

REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


@dataclass(frozen=True)
class CreditResult:
    number: str
    amount: int
    tax: int
    invoice_status: str


def issue_credit_note(
    actor: Actor, invoice_id: int, amount: int, reason: str, memo: str = ""
) -> CreditResult:
    require(actor, Permission.BILLING_INVOICE, action="billing.credit_note.create")
    if reason not in REASONS:
        raise ValidationError(
            f"Unknown reason {reason[:32]!r}; choose one of {', '.join(REASONS)}."
        )
    if amount <= 0:
        raise ValidationError("A credit note is for a positive amount.")
    with unit_of_work() as session:
        invoice = load_invoice(session, invoice_id)
        if invoice.status not in ("open", "paid", "uncollectible"):
            raise Conflict(
                f"Invoice {invoice.number or invoice.id} is {invoice.status}: only a finalised, "
                "not voided invoice takes a credit note (edit or re-run a draft instead)."
            )
        creditable = invoice.total - invoice.amount_credited
        if amount > creditable:
            raise ValidationError(
                f"At most {creditable} can still be credited on {invoice.number} "
                f"(total {invoice.total}, credited so far {invoice.amount_credited})."
            )
        net = invoice.total - invoice.tax
        tax = allocate(amount, [max(net, 0), invoice.tax])[1] if invoice.tax else 0
        note = CreditNote(
            number=_next_number(session, utcnow()),
            invoice_id=invoice.id,
            amount=amount,
            tax=tax,
            reason=reason,
            memo=clean_text(memo, 500),
            created_by=actor.username,
        )
        session.add(note)
        was_open = invoice.status == "open"
        invoice.amount_credited += amount
        invoice.updated_at = utcnow()
        if was_open and amount_due(invoice) == 0:
            invoice.status, invoice.paid_at = "paid", utcnow()
        session.flush()
        record(
            session,
            actor,
            "billing.credit_note.create",
            f"invoice:{invoice.number}",
            {"credit_note": note.number, "amount": amount, "tax": tax, "reason": reason},
        )
        return CreditResult(note.number, amount, tax, invoice.status)


def _next_number(session: Session, at: datetime) -> str:
    prefix = f"CN-{at.year}-"
    last = session.scalar(
        select(func.max(CreditNote.number)).where(CreditNote.number.like(f"{prefix}%"))
    )
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:06d}"
