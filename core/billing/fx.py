"""Currency conversion for reporting only (dashboards, margin): invoices are never converted.
Rates are data (`data/billing/fx_rates.csv`, euro reference rates), so a figure can be redone."""

from __future__ import annotations

import csv
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from core.billing.pricing import exponent, round_minor
from core.errors import ValidationError

RATES_FILE = Path(__file__).resolve().parents[2] / "data" / "billing" / "fx_rates.csv"


@lru_cache(maxsize=1)
def per_eur() -> dict[str, Decimal]:
    with RATES_FILE.open(encoding="utf-8") as handle:
        return {row["currency"]: Decimal(row["per_eur"]) for row in csv.DictReader(handle)}


def currencies() -> list[str]:
    return sorted(per_eur())


def rate(source: str, target: str) -> Decimal:
    """Units of `target` per unit of `source`, corrected for the currencies' minor units."""
    rates = per_eur()
    for code in (source, target):
        if code not in rates:
            raise ValidationError(
                f"No exchange rate for {code!r}; known: {', '.join(currencies())}."
            )
    scale = Decimal(10) ** (exponent(target) - exponent(source))
    return rates[target] / rates[source] * scale


def convert(amount_minor: int, source: str, target: str) -> int:
    if source == target:
        return amount_minor
    return round_minor(Decimal(amount_minor) * rate(source, target))


def micros_usd_to_minor(micros: int, target: str) -> int:
    """LLM costs are micro-USD (`core.money`); as minor units of `target`."""
    cents = Decimal(micros) / 10_000
    return round_minor(cents * rate("USD", target))
