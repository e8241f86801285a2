"""Structured identifiers for the PII engine: published examples pass, look-alikes fail, and any
single mistyped digit is caught by the check digit (property tests)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.privacy.identifiers import (
    emso_birth_date,
    is_valid_emso,
    is_valid_iban,
    is_valid_si_tax_number,
    is_valid_vat,
)

# Published examples (ISO 13616 / bank documentation; python-stdnum's documented VAT examples;
# the EMŠO example of the Slovenian register's documentation).
VALID_VAT = [
    "ATU13585627", "BE 0403.019.261", "DE 136,695 976".replace(",", ""), "DK 13 58 56 28",
    "FI20774740", "FR 40 303 265 045", "HR33392005961", "IT 00743110157", "LU 150 274 42",
    "NL004495445B01", "PL 856-734-62-15", "PT 501 964 843", "SI 5022 3054", "EL094259216",
    "GR094259216", "ESA12345674", "IE6433435F", "XIGD123",
]  # fmt: skip
VALID_IBAN = [
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "SI56 2633 0001 2039 086",
    "si56263300012039086",
]


@pytest.mark.parametrize("number", VALID_VAT)
def test_published_vat_numbers_are_valid(number: str) -> None:
    assert is_valid_vat(number)


@pytest.mark.parametrize(
    "number",
    [
        "DE136695977",  # check digit off by one
        "ATU13585628",
        "BE0403019262",
        "SI50223055",
        "NL004495445B0",  # format
        "US123456789",  # not an EU prefix
        "SI0223054",  # too short
        "FR40303265046",
        "PL8567346216",
        "' OR 1=1 --",
        "",
    ],
)
def test_look_alike_vat_numbers_are_refused(number: str) -> None:
    assert not is_valid_vat(number)


@pytest.mark.parametrize("iban", VALID_IBAN)
def test_published_ibans_are_valid(iban: str) -> None:
    assert is_valid_iban(iban)


def test_ibans_with_wrong_length_or_country_or_characters_fail() -> None:
    assert not is_valid_iban("SI56 2633 0001 2039 08")  # 18 characters, SI has 19
    assert not is_valid_iban("DE89 3704 0044 0532 0130 0X")
    assert not is_valid_iban("1234 5678")


def _mutate(value: str, position: int, delta: int) -> str:
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    at = digits[position % len(digits)]
    changed = str((int(value[at]) + delta) % 10)
    return value[:at] + changed + value[at + 1 :]


@given(st.sampled_from(VALID_IBAN[:3]), st.integers(0, 40), st.integers(1, 9))
def test_any_single_digit_error_breaks_an_iban(iban: str, position: int, delta: int) -> None:
    assert not is_valid_iban(_mutate(iban.replace(" ", ""), position, delta))


@given(st.integers(1_000_000, 9_999_999), st.integers(0, 7), st.integers(1, 9))
def test_si_tax_numbers_catch_every_single_digit_error(
    stem: int, position: int, delta: int
) -> None:
    digits = str(stem)
    weighted = sum(int(d) * w for d, w in zip(digits, (8, 7, 6, 5, 4, 3, 2), strict=True))
    check = 11 - weighted % 11
    if check == 11:
        assert not is_valid_si_tax_number(digits + "0")
        return
    number = digits + str(0 if check == 10 else check)
    assert is_valid_si_tax_number(number) and is_valid_si_tax_number("SI " + number)
    mutated = _mutate(number, position, delta)
    assert mutated == number or not is_valid_si_tax_number(mutated)


def test_emso_checks_digit_and_date() -> None:
    assert is_valid_emso("0101006500006")
    assert emso_birth_date("0101006500006") == date(2006, 1, 1)
    assert emso_birth_date("1503985500002") == date(1985, 3, 15)
    assert not is_valid_emso("0101006500007")  # check digit
    assert not is_valid_emso("3102006500006")  # 31 February
    assert not is_valid_emso("010100650000")  # 12 digits


@given(st.integers(0, 11), st.integers(1, 9))
def test_any_single_digit_error_breaks_an_emso(position: int, delta: int) -> None:
    assert not is_valid_emso(_mutate("0101006500006", position, delta))
