"""Which VAT an invoice carries, from rates kept as data (`data/billing/vat_rates.csv`).

The console sells an electronically supplied service, so (VAT Directive 2006/112/EC):
- a customer in the seller's own country pays that country's VAT, business or not;
- an EU business elsewhere with a valid VAT id accounts for the VAT itself (reverse charge,
  Art. 196), and the invoice says so;
- an EU customer without a VAT id pays the VAT of their own country (Art. 58, via the OSS);
- a customer outside the EU is outside the scope of EU VAT.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import ValidationError
from core.privacy.identifiers import compact, is_valid_vat

RATES_FILE = Path(__file__).resolve().parents[2] / "data" / "billing" / "vat_rates.csv"
REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 VAT Directive)"
)
OUTSIDE_SCOPE_NOTE = "Outside the scope of EU VAT (customer established outside the EU)"


@dataclass(frozen=True)
class TaxDecision:
    rate_bp: int  # basis points: 2200 = 22 %
    country: str  # whose rate applies ("" when none does)
    note: str
    reverse_charge: bool = False


@lru_cache(maxsize=1)
def vat_rates() -> dict[str, int]:
    with RATES_FILE.open(encoding="utf-8") as handle:
        return {row["country"]: int(row["standard_rate_bp"]) for row in csv.DictReader(handle)}


def normalise_vat_id(value: str | None, country: str) -> str | None:
    """A VAT id as stored: compact, upper case, with its country prefix (Greece uses EL).
    Refuses one that fails the country's format or check digits, or names another country."""
    if value is None or not value.strip():
        return None
    number = compact(value).upper()
    if not is_valid_vat(number):
        raise ValidationError(
            f"{value.strip()[:32]!r} is not a valid EU VAT number: it needs the country prefix "
            "(e.g. DE123456788) and the country's format and check digits."
        )
    prefix = number[:2]
    expected = "EL" if country.upper() == "GR" else country.upper()
    if prefix != expected:
        raise ValidationError(
            f"The VAT number is from {prefix}, but the customer's billing country is {country}."
        )
    return number


def tax_for(country: str, vat_id: str | None, seller_country: str) -> TaxDecision:
    country, seller = country.upper(), seller_country.upper()
    rates = vat_rates()
    if country not in rates:
        return TaxDecision(0, "", OUTSIDE_SCOPE_NOTE)
    if country == seller:
        return TaxDecision(rates[country], country, f"VAT {rates[country] / 100:g} % ({country})")
    if vat_id:
        return TaxDecision(0, country, REVERSE_CHARGE_NOTE, reverse_charge=True)
    return TaxDecision(rates[country], country, f"VAT {rates[country] / 100:g} % ({country}, OSS)")
