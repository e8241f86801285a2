"""`apply_event`: one Stripe event applied to the ledger, once. Shared by the webhook and the
Events API pull, so an event that arrives both ways (or twice either way) changes the ledger once:
its id is stored in `StripeEvent` in the same transaction as the change it made.

Handled: invoice.paid / invoice.payment_succeeded (a payment), invoice.payment_failed (the
customer's active subscriptions become past_due), invoice.voided, invoice.marked_uncollectible,
charge.dispute.created/updated/closed, customer.subscription.updated/deleted. Anything else is
stored as "ignored". Every stored event has an outcome:

    applied   the ledger changed          unchanged  the ledger already showed it
    ignored   a type the console skips    unknown    about an object the ledger does not know
    review    the ledger refused the change (for example Stripe voided an invoice the ledger has
              as paid), or the payload had an unexpected shape: the event is stored with the
              reason, nothing else changes, and a person looks at it
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.billing.invoice_status import apply_payment
from core.billing.models import (
    Customer,
    Dispute,
    Invoice,
    Payment,
    StripeEvent,
    Subscription,
)
from core.billing.subscriptions import end_subscription
from core.clock import utcnow
from core.errors import Conflict, NotFound, ValidationError

Via = Literal["webhook", "poll"]
Kind = Literal["applied", "unchanged", "ignored", "unknown", "review", "duplicate"]
# Stripe's subscription statuses the ledger has a counterpart for.
SUBSCRIPTION_STATUS = {
    "trialing": "trialing",
    "active": "active",
    "past_due": "past_due",
    "unpaid": "past_due",
    "canceled": "canceled",
    "incomplete_expired": "canceled",
}


class Outcome(NamedTuple):
    kind: Kind
    text: str


@dataclass(frozen=True)
class Applied:
    event_id: str
    type: str
    kind: Kind
    outcome: str

    @property
    def duplicate(self) -> bool:
        return self.kind == "duplicate"


def ts(value: Any) -> datetime | None:
    """A Stripe timestamp (Unix seconds) as an aware datetime."""
    return datetime.fromtimestamp(int(value), UTC) if value else None


def ref(value: Any) -> str | None:
    """An id, whether Stripe sent it as a string or as the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _invoice(session: Session, stripe_id: str | None) -> Invoice | None:
    if not stripe_id:
        return None
    return session.scalar(select(Invoice).where(Invoice.stripe_id == stripe_id).with_for_update())


def _unknown(what: str, stripe_id: str | None) -> Outcome:
    return Outcome("unknown", f"unknown object: no ledger {what} {stripe_id or '(no id)'}")


def _payment_ref(obj: Mapping[str, Any]) -> str:
    """The Stripe id a payment is stored under: the payment intent (or charge) when the invoice
    names one, else the invoice id with its amount paid, the same for invoice.paid and
    invoice.payment_succeeded of one payment."""
    payments = (obj.get("payments") or {}).get("data") or []
    if payments:
        payment = payments[-1].get("payment") or {}
        found = ref(payment.get("payment_intent")) or ref(payment.get("charge"))
        if found:
            return found
    return (
        ref(obj.get("payment_intent"))
        or ref(obj.get("charge"))
        or f"{obj.get('id')}@{obj.get('amount_paid')}"
    )


def _invoice_paid(session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]) -> Outcome:
    invoice = _invoice(session, ref(obj.get("id")))
    if invoice is None:
        return _unknown("invoice", ref(obj.get("id")))
    if obj.get("paid_out_of_band"):
        return Outcome("unchanged", "paid out of band: the ledger recorded the payment itself")
    recorded = session.scalar(
        select(func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.invoice_id == invoice.id, Payment.method == "stripe"
        )
    )
    delta = int(obj.get("amount_paid") or 0) - int(recorded or 0)
    if delta <= 0:
        return Outcome("unchanged", "no new payment: already recorded")
    paid_at = ts((obj.get("status_transitions") or {}).get("paid_at")) or ts(event.get("created"))
    stripe_id = _payment_ref(obj)
    payment = apply_payment(
        session,
        invoice,
        delta,
        paid_at or utcnow(),
        method="stripe",
        reference=stripe_id,
        stripe_id=stripe_id,
    )
    if payment is None:
        return Outcome("unchanged", f"payment {stripe_id} already recorded")
    return Outcome(
        "applied", f"payment {delta} {invoice.currency} on {invoice.number}: now {invoice.status}"
    )


def _invoice_payment_failed(
    session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]
) -> Outcome:
    invoice = _invoice(session, ref(obj.get("id")))
    customer_id = invoice.customer_id if invoice else None
    if customer_id is None:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.stripe_id == ref(obj.get("customer")))
        )
    if customer_id is None:
        return _unknown("invoice or customer", ref(obj.get("id")))
    subs = session.scalars(
        select(Subscription)
        .where(Subscription.customer_id == customer_id, Subscription.status == "active")
        .with_for_update()
    ).all()
    for sub in subs:
        sub.status, sub.updated_at = "past_due", utcnow()
    if not subs:
        return Outcome("unchanged", "payment failed; the customer has no active subscription")
    return Outcome("applied", f"payment failed: {len(subs)} subscription(s) now past_due")


def _invoice_voided(session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]) -> Outcome:
    invoice = _invoice(session, ref(obj.get("id")))
    if invoice is None:
        return _unknown("invoice", ref(obj.get("id")))
    if invoice.status == "void":
        return Outcome("unchanged", "already void")
    if invoice.status not in ("open", "uncollectible") or invoice.amount_paid:
        raise Conflict(
            f"Stripe voided {invoice.number}, which the ledger has as {invoice.status} "
            f"with {invoice.amount_paid} paid"
        )
    voided_at = ts((obj.get("status_transitions") or {}).get("voided_at"))
    invoice.status, invoice.updated_at = "void", utcnow()
    invoice.voided_at = voided_at or ts(event.get("created")) or utcnow()
    return Outcome("applied", f"{invoice.number} voided")


def _invoice_uncollectible(
    session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]
) -> Outcome:
    invoice = _invoice(session, ref(obj.get("id")))
    if invoice is None:
        return _unknown("invoice", ref(obj.get("id")))
    if invoice.status == "uncollectible":
        return Outcome("unchanged", "already uncollectible")
    if invoice.status != "open":
        raise Conflict(
            f"Stripe wrote off {invoice.number}, which the ledger has as {invoice.status}"
        )
    invoice.status, invoice.updated_at = "uncollectible", utcnow()
    return Outcome("applied", f"{invoice.number} marked uncollectible")


def _dispute_invoice_id(session: Session, obj: Mapping[str, Any]) -> int | None:
    """The ledger invoice a dispute is about: the charge's invoice when the payload has it, else
    the invoice of the payment recorded under the charge or payment intent."""
    charge = obj.get("charge")
    if isinstance(charge, Mapping):
        invoice = _invoice(session, ref(charge.get("invoice")))
        if invoice is not None:
            return invoice.id
    invoice = _invoice(session, ref(obj.get("invoice")))
    if invoice is not None:
        return invoice.id
    refs = [r for r in (ref(charge), ref(obj.get("payment_intent"))) if r]
    if not refs:
        return None
    return session.scalar(select(Payment.invoice_id).where(Payment.stripe_id.in_(refs)).limit(1))


def _dispute(session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]) -> Outcome:
    stripe_id = ref(obj.get("id"))
    if not stripe_id:
        raise ValidationError("The dispute in the event has no id")
    row = session.scalar(select(Dispute).where(Dispute.stripe_id == stripe_id).with_for_update())
    invoice_id = _dispute_invoice_id(session, obj)
    status = str(obj.get("status") or "unknown")[:32]
    if row is None:
        row = Dispute(
            stripe_id=stripe_id,
            invoice_id=invoice_id,
            amount=int(obj.get("amount") or 0),
            currency=str(obj.get("currency") or "").upper()[:3],
            reason=str(obj.get("reason") or "")[:64],
            status=status,
            opened_at=ts(obj.get("created")) or ts(event.get("created")) or utcnow(),
            updated_at=utcnow(),
        )
        session.add(row)
    else:
        row.status, row.updated_at = status, utcnow()
        row.amount = int(obj.get("amount") or row.amount)
        row.reason = str(obj.get("reason") or row.reason)[:64]
        row.invoice_id = row.invoice_id or invoice_id
    session.flush()
    on = f"invoice #{row.invoice_id}" if row.invoice_id else "no ledger invoice"
    return Outcome("applied", f"dispute {stripe_id} {status} ({on})")


def _subscription(session: Session, obj: Mapping[str, Any]) -> Subscription | None:
    return session.scalar(
        select(Subscription).where(Subscription.stripe_id == ref(obj.get("id"))).with_for_update()
    )


def _end(
    session: Session, sub: Subscription, obj: Mapping[str, Any], event: Mapping[str, Any]
) -> None:
    """Cancel as the console does (items end too, so the month's invoice stops there)."""
    when = ts(event.get("created")) or utcnow()
    ended = sub.ended_at or ts(obj.get("ended_at")) or when
    end_subscription(session, sub, ended, sub.cancel_reason or "Canceled in Stripe")
    sub.canceled_at = ts(obj.get("canceled_at")) or ended


def _subscription_deleted(
    session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]
) -> Outcome:
    sub = _subscription(session, obj)
    if sub is None:
        return _unknown("subscription", ref(obj.get("id")))
    if sub.status == "canceled" and sub.ended_at is not None:
        return Outcome("unchanged", "already canceled")
    _end(session, sub, obj, event)
    return Outcome("applied", f"subscription #{sub.id} canceled")


def _subscription_updated(
    session: Session, obj: Mapping[str, Any], event: Mapping[str, Any]
) -> Outcome:
    sub = _subscription(session, obj)
    if sub is None:
        return _unknown("subscription", ref(obj.get("id")))
    stripe_status = str(obj.get("status") or "")
    status = SUBSCRIPTION_STATUS.get(stripe_status)
    if status is None:
        return Outcome("unchanged", f"Stripe status {stripe_status!r} is not mirrored")
    if status == sub.status:
        return Outcome("unchanged", f"already {status}")
    if sub.status == "canceled":
        raise Conflict(f"Stripe has subscription #{sub.id} {stripe_status}; the ledger canceled it")
    if status == "canceled":
        _end(session, sub, obj, event)
    else:
        sub.status, sub.updated_at = status, utcnow()
    return Outcome("applied", f"subscription #{sub.id} now {status}")


Handler = Callable[[Session, Mapping[str, Any], Mapping[str, Any]], Outcome]
HANDLERS: dict[str, Handler] = {
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "invoice.voided": _invoice_voided,
    "invoice.marked_uncollectible": _invoice_uncollectible,
    "charge.dispute.created": _dispute,
    "charge.dispute.updated": _dispute,
    "charge.dispute.closed": _dispute,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.deleted": _subscription_deleted,
}


def apply_event(session: Session, event: Mapping[str, Any], via: Via, actor: Actor) -> Applied:
    """Apply one event inside the caller's transaction; an id seen before changes nothing.

    Two deliveries racing on two connections both insert the event's id: the second commit
    fails on the primary key (sqlalchemy IntegrityError), which callers report as a duplicate.
    """
    event_id, event_type = str(event.get("id") or ""), str(event.get("type") or "")
    if not event_id or not event_type:
        raise ValidationError("Not a Stripe event: it has no id or type.")
    if session.get(StripeEvent, event_id) is not None:
        return Applied(event_id, event_type, "duplicate", "already applied")
    row = StripeEvent(
        id=event_id[:64],
        type=event_type[:64],
        created=ts(event.get("created")) or utcnow(),
        via=via,
        outcome="pending",
        received_at=utcnow(),
    )
    session.add(row)
    session.flush()
    handler = HANDLERS.get(event_type)
    obj = (event.get("data") or {}).get("object") or {}
    if handler is None:
        outcome = Outcome("ignored", "ignored")
    else:
        try:
            with session.begin_nested():  # a refused change leaves nothing half-done
                outcome = handler(session, obj, event)
        except (Conflict, ValidationError, NotFound) as exc:
            outcome = Outcome("review", f"needs review: {exc.message}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A payload of an unexpected shape must not block the events behind it forever.
            outcome = Outcome("review", f"needs review: unexpected payload ({type(exc).__name__})")
    row.outcome = outcome.text[:200]
    if outcome.kind != "ignored":
        record(
            session,
            actor,
            "billing.stripe.event",
            f"stripe_event:{event_id}",
            {"type": event_type, "via": via, "object": ref(obj.get("id")), "kind": outcome.kind},
        )
    return Applied(event_id, event_type, outcome.kind, row.outcome)
