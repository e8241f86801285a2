"""VAT treatment, catalogue validation, reporting conversion and billing periods."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.billing import fx
from core.billing.catalog import PriceSpec, check_spec
from core.billing.periods import add_months, months_between, parse_period
from core.billing.pricing import Tier
from core.billing.taxes import OUTSIDE_SCOPE_NOTE, normalise_vat_id, tax_for, vat_rates
from core.errors import ValidationError


@pytest.mark.parametrize(
    ("country", "vat_id", "rate", "reverse"),
    [
        ("IE", None, 2300, False),  # the seller's own country
        ("IE", "IE6388047V", 2300, False),  # domestic B2B still pays local VAT
        ("DE", "DE136695976", 0, True),  # EU business elsewhere: reverse charge
        ("DE", None, 1900, False),  # EU consumer: their country's VAT (OSS)
        ("FI", None, 2550, False),  # rates as data, including fractional ones
        ("US", None, 0, False),
        ("CH", "CHE-123.456.789", 0, False),  # outside the EU whatever the id
    ],
)
def test_vat_treatment(country: str, vat_id: str | None, rate: int, reverse: bool) -> None:
    decision = tax_for(country, vat_id, "IE")
    assert (decision.rate_bp, decision.reverse_charge) == (rate, reverse)
    if country in ("US", "CH"):
        assert decision.note == OUTSIDE_SCOPE_NOTE


def test_every_member_state_has_a_rate() -> None:
    from core.orgs.countries import eu_codes

    assert set(eu_codes()) == set(vat_rates())


def test_vat_ids_are_normalised_or_refused() -> None:
    assert normalise_vat_id(" de 136 695 976 ", "DE") == "DE136695976"
    assert normalise_vat_id("", "DE") is None
    with pytest.raises(ValidationError, match="check digits"):
        normalise_vat_id("DE136695977", "DE")
    with pytest.raises(ValidationError, match="billing country is AT"):
        normalise_vat_id("DE136695976", "AT")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PriceSpec("plan", "k1", "EUR", "hourly"), "Unknown pricing scheme"),
        (PriceSpec("plan", "k1", "JPY", "flat", "100"), "not billed here"),
        (PriceSpec("plan", "k1", "EUR", "per_unit", "0.5"), "choose a usage metric"),
        (PriceSpec("plan", "k1", "EUR", "flat", "1", metric="api_calls"), "not metered"),
        (PriceSpec("plan", "k1", "EUR", "flat", "10.5"), "whole number"),
        (PriceSpec("plan", "k1", "EUR", "flat", "-1"), "between 0"),
        (PriceSpec("plan", "k1", "EUR", "flat", "abc"), "not a number"),
        (PriceSpec("plan", "k1", "EUR", "package", "100", metric="api_calls"), "package size"),
        (
            PriceSpec("plan", "k1", "EUR", "graduated", metric="api_calls", tiers=[Tier(10)]),
            "last tier",
        ),
        (PriceSpec("plan", "Bad Key!", "EUR", "flat", "1"), "Price key"),
    ],
)
def test_bad_price_specs_say_what_to_fix(spec: PriceSpec, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_spec(spec)


def test_a_fractional_unit_price_is_kept_exactly() -> None:
    spec = check_spec(PriceSpec("llm", "tok", "eur", "per_unit", "0.00005", metric="api_calls"))
    assert (spec.currency, Decimal(spec.unit_amount)) == ("EUR", Decimal("0.00005"))


def test_reporting_conversion_uses_the_rate_table() -> None:
    assert fx.convert(10_000, "EUR", "EUR") == 10_000
    assert fx.convert(10_000, "EUR", "USD") == round(10_000 * fx.per_eur()["USD"])
    # micro-USD of LLM cost to euro cents: $1 = 1,000,000 micros
    assert fx.micros_usd_to_minor(1_000_000, "USD") == 100
    with pytest.raises(ValidationError, match="No exchange rate"):
        fx.convert(1, "EUR", "CHF")


def test_periods() -> None:
    start, end = parse_period("2026-12")
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert add_months(start, -12) == datetime(2025, 12, 1, tzinfo=UTC)
    assert months_between(datetime(2025, 11, 30, tzinfo=UTC), start) == 13
    for bad in ("2026-13", "26-01", "", "2026-1x"):
        with pytest.raises(ValidationError):
            parse_period(bad)
