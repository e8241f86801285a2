"""Billing customers: one per customer organisation, with billing country, currency and VAT id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.catalog import BILLING_CURRENCIES
from core.billing.models import Customer, Invoice, Subscription
from core.billing.taxes import normalise_vat_id, tax_for
from core.config import get_settings
from core.db import unit_of_work
from core.errors import NotFound, ValidationError
from core.orgs.countries import countries
from core.orgs.models import Organisation
from core.text import clean_text


def currency_for(country: str) -> str:
    """The billing currency for a country: its own where the console bills in it, else USD."""
    info = countries().get(country.upper())
    own = info.currency if info else "USD"
    return own if own in BILLING_CURRENCIES else "USD"


def ensure_customers(session: Session) -> int:
    """Create the billing customer of every organisation that has none; returns how many."""
    missing = session.execute(
        select(Organisation)
        .outerjoin(Customer, Customer.organisation_id == Organisation.id)
        .where(Customer.id.is_(None))
        .order_by(Organisation.id)
    ).scalars()
    created = 0
    for org in missing:
        session.add(
            Customer(
                organisation_id=org.id,
                name=org.name,
                email=f"billing@{org.domain}",
                country=org.country,
                currency=currency_for(org.country),
            )
        )
        created += 1
    session.flush()
    return created


def load_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No billing customer with id {customer_id}.")
    return customer


def update_customer(
    actor: Actor,
    customer_id: int,
    *,
    email: str | None = None,
    country: str | None = None,
    vat_id: str | None = None,
) -> None:
    """Change billing details. A VAT id is checked (format and check digits) and must belong to
    the billing country; an empty one removes it. The currency cannot change once invoiced."""
    require(actor, Permission.BILLING_MANAGE, action="billing.customer.update")
    with unit_of_work() as session:
        customer = load_customer(session, customer_id)
        changed: list[str] = []
        if email is not None:
            email = clean_text(email, 254)
            if "@" not in email or email.startswith("@") or email.endswith("@"):
                raise ValidationError(f"{email[:60]!r} is not an e-mail address.")
            customer.email, changed = email, [*changed, "email"]
        if country is not None:
            code = country.strip().upper()
            if code not in countries():
                raise ValidationError(
                    f"Unknown country code {country[:8]!r} (ISO 3166-1, e.g. DE)."
                )
            if currency_for(code) != customer.currency and _has_invoices(session, customer.id):
                raise ValidationError(
                    f"Moving to {code} would change the billing currency from {customer.currency}; "
                    "a customer with invoices keeps its currency. Create a new customer instead."
                )
            customer.country, customer.currency = code, currency_for(code)
            changed.append("country")
        if vat_id is not None:
            customer.vat_id = normalise_vat_id(vat_id, customer.country)
            changed.append("vat_id")
        elif customer.vat_id and country is not None:
            customer.vat_id = normalise_vat_id(customer.vat_id, customer.country)
        record(
            session,
            actor,
            "billing.customer.update",
            f"customer:{customer.id}",
            {"fields": changed},
        )


def _has_invoices(session: Session, customer_id: int) -> bool:
    return bool(session.scalar(select(func.count()).where(Invoice.customer_id == customer_id)))


@dataclass(frozen=True)
class CustomerRow:
    id: int
    name: str
    email: str
    country: str
    currency: str
    vat_id: str | None
    plan: str
    subscription_status: str
    since: datetime | None
    stripe_id: str | None
    tax_note: str


def search_customers(actor: Actor, query: str = "", limit: int = 200) -> list[CustomerRow]:
    """Customers whose name, e-mail, VAT id or id matches `query` (all of them when empty)."""
    require(actor, Permission.BILLING_READ, action="billing.customer.read")
    text = clean_text(query, 100)
    with unit_of_work(read_only=True) as session:
        stmt = select(Customer, Organisation.plan).join(
            Organisation, Organisation.id == Customer.organisation_id
        )
        if text:
            like = f"%{text.lower()}%"
            conditions: list[ColumnElement[bool]] = [
                func.lower(Customer.name).like(like),
                func.lower(Customer.email).like(like),
                func.lower(func.coalesce(Customer.vat_id, "")).like(like),
            ]
            if text.isdigit():
                conditions.append(Customer.id == int(text))
            stmt = stmt.where(or_(*conditions))
        rows = session.execute(stmt.order_by(Customer.name).limit(limit)).all()
        latest = _latest_subscriptions(session, [c.id for c, _ in rows])
        seller = get_settings().billing_seller_country
        return [
            CustomerRow(
                c.id,
                c.name,
                c.email,
                c.country,
                c.currency,
                c.vat_id,
                plan,
                latest[c.id].status if c.id in latest else "none",
                latest[c.id].started_at if c.id in latest else None,
                c.stripe_id,
                tax_for(c.country, c.vat_id, seller).note,
            )
            for c, plan in rows
        ]


def _latest_subscriptions(session: Session, ids: list[int]) -> dict[int, Subscription]:
    if not ids:
        return {}
    subs = session.scalars(
        select(Subscription)
        .where(Subscription.customer_id.in_(ids))
        .order_by(Subscription.customer_id, Subscription.started_at)
    )
    return {s.customer_id: s for s in subs}  # the last one per customer wins
