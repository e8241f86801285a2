"""What one customer's invoice for one month holds: a pure function of the ledger's facts.

Lines, in order: each plan item for the part of the month it was billable (prorated to the second
where the subscription started, left its trial, changed plan or ended during the month), metered
usage on the price in force at the end of the month, pending items (one-off charges and credits),
then the coupon's discount and the VAT. The digest over all of it lets a re-run see at once
whether a draft is still right.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from core.billing import pricing
from core.billing.catalog import LICENSED, METRICS, charge
from core.billing.models import Coupon, Customer, PendingItem, Price, Subscription, SubscriptionItem
from core.billing.periods import months_between
from core.billing.taxes import TaxDecision, tax_for


@dataclass(frozen=True)
class DraftLine:
    kind: str  # subscription | usage | adjustment
    description: str
    amount: int
    quantity: int = 1
    price_id: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    pending_id: int | None = None


@dataclass
class Draft:
    customer_id: int
    currency: str
    lines: list[DraftLine] = field(default_factory=list)
    discount: int = 0
    discount_label: str = ""
    tax: TaxDecision = field(default_factory=lambda: TaxDecision(0, "", ""))
    tax_amount: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.tax_amount

    def digest(self) -> str:
        body = {
            "currency": self.currency,
            "lines": [
                [
                    ln.kind,
                    ln.description,
                    ln.amount,
                    ln.quantity,
                    ln.price_id,
                    ln.pending_id,
                    ln.period_start.isoformat() if ln.period_start else None,
                    ln.period_end.isoformat() if ln.period_end else None,
                ]
                for ln in self.lines
            ],
            "discount": [self.discount, self.discount_label],
            "tax": [self.tax.rate_bp, self.tax.country, self.tax.note, self.tax_amount],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SubscriptionFacts:
    subscription: Subscription
    items: list[tuple[SubscriptionItem, Price, str]]  # item, its price, the product's name
    coupon: Coupon | None = None


def _seconds(a: datetime, b: datetime) -> int:
    return max(int((b - a).total_seconds()), 0)


def _day_label(start: datetime, end: datetime) -> str:
    last = end - timedelta(seconds=1)  # periods end exclusively; people read the last day
    return f"{start:%d %b} to {last:%d %b %Y}"


def coupon_applies(coupon: Coupon, starts: datetime | None, period_start: datetime) -> bool:
    if starts is None:
        return False
    elapsed = months_between(starts, period_start)
    if elapsed < 0:
        return False
    if coupon.duration == "once":
        return elapsed == 0
    if coupon.duration == "repeating":
        return elapsed < (coupon.duration_months or 0)
    return True  # forever


def _plan_lines(facts: SubscriptionFacts, start: datetime, end: datetime) -> list[DraftLine]:
    sub = facts.subscription
    billable_from = max(sub.trial_end or sub.started_at, sub.started_at, start)
    billable_to = min(sub.ended_at or end, end)
    lines = []
    for item, price, product in facts.items:
        if price.scheme not in LICENSED:
            continue
        a = max(item.started_at, billable_from)
        b = min(item.ended_at or billable_to, billable_to)
        if b <= a:
            continue
        full = charge(price, item.quantity)
        whole = a == start and b == end
        amount = (
            full
            if whole
            else pricing.round_minor(Decimal(full) * _seconds(a, b) / _seconds(start, end))
        )
        seats = f" x {item.quantity} seats" if price.scheme == "per_seat" else ""
        note = "" if whole else " (prorated)"
        lines.append(
            DraftLine(
                "subscription",
                f"{product} · {price.nickname}{seats}, {_day_label(a, b)}{note}",
                amount,
                item.quantity,
                price.id,
                a,
                b,
            )
        )
    return lines


def _usage_lines(
    facts: SubscriptionFacts, usage: dict[str, int], start: datetime, end: datetime
) -> list[DraftLine]:
    sub = facts.subscription
    window_end = min(sub.ended_at or end, end)
    if max(sub.trial_end or sub.started_at, start) >= window_end:
        return []  # a trial covers usage too; the month the trial ends bills the month's usage
    in_force: dict[str, tuple[SubscriptionItem, Price, str]] = {}
    for item, price, product in facts.items:
        if price.scheme in LICENSED or not price.metric:
            continue
        if item.started_at >= window_end or (item.ended_at and item.ended_at <= start):
            continue
        current = in_force.get(price.metric)
        if current is None or item.started_at > current[0].started_at:
            in_force[price.metric] = (item, price, product)
    lines = []
    for metric, (_, price, product) in sorted(in_force.items()):
        quantity = usage.get(metric, 0)
        if quantity <= 0:
            continue
        label = price.unit_label or METRICS.get(metric, metric)
        lines.append(
            DraftLine(
                "usage",
                f"{product} · {quantity:,} {label}, {_day_label(start, end)}",
                charge(price, quantity),
                quantity,
                price.id,
                start,
                end,
            )
        )
    return lines


def _discount(facts: SubscriptionFacts, amount: int, start: datetime) -> int:
    coupon = facts.coupon
    if coupon is None or amount <= 0:
        return 0
    if not coupon_applies(coupon, facts.subscription.coupon_starts, start):
        return 0
    if coupon.percent_off_bp:
        return pricing.round_minor(Decimal(amount) * coupon.percent_off_bp / 10_000)
    return min(coupon.amount_off or 0, amount)


def build_draft(
    customer: Customer,
    subscriptions: list[SubscriptionFacts],
    usage: dict[str, int],
    pending: list[PendingItem],
    start: datetime,
    end: datetime,
    seller_country: str,
) -> Draft:
    draft = Draft(customer.id, customer.currency)
    labels = []
    for facts in sorted(subscriptions, key=lambda f: f.subscription.id):
        lines = _plan_lines(facts, start, end) + _usage_lines(facts, usage, start, end)
        draft.lines.extend(lines)
        off = _discount(facts, sum(ln.amount for ln in lines), start)
        if off and facts.coupon is not None:
            draft.discount += off
            labels.append(f"{facts.coupon.name} ({facts.coupon.code})")
    for item in sorted(pending, key=lambda p: (p.effective_at, p.id)):
        draft.lines.append(
            DraftLine("adjustment", item.description, item.amount, pending_id=item.id)
        )
    draft.discount_label = ", ".join(labels)
    draft.tax = tax_for(customer.country, customer.vat_id, seller_country)
    taxable = max(draft.subtotal - draft.discount, 0)
    draft.tax_amount = pricing.round_minor(Decimal(taxable) * draft.tax.rate_bp / 10_000)
    return draft
