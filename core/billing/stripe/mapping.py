"""Ledger rows -> Stripe request parameters, and the idempotency key of every write.

Pure functions: no session, no network, so they are unit-tested on rows built in memory. Amounts
stay integers of minor units (or decimal strings for fractional unit prices); currencies go to
Stripe in lower case. Every object carries `omni_*` metadata that names its ledger row, so a person
can find it in the Stripe dashboard.

A request must be byte-for-byte the same when a failed push is re-run: Stripe replays the first
answer for a known idempotency key only if the parameters match. Nothing here reads the clock
(the caller passes `now` where it matters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.billing.catalog import METERED, METRICS, tiers_of
from core.billing.models import (
    Coupon,
    Customer,
    Invoice,
    InvoiceLine,
    Price,
    Product,
    Subscription,
)
from core.errors import ValidationError

KEY_VERSION = "v1"
MAX_DECIMALS = 12  # Stripe's limit for unit_amount_decimal
Params = dict[str, Any]


def idempotency_key(namespace: str, kind: str, ledger_id: int | str, step: str = "") -> str:
    """`omni-<namespace>-<kind>-<id>[-<step>]-v1`. The namespace is this database's own (kept in
    SyncState), so two consoles pushing to one Stripe test account never share a key."""
    suffix = f"-{step}" if step else ""
    return f"omni-{namespace}-{kind}-{ledger_id}{suffix}-{KEY_VERSION}"


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def amount_fields(value: Decimal | str, field: str = "unit_amount") -> Params:
    """`{field: int}` for whole minor units, else `{field_decimal: "0.015"}` (Stripe takes up to
    12 decimal places there)."""
    amount = Decimal(value)
    if amount == amount.to_integral_value():
        return {field: int(amount)}
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMALS:
        raise ValidationError(
            f"Stripe takes at most {MAX_DECIMALS} decimal places of a minor unit; "
            f"{_decimal_text(amount)} has more. Create a rounded price in the catalogue."
        )
    return {f"{field}_decimal": _decimal_text(amount)}


def product_params(product: Product) -> Params:
    params: Params = {
        "name": product.name,
        "active": product.active,
        "metadata": {"omni_product_key": product.key, "omni_product_id": str(product.id)},
    }
    if product.description:  # Stripe refuses an empty description
        params["description"] = product.description
    return params


def meter_event_name(namespace: str, metric: str) -> str:
    return f"omni_{namespace}_{metric}"


def meter_params(namespace: str, metric: str) -> Params:
    """A Billing Meter per usage metric: since API version 2025-03-31 Stripe accepts a metered
    price only with a meter behind it. The console never sends meter events (its own invoice run
    prices the usage); the meter exists so the price can."""
    return {
        "display_name": METRICS.get(metric, metric),
        "event_name": meter_event_name(namespace, metric),
        "default_aggregation": {"formula": "sum"},
    }


def price_params(price: Price, product_stripe_id: str, meter_id: str | None) -> Params:
    metered = price.scheme in METERED
    if metered and not meter_id:
        raise ValidationError(f"Price {price.lookup_key} is metered and needs its meter first.")
    recurring: Params = {"interval": price.interval, "usage_type": "licensed"}
    if metered:
        recurring = {"interval": price.interval, "usage_type": "metered", "meter": meter_id}
    params: Params = {
        "product": product_stripe_id,
        "currency": price.currency.lower(),
        "nickname": price.nickname or price.lookup_key,
        "recurring": recurring,
        "active": price.active,
        "metadata": {"omni_price_key": price.lookup_key, "omni_price_id": str(price.id)},
    }
    if price.scheme in ("graduated", "volume"):
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = price.scheme
        params["tiers"] = [
            {
                "up_to": "inf" if tier.up_to is None else tier.up_to,
                **amount_fields(tier.unit_amount),
                "flat_amount": tier.flat_amount,
            }
            for tier in tiers_of(price)
        ]
        return params
    params["billing_scheme"] = "per_unit"
    params.update(amount_fields(price.unit_amount))
    if price.scheme == "package":  # the amount is per package of `package_size` units
        params["transform_quantity"] = {
            "divide_by": price.package_size or 1,
            "round": "up" if price.package_round_up else "down",
        }
    return params


def customer_params(customer: Customer) -> Params:
    # The VAT id is not sent: Stripe validates tax ids per country, and the console's own invoice
    # run already decided the VAT (the invoices carry it as a line).
    return {
        "name": customer.name,
        "email": customer.email,
        "address": {"country": customer.country},
        "metadata": {
            "omni_customer_id": str(customer.id),
            "omni_organisation_id": str(customer.organisation_id),
        },
    }


def coupon_params(coupon: Coupon) -> Params:
    params: Params = {
        "name": coupon.name,
        "duration": coupon.duration,
        "metadata": {"omni_coupon_code": coupon.code, "omni_coupon_id": str(coupon.id)},
    }
    if coupon.percent_off_bp is not None:
        params["percent_off"] = _decimal_text(Decimal(coupon.percent_off_bp) / 100)
    else:
        params["amount_off"] = coupon.amount_off
        params["currency"] = (coupon.currency or "").lower()
    if coupon.duration == "repeating":
        params["duration_in_months"] = coupon.duration_months
    return params


@dataclass(frozen=True)
class ItemRef:
    """A current subscription item with the Stripe id of its price."""

    price: Price
    price_stripe_id: str
    quantity: int


def subscription_params(
    sub: Subscription,
    customer_stripe_id: str,
    items: list[ItemRef],
    coupon_stripe_id: str | None,
    days_until_due: int,
    now: datetime,
) -> Params:
    """Stripe would bill a subscription by itself; the console's invoice run is the one billing
    engine, so the mirror sends invoices (never charges a card) and `push` pauses its collection
    right after creating it. Metered items carry no quantity (their meter would). A trial that
    already ended (the ledger's trial job has not run yet) is not sent: Stripe refuses a past
    `trial_end`."""
    params: Params = {
        "customer": customer_stripe_id,
        "items": [
            {"price": item.price_stripe_id}
            if item.price.scheme in METERED
            else {"price": item.price_stripe_id, "quantity": item.quantity}
            for item in items
        ],
        "collection_method": "send_invoice",
        "days_until_due": days_until_due,
        "proration_behavior": "none",
        "metadata": {"omni_subscription_id": str(sub.id), "omni_customer_id": str(sub.customer_id)},
        "expand": ["latest_invoice"],
    }
    if sub.status == "trialing" and sub.trial_end is not None and sub.trial_end > now:
        params["trial_end"] = unix(sub.trial_end)
    if coupon_stripe_id:
        params["discounts"] = [{"coupon": coupon_stripe_id}]
    return params


def invoice_params(invoice: Invoice, customer_stripe_id: str, days_until_due: int) -> Params:
    params: Params = {
        "customer": customer_stripe_id,
        "currency": invoice.currency.lower(),
        "collection_method": "send_invoice",
        "days_until_due": days_until_due,
        "auto_advance": False,  # the console decides when an invoice moves, not Stripe
        "pending_invoice_items_behavior": "exclude",  # only the items created for it below
        "metadata": {
            "omni_invoice_id": str(invoice.id),
            "omni_invoice_number": invoice.number or "",
            "omni_period_start": invoice.period_start.date().isoformat(),
        },
    }
    if invoice.number:
        params["number"] = invoice.number  # the same number on both sides
    if invoice.tax_note:
        params["description"] = invoice.tax_note[:500]
    return params


def days_until_due(invoice: Invoice, default_days: int) -> int:
    if invoice.due_at and invoice.issued_at:
        return max((invoice.due_at - invoice.issued_at).days, 0)
    return default_days


def _rate_text(rate_bp: int) -> str:
    return _decimal_text(Decimal(rate_bp) / 100)


def invoice_item_params(
    invoice: Invoice, lines: list[InvoiceLine], customer_stripe_id: str, stripe_invoice_id: str
) -> list[tuple[str, Params]]:
    """(idempotency step, params) of every Stripe invoice item of one ledger invoice: its lines,
    the discount (the ledger keeps it on the invoice, not as a line) and the VAT as lines of their
    own, so the Stripe invoice's total is the ledger's total to the minor unit."""
    currency = invoice.currency.lower()

    def item(step: str, amount: int, description: str, **extra: Any) -> tuple[str, Params]:
        params: Params = {
            "customer": customer_stripe_id,
            "invoice": stripe_invoice_id,
            "amount": amount,
            "currency": currency,
            "description": description[:500] or "Charge",
            **extra,
        }
        return step, params

    items = []
    for line in sorted(lines, key=lambda ln: ln.id):
        extra: Params = {"metadata": {"omni_invoice_line_id": str(line.id), "kind": line.kind}}
        if line.period_start and line.period_end:
            extra["period"] = {"start": unix(line.period_start), "end": unix(line.period_end)}
        items.append(item(f"line-{line.id}", line.amount, line.description, **extra))
    adjustment = invoice.total - invoice.tax - sum(line.amount for line in lines)
    if adjustment:
        label = "Discount" if adjustment == -invoice.discount else "Adjustment"
        items.append(item("adjustment", adjustment, label))
    if invoice.tax:
        items.append(item("tax", invoice.tax, f"VAT {_rate_text(invoice.tax_rate_bp)} %"))
    return items
