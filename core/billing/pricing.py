"""Price arithmetic in integer minor units: per-unit, package, graduated and volume tiers,
proration, and exact allocation of an amount over lines.

Unit prices may be fractions of a minor unit (an LLM token costs a few millionths of a cent), so
they are `Decimal`s, as Stripe's `unit_amount_decimal` is; every line total is rounded once, half
up, to a whole minor unit. Nothing here touches floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from core.errors import ValidationError

# ISO 4217 minor-unit exponents of the currencies the console bills in (others: 2).
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "HUF": 2, "BHD": 3, "KWD": 3}


def exponent(currency: str) -> int:
    code = currency.upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError(f"{currency!r} is not an ISO 4217 currency code (e.g. EUR).")
    return _EXPONENTS.get(code, 2)


def to_minor(amount: Decimal | str, currency: str) -> int:
    """'12.345' EUR -> 1235 (half up)."""
    scaled = Decimal(amount) * (Decimal(10) ** exponent(currency))
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _check_quantity(quantity: int) -> None:
    if quantity < 0:
        raise ValidationError("A quantity cannot be negative.")


def per_unit(unit_amount: Decimal, quantity: int) -> int:
    _check_quantity(quantity)
    return round_minor(unit_amount * quantity)


def package(package_amount: int, package_size: int, quantity: int, *, round_up: bool = True) -> int:
    """Price per started (or, with round_up=False, completed) package of `package_size` units."""
    _check_quantity(quantity)
    if package_size < 1:
        raise ValidationError("A package holds at least one unit.")
    rounding = ROUND_CEILING if round_up else ROUND_FLOOR
    packages = (Decimal(quantity) / package_size).quantize(Decimal(1), rounding=rounding)
    return package_amount * int(packages)


@dataclass(frozen=True)
class Tier:
    up_to: int | None  # inclusive upper bound of this tier; None = everything above
    unit_amount: Decimal = Decimal(0)  # per unit, in minor units (may be fractional)
    flat_amount: int = 0  # once, when any unit falls in this tier


def check_tiers(tiers: Sequence[Tier]) -> None:
    if not tiers:
        raise ValidationError("A tiered price needs at least one tier.")
    bounds = [t.up_to for t in tiers]
    if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
        raise ValidationError("Only the last tier may be open-ended, and it must be.")
    finite = [b for b in bounds if b is not None]
    if any(b < 1 for b in finite) or finite != sorted(set(finite)):
        raise ValidationError("Tier bounds must be positive and strictly increasing.")
    if any(t.unit_amount < 0 or t.flat_amount < 0 for t in tiers):
        raise ValidationError("Tier prices cannot be negative.")


def graduated(tiers: Sequence[Tier], quantity: int) -> int:
    """Each tier prices the units that fall inside it (Stripe's `tiers_mode=graduated`)."""
    _check_quantity(quantity)
    check_tiers(tiers)
    total, lower = Decimal(0), 0
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        units = upper - lower
        if units <= 0:
            break
        total += tier.unit_amount * units + tier.flat_amount
        lower = upper
    return round_minor(total)


def volume(tiers: Sequence[Tier], quantity: int) -> int:
    """Every unit at the price of the tier the total quantity falls in (`tiers_mode=volume`)."""
    _check_quantity(quantity)
    check_tiers(tiers)
    if quantity == 0:
        return 0
    tier = next(t for t in tiers if t.up_to is None or quantity <= t.up_to)
    return round_minor(tier.unit_amount * quantity + tier.flat_amount)


def prorate(amount: int, period_start: datetime, period_end: datetime, at: datetime) -> int:
    """The share of a period's `amount` that falls after `at` (to the second, as Stripe does)."""
    if period_end <= period_start:
        raise ValidationError("A billing period must end after it starts.")
    if not period_start <= at <= period_end:
        raise ValidationError("The change must fall inside the billing period.")
    remaining = Decimal(int((period_end - at).total_seconds()))
    length = Decimal(int((period_end - period_start).total_seconds()))
    return round_minor(Decimal(amount) * remaining / length)


def plan_change(
    old_amount: int, new_amount: int, period_start: datetime, period_end: datetime, at: datetime
) -> tuple[int, int]:
    """(credit for the unused old plan as a negative amount, charge for the new plan's rest)."""
    return (
        -prorate(old_amount, period_start, period_end, at),
        prorate(new_amount, period_start, period_end, at),
    )


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` over lines in proportion to `weights`, exactly (largest remainder): the
    parts always sum to `total`, which per-line rounding alone does not guarantee."""
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValidationError("Allocation needs non-negative weights that are not all zero.")
    whole = sum(weights)
    sign = -1 if total < 0 else 1
    shares = [abs(total) * w for w in weights]
    parts = [s // whole for s in shares]
    short = abs(total) - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] % whole), i))
    for i in order[:short]:
        parts[i] += 1
    return [sign * p for p in parts]
