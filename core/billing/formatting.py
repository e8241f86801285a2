"""Money as people read it. Amounts are integer minor units; nothing here rounds a stored value,
it only chooses how many digits to show."""

from __future__ import annotations

from decimal import Decimal

from core.billing.pricing import exponent


def money(amount: int, currency: str) -> str:
    """1234567, "EUR" -> "EUR 12,345.67"."""
    digits = exponent(currency)
    return f"{currency} {Decimal(amount).scaleb(-digits):,.{digits}f}"


def compact_money(amount: int, currency: str) -> str:
    """For headline figures that must fit a card: "EUR 395.7k", "EUR 4.75M"; small amounts
    exactly as `money`."""
    value = Decimal(amount).scaleb(-exponent(currency))
    sign = "-" if value < 0 else ""
    size = abs(value)
    if size >= 1_000_000:
        return f"{sign}{currency} {size / 1_000_000:,.2f}M"
    if size >= 10_000:
        return f"{sign}{currency} {size / 1_000:,.1f}k"
    return money(amount, currency)
