"""Subscriptions: start (with an optional trial and coupon), change plan or seats with
proration, cancel. Billing is per calendar month in arrears, so a change needs no credit note:
the month's invoice charges the old item up to the change and the new one after it, to the
second (`core.billing.invoicing`). `preview_change` shows that split before it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing import pricing
from core.billing.catalog import LICENSED, charge
from core.billing.models import (
    Coupon,
    Customer,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)
from core.billing.periods import month_of
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.text import clean_text

STATUSES = ("trialing", "active", "past_due", "canceled")
LIVE = ("trialing", "active", "past_due")
MAX_TRIAL_DAYS = 90
MAX_SEATS = 100_000


@dataclass(frozen=True)
class ItemSpec:
    price_key: str
    quantity: int = 1


def _price(session: Session, key: str) -> Price:
    price = session.scalar(select(Price).where(Price.lookup_key == key))
    if price is None:
        raise NotFound(f"No price with the key {key!r}.")
    return price


def _check_quantity(price: Price, quantity: int) -> int:
    if price.scheme == "per_seat":
        if not 1 <= quantity <= MAX_SEATS:
            raise ValidationError(f"Seats must be between 1 and {MAX_SEATS}.")
        return quantity
    return 1  # flat and metered items have no quantity of their own


def add_subscription(
    session: Session,
    actor: Actor,
    customer: Customer,
    items: list[ItemSpec],
    start: datetime,
    *,
    trial_days: int = 0,
    coupon_code: str | None = None,
) -> Subscription:
    if not items:
        raise ValidationError("A subscription needs at least one price.")
    if not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise ValidationError(f"A trial lasts 0 to {MAX_TRIAL_DAYS} days.")
    prices = [(_price(session, spec.price_key), spec.quantity) for spec in items]
    for price, _ in prices:
        if not price.active:
            raise ValidationError(f"Price {price.lookup_key} is archived; choose a current one.")
        if price.currency != customer.currency:
            raise ValidationError(
                f"Price {price.lookup_key} is in {price.currency}, but {customer.name} is billed "
                f"in {customer.currency}."
            )
    if sum(1 for p, _ in prices if p.scheme in LICENSED) != 1:
        raise ValidationError("A subscription has exactly one plan price (flat or per seat).")
    live = session.scalar(
        select(Subscription.id).where(
            Subscription.customer_id == customer.id, Subscription.status.in_(LIVE)
        )
    )
    if live is not None:
        raise Conflict(f"{customer.name} already has a live subscription (#{live}); change it.")
    coupon = None
    if coupon_code:
        coupon = session.scalar(select(Coupon).where(Coupon.code == coupon_code.strip().upper()))
        if coupon is None:
            raise NotFound(f"No coupon with the code {coupon_code[:32]!r}.")
        if coupon.currency and coupon.currency != customer.currency:
            raise ValidationError(f"Coupon {coupon.code} is for {coupon.currency} customers.")
    trial_end = start + timedelta(days=trial_days) if trial_days else None
    sub = Subscription(
        customer_id=customer.id,
        status="trialing" if trial_end and trial_end > utcnow() else "active",
        started_at=start,
        trial_end=trial_end,
        coupon_id=coupon.id if coupon else None,
        coupon_starts=(trial_end or start) if coupon else None,
    )
    session.add(sub)
    session.flush()
    for price, quantity in prices:
        session.add(
            SubscriptionItem(
                subscription_id=sub.id,
                price_id=price.id,
                quantity=_check_quantity(price, quantity),
                started_at=start,
            )
        )
    session.flush()
    record(
        session,
        actor,
        "billing.subscription.create",
        f"subscription:{sub.id}",
        {"customer": customer.id, "prices": [p.lookup_key for p, _ in prices]},
    )
    return sub


def create_subscription(
    actor: Actor,
    customer_id: int,
    items: list[ItemSpec],
    *,
    start: datetime | None = None,
    trial_days: int = 0,
    coupon_code: str | None = None,
) -> int:
    require(actor, Permission.BILLING_MANAGE, action="billing.subscription.create")
    with unit_of_work() as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"No billing customer with id {customer_id}.")
        sub = add_subscription(
            session,
            actor,
            customer,
            items,
            start or utcnow(),
            trial_days=trial_days,
            coupon_code=coupon_code,
        )
        return sub.id


def _live_subscription(
    session: Session, subscription_id: int, customer_id: int | None = None
) -> Subscription:
    sub = session.get(Subscription, subscription_id, with_for_update=True)
    if sub is None or (customer_id is not None and sub.customer_id != customer_id):
        raise NotFound(f"No subscription #{subscription_id} for this customer.")
    if sub.status not in LIVE:
        raise Conflict(f"Subscription #{sub.id} is {sub.status}; only a live one can change.")
    return sub


def _plan_item(session: Session, sub: Subscription) -> tuple[SubscriptionItem, Price]:
    row = session.execute(
        select(SubscriptionItem, Price)
        .join(Price, Price.id == SubscriptionItem.price_id)
        .where(
            SubscriptionItem.subscription_id == sub.id,
            SubscriptionItem.ended_at.is_(None),
            Price.scheme.in_(LICENSED),
        )
    ).first()
    if row is None:
        raise Conflict(f"Subscription #{sub.id} has no current plan item.")
    return row[0], row[1]


@dataclass(frozen=True)
class ChangePreview:
    old_monthly: int
    new_monthly: int
    credit: int  # negative: the unused rest of the old plan this month
    charge: int  # the new plan's rest of this month
    currency: str
    at: datetime

    @property
    def net(self) -> int:
        return self.credit + self.charge


def _preview(
    session: Session, sub: Subscription, new: Price, quantity: int, at: datetime
) -> ChangePreview:
    item, old = _plan_item(session, sub)
    if new.currency != old.currency:
        raise ValidationError(
            f"The new price is in {new.currency}; this plan bills {old.currency}."
        )
    if new.scheme not in LICENSED:
        raise ValidationError("Choose a plan price (flat or per seat) to change to.")
    if at < item.started_at:
        raise ValidationError("A change cannot take effect before the current plan started.")
    start, end = month_of(at)
    old_monthly = charge(old, item.quantity)
    new_monthly = charge(new, _check_quantity(new, quantity))
    credit, debit = pricing.plan_change(old_monthly, new_monthly, start, end, at)
    return ChangePreview(old_monthly, new_monthly, credit, debit, old.currency, at)


def preview_change(
    actor: Actor,
    subscription_id: int,
    price_key: str,
    quantity: int = 1,
    at: datetime | None = None,
    *,
    customer_id: int | None = None,
) -> ChangePreview:
    require(actor, Permission.BILLING_READ, action="billing.subscription.read")
    with unit_of_work(read_only=True) as session:
        sub = _live_subscription(session, subscription_id, customer_id)
        return _preview(session, sub, _price(session, price_key), quantity, at or utcnow())


def change_plan(
    actor: Actor,
    subscription_id: int,
    price_key: str,
    quantity: int = 1,
    at: datetime | None = None,
    *,
    customer_id: int | None = None,
) -> ChangePreview:
    """Upgrade, downgrade or change seats from `at` (default now); the month's invoice prorates.
    `customer_id`, where given, must own the subscription (pages pass it, so a stale or mistyped
    id can never change another customer's plan)."""
    require(actor, Permission.BILLING_MANAGE, action="billing.subscription.change")
    at = at or utcnow()
    with unit_of_work() as session:
        sub = _live_subscription(session, subscription_id, customer_id)
        new = _price(session, price_key)
        preview = _preview(session, sub, new, quantity, at)
        item, old = _plan_item(session, sub)
        if old.id == new.id and item.quantity == quantity:
            raise ValidationError("That is the current plan and seat count: nothing to change.")
        change_item(session, sub, item, new, quantity, at)
        record(
            session,
            actor,
            "billing.subscription.change",
            f"subscription:{sub.id}",
            {
                "from": f"{old.lookup_key} x{item.quantity}",
                "to": f"{new.lookup_key} x{quantity}",
                "net_proration": preview.net,
            },
        )
        return preview


def change_item(
    session: Session,
    sub: Subscription,
    item: SubscriptionItem,
    new: Price,
    quantity: int,
    at: datetime,
) -> SubscriptionItem:
    item.ended_at = at
    replacement = SubscriptionItem(
        subscription_id=sub.id,
        price_id=new.id,
        quantity=_check_quantity(new, quantity),
        started_at=at,
    )
    session.add(replacement)
    sub.updated_at = utcnow()
    session.flush()
    return replacement


def cancel_subscription(
    actor: Actor,
    subscription_id: int,
    reason: str,
    at: datetime | None = None,
    *,
    customer_id: int | None = None,
) -> None:
    """End a subscription at `at` (default now); the month's invoice charges up to then."""
    require(actor, Permission.BILLING_MANAGE, action="billing.subscription.cancel")
    reason = clean_text(reason, 200)
    if len(reason) < 3:
        raise ValidationError("Say why the subscription ends (for churn reporting).")
    at = at or utcnow()
    with unit_of_work() as session:
        sub = _live_subscription(session, subscription_id, customer_id)
        if at < sub.started_at:
            raise ValidationError("A subscription cannot end before it started.")
        end_subscription(session, sub, at, reason)
        record(
            session,
            actor,
            "billing.subscription.cancel",
            f"subscription:{sub.id}",
            {"reason": reason, "at": at.isoformat()},
        )


def end_subscription(session: Session, sub: Subscription, at: datetime, reason: str) -> None:
    sub.status, sub.canceled_at, sub.ended_at, sub.cancel_reason = "canceled", at, at, reason
    sub.updated_at = utcnow()
    for item in session.scalars(
        select(SubscriptionItem).where(
            SubscriptionItem.subscription_id == sub.id, SubscriptionItem.ended_at.is_(None)
        )
    ):
        item.ended_at = at


def end_trials(session: Session, now: datetime) -> int:
    """Trials whose end has passed become active (run before an invoice run and by the job)."""
    subs = session.scalars(
        select(Subscription).where(Subscription.status == "trialing", Subscription.trial_end <= now)
    ).all()
    for sub in subs:
        sub.status, sub.updated_at = "active", now
    return len(subs)


@dataclass(frozen=True)
class ItemView:
    price_key: str
    product: str
    nickname: str
    scheme: str
    currency: str
    quantity: int
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    status: str
    started_at: datetime
    trial_end: datetime | None
    ended_at: datetime | None
    cancel_reason: str
    coupon: str | None
    stripe_id: str | None
    items: list[ItemView]

    @property
    def live(self) -> bool:
        return self.status in LIVE


def customer_subscriptions(actor: Actor, customer_id: int) -> list[SubscriptionView]:
    """A customer's subscriptions, newest first, each with its item history."""
    require(actor, Permission.BILLING_READ, action="billing.subscription.read")
    with unit_of_work(read_only=True) as session:
        subs = session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.started_at.desc(), Subscription.id.desc())
        ).all()
        coupons = {c.id: c.code for c in session.scalars(select(Coupon))}
        items: dict[int, list[ItemView]] = {s.id: [] for s in subs}
        if subs:
            rows = session.execute(
                select(SubscriptionItem, Price, Product.name)
                .join(Price, Price.id == SubscriptionItem.price_id)
                .join(Product, Product.id == Price.product_id)
                .where(SubscriptionItem.subscription_id.in_(list(items)))
                .order_by(SubscriptionItem.started_at, SubscriptionItem.id)
            ).all()
            for item, price, product in rows:
                items[item.subscription_id].append(
                    ItemView(
                        price.lookup_key,
                        product,
                        price.nickname,
                        price.scheme,
                        price.currency,
                        item.quantity,
                        item.started_at,
                        item.ended_at,
                    )
                )
        return [
            SubscriptionView(
                s.id,
                s.status,
                s.started_at,
                s.trial_end,
                s.ended_at,
                s.cancel_reason,
                coupons.get(s.coupon_id or 0),
                s.stripe_id,
                items[s.id],
            )
            for s in subs
        ]
