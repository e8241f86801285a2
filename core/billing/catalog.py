"""The catalogue: products, their prices in each currency, and coupons.

A price is one of six schemes. Licensed: `flat` (an amount per month) and `per_seat` (amount x
seats). Metered, on a usage metric: `per_unit`, `package`, `graduated` and `volume` tiers. Prices
are immutable once created, as in Stripe: to change one, create a new price and move
subscriptions to it, so every past invoice keeps the price it was charged at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing import pricing
from core.billing.models import Coupon, Price, Product
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.text import clean_text

LICENSED = ("flat", "per_seat")
METERED = ("per_unit", "package", "graduated", "volume")
SCHEMES = LICENSED + METERED
# usage metrics: the two LLM ones are read from the LLM usage ledger, the rest are imported
METRICS = {
    "llm_input_tokens": "LLM input tokens",
    "llm_output_tokens": "LLM output tokens",
    "kb_storage_gb": "Knowledge-base storage (GB-month)",
    "api_calls": "API calls",
}
LEDGER_METRICS = ("llm_input_tokens", "llm_output_tokens")
BILLING_CURRENCIES = ("EUR", "USD", "GBP")
COUPON_DURATIONS = ("once", "repeating", "forever")
_KEY = re.compile(r"^[a-z][a-z0-9_\-]{1,63}$")
MAX_UNIT_AMOUNT = Decimal(100_000_000)  # a million in major units: anything above is a typo


@dataclass(frozen=True)
class PriceSpec:
    """A new price as a person or the seeder describes it; amounts in minor units."""

    product_key: str
    lookup_key: str
    currency: str
    scheme: str
    unit_amount: str = "0"
    nickname: str = ""
    metric: str | None = None
    unit_label: str = ""
    package_size: int | None = None
    package_round_up: bool = True
    tiers: list[pricing.Tier] = field(default_factory=list)


def check_key(value: str, what: str) -> str:
    key = value.strip().lower()
    if not _KEY.fullmatch(key):
        raise ValidationError(
            f"{what} {value[:40]!r} is not valid: 2-64 characters, lower-case letters, digits, "
            "'_' or '-', starting with a letter."
        )
    return key


def check_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in BILLING_CURRENCIES:
        raise ValidationError(
            f"Currency {value[:8]!r} is not billed here. Choose one of: "
            f"{', '.join(BILLING_CURRENCIES)}."
        )
    return code


def _decimal(value: str | Decimal, what: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"{what}: {str(value)[:40]!r} is not a number.") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_UNIT_AMOUNT:
        raise ValidationError(f"{what} must be between 0 and {MAX_UNIT_AMOUNT} minor units.")
    return amount


def tiers_to_json(tiers: list[pricing.Tier]) -> str:
    return json.dumps(
        [
            {"up_to": t.up_to, "unit_amount": str(t.unit_amount), "flat_amount": t.flat_amount}
            for t in tiers
        ]
    )


def tiers_of(price: Price) -> list[pricing.Tier]:
    return [
        pricing.Tier(t["up_to"], Decimal(t["unit_amount"]), int(t["flat_amount"]))
        for t in json.loads(price.tiers_json or "[]")
    ]


def check_spec(spec: PriceSpec) -> PriceSpec:
    """The spec, normalised, or a ValidationError that says what to fix."""
    scheme = spec.scheme.strip().lower()
    if scheme not in SCHEMES:
        raise ValidationError(f"Unknown pricing scheme {spec.scheme[:20]!r}: {', '.join(SCHEMES)}.")
    metric = (spec.metric or "").strip() or None
    if scheme in METERED and metric not in METRICS:
        raise ValidationError(
            f"A {scheme} price is metered: choose a usage metric ({', '.join(METRICS)})."
        )
    if scheme in LICENSED and metric:
        raise ValidationError(f"A {scheme} price is not metered: leave the metric empty.")
    unit_amount = _decimal(spec.unit_amount, "Unit amount")
    if scheme in ("flat", "per_seat", "package") and unit_amount != unit_amount.to_integral():
        raise ValidationError(f"A {scheme} amount is a whole number of minor units.")
    if scheme == "package" and (spec.package_size is None or spec.package_size < 1):
        raise ValidationError("A package price needs a package size of at least 1 unit.")
    if scheme in ("graduated", "volume"):
        pricing.check_tiers(spec.tiers)
    elif spec.tiers:
        raise ValidationError(f"A {scheme} price has no tiers.")
    return PriceSpec(
        product_key=check_key(spec.product_key, "Product key"),
        lookup_key=check_key(spec.lookup_key, "Price key"),
        currency=check_currency(spec.currency),
        scheme=scheme,
        unit_amount=str(unit_amount),
        nickname=clean_text(spec.nickname, 120),
        metric=metric,
        unit_label=clean_text(spec.unit_label, 32),
        package_size=spec.package_size if scheme == "package" else None,
        package_round_up=spec.package_round_up,
        tiers=list(spec.tiers),
    )


def charge(price: Price, quantity: int) -> int:
    """What `quantity` (seats, or units of usage) costs for one whole period, in minor units."""
    unit = Decimal(price.unit_amount)
    if price.scheme == "flat":
        return pricing.round_minor(unit)
    if price.scheme in ("per_seat", "per_unit"):
        return pricing.per_unit(unit, quantity)
    if price.scheme == "package":
        return pricing.package(
            int(unit), price.package_size or 1, quantity, round_up=price.package_round_up
        )
    if price.scheme == "graduated":
        return pricing.graduated(tiers_of(price), quantity)
    if price.scheme == "volume":
        return pricing.volume(tiers_of(price), quantity)
    raise ValidationError(f"Price {price.lookup_key} has an unknown scheme {price.scheme!r}.")


def add_product(
    session: Session, actor: Actor, key: str, name: str, description: str = ""
) -> Product:
    key = check_key(key, "Product key")
    if session.scalar(select(Product.id).where(Product.key == key)) is not None:
        raise Conflict(f"A product with the key {key!r} already exists.")
    product = Product(
        key=key, name=clean_text(name, 120) or key, description=clean_text(description, 500)
    )
    session.add(product)
    session.flush()
    record(session, actor, "billing.product.create", f"product:{key}", {"name": product.name})
    return product


def add_price(session: Session, actor: Actor, spec: PriceSpec) -> Price:
    spec = check_spec(spec)
    product = session.scalar(select(Product).where(Product.key == spec.product_key))
    if product is None:
        raise NotFound(f"No product with the key {spec.product_key!r}.")
    if session.scalar(select(Price.id).where(Price.lookup_key == spec.lookup_key)) is not None:
        raise Conflict(
            f"A price with the key {spec.lookup_key!r} already exists; prices never change, "
            "so give the new one a new key."
        )
    price = Price(
        product_id=product.id,
        lookup_key=spec.lookup_key,
        nickname=spec.nickname or spec.lookup_key,
        currency=spec.currency,
        scheme=spec.scheme,
        unit_amount=spec.unit_amount,
        package_size=spec.package_size,
        package_round_up=spec.package_round_up,
        tiers_json=tiers_to_json(spec.tiers) if spec.tiers else None,
        metric=spec.metric,
        unit_label=spec.unit_label,
        created_by=actor.username,
    )
    session.add(price)
    session.flush()
    record(
        session,
        actor,
        "billing.price.create",
        f"price:{spec.lookup_key}",
        {"product": product.key, "currency": spec.currency, "scheme": spec.scheme},
    )
    return price


def create_product(actor: Actor, key: str, name: str, description: str = "") -> int:
    require(actor, Permission.BILLING_MANAGE, action="billing.product.create")
    with unit_of_work() as session:
        return add_product(session, actor, key, name, description).id


def create_price(actor: Actor, spec: PriceSpec) -> int:
    require(actor, Permission.BILLING_MANAGE, action="billing.price.create")
    with unit_of_work() as session:
        return add_price(session, actor, spec).id


def set_price_active(actor: Actor, lookup_key: str, active: bool) -> None:
    """Archive a price (no new subscriptions; existing ones keep it) or bring it back."""
    require(actor, Permission.BILLING_MANAGE, action="billing.price.archive")
    with unit_of_work() as session:
        price = session.scalar(select(Price).where(Price.lookup_key == lookup_key))
        if price is None:
            raise NotFound(f"No price with the key {lookup_key!r}.")
        price.active = active
        record(session, actor, "billing.price.archive", f"price:{lookup_key}", {"active": active})


def add_coupon(
    session: Session,
    actor: Actor,
    code: str,
    name: str,
    *,
    percent_off_bp: int | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = "once",
    duration_months: int | None = None,
) -> Coupon:
    code = code.strip().upper()
    if not re.fullmatch(r"[A-Z0-9_\-]{3,32}", code):
        raise ValidationError("A coupon code has 3-32 letters, digits, '_' or '-'.")
    if (percent_off_bp is None) == (amount_off is None):
        raise ValidationError("A coupon takes either a percentage or an amount off, not both.")
    if percent_off_bp is not None and not 0 < percent_off_bp <= 10_000:
        raise ValidationError("A percentage off is between 0.01 % and 100 %.")
    if amount_off is not None:
        if amount_off <= 0:
            raise ValidationError("An amount off must be positive.")
        currency = check_currency(currency or "")
    else:
        currency = None
    if duration not in COUPON_DURATIONS:
        raise ValidationError(f"Coupon duration must be one of: {', '.join(COUPON_DURATIONS)}.")
    if duration == "repeating" and not (duration_months and 1 <= duration_months <= 36):
        raise ValidationError("A repeating coupon needs a duration of 1 to 36 months.")
    if session.scalar(select(Coupon.id).where(Coupon.code == code)) is not None:
        raise Conflict(f"A coupon with the code {code} already exists.")
    coupon = Coupon(
        code=code,
        name=clean_text(name, 120) or code,
        percent_off_bp=percent_off_bp,
        amount_off=amount_off,
        currency=currency,
        duration=duration,
        duration_months=duration_months if duration == "repeating" else None,
    )
    session.add(coupon)
    session.flush()
    record(session, actor, "billing.coupon.create", f"coupon:{code}", {"duration": duration})
    return coupon


def create_coupon(actor: Actor, code: str, name: str, **terms: object) -> int:
    require(actor, Permission.BILLING_MANAGE, action="billing.coupon.create")
    with unit_of_work() as session:
        return add_coupon(session, actor, code, name, **terms).id  # type: ignore[arg-type]


@dataclass(frozen=True)
class PriceRow:
    lookup_key: str
    product_key: str
    product: str
    nickname: str
    currency: str
    scheme: str
    unit_amount: str
    metric: str | None
    package_size: int | None
    tiers: str
    active: bool
    stripe_id: str | None
    package_round_up: bool = True
    unit_label: str = ""


def list_prices(actor: Actor) -> list[PriceRow]:
    require(actor, Permission.BILLING_READ, action="billing.catalog.read")
    with unit_of_work(read_only=True) as session:
        rows = session.execute(
            select(Price, Product.key, Product.name)
            .join(Product)
            .order_by(Product.key, Price.lookup_key)
        ).all()
        return [
            PriceRow(
                p.lookup_key,
                key,
                name,
                p.nickname,
                p.currency,
                p.scheme,
                p.unit_amount,
                p.metric,
                p.package_size,
                p.tiers_json or "",
                p.active,
                p.stripe_id,
                p.package_round_up,
                p.unit_label,
            )
            for p, key, name in rows
        ]


def list_products(actor: Actor) -> list[tuple[str, str, bool]]:
    """(key, name, active) of every product."""
    require(actor, Permission.BILLING_READ, action="billing.catalog.read")
    with unit_of_work(read_only=True) as session:
        return [
            (p.key, p.name, p.active)
            for p in session.scalars(select(Product).order_by(Product.key))
        ]


def quote(actor: Actor, lookup_key: str, quantity: int) -> int:
    """What `quantity` costs for a whole month on a price, in its minor units."""
    require(actor, Permission.BILLING_READ, action="billing.catalog.read")
    with unit_of_work(read_only=True) as session:
        price = session.scalar(select(Price).where(Price.lookup_key == lookup_key))
        if price is None:
            raise NotFound(f"No price with the key {lookup_key!r}.")
        return charge(price, quantity)


def list_coupons(actor: Actor) -> list[Coupon]:
    require(actor, Permission.BILLING_READ, action="billing.catalog.read")
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Coupon).order_by(Coupon.code)))
