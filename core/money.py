"""Money as integers. LLM costs are micro-USD (1e-6 USD): a single call often costs a fraction of
a cent, and floats would drift when millions of calls are summed."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from core.errors import ValidationError

MICROS_PER_UNIT = 1_000_000


def parse_usd_to_micros(value: str | Decimal | float, *, field: str, maximum: Decimal) -> int:
    """'2.50' -> 2_500_000. Refuses negatives, non-numbers and absurd values with a message."""
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"{field}: {str(value)[:40]!r} is not a number.") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(f"{field} must be zero or more.")
    if amount > maximum:
        raise ValidationError(f"{field} must be at most {maximum}.")
    return int((amount * MICROS_PER_UNIT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_usd(micros: int) -> Decimal:
    return Decimal(micros) / MICROS_PER_UNIT


def format_usd(micros: int) -> str:
    """Human display: cents for big sums, more digits for the small costs of single calls."""
    usd = micros_to_usd(micros)
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    return f"${usd:,.6f}".rstrip("0").rstrip(".") if usd else "$0"
