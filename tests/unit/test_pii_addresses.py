"""Street addresses as whole blocks (core.privacy.addresses): European and US forms, units,
military addresses, and numbers that are not addresses."""

from __future__ import annotations

import pytest

from core.privacy.addresses import find_addresses


def _found(text: str) -> list[str]:
    return [text[s.start : s.end] for s in find_addresses(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ana lives at Slovenska cesta 12, 1000 Ljubljana.", "Slovenska cesta 12, 1000 Ljubljana"),
        ("Send it to Augsburger Strasse 36 please", "Augsburger Strasse 36"),
        ("Office: Hammarvägen 15", "Hammarvägen 15"),
        (
            "John Smith, 123 Main Street, Springfield, IL 62704",
            "123 Main Street, Springfield, IL 62704",
        ),
        ("Meet at Rue de la Paix 12 at noon", "Rue de la Paix 12"),
        (
            "ul. Narewska 94\nApt. 478\nPoznań\nPoland 35403",
            "ul. Narewska 94\nApt. 478\nPoznań\nPoland 35403",
        ),
        (
            "Our offices are located at PSC 4574, Box 8393\nAPO AA 81998",
            "PSC 4574, Box 8393\nAPO AA 81998",
        ),
        ("the bus drops you off at 74678 midtvollen 130 st.", "74678 midtvollen 130 st."),
        (
            "Go to the corner of Kuusiku 7 and Alexander Flat? Thanks",
            "the corner of Kuusiku 7 and Alexander Flat",
        ),
    ],
)
def test_addresses_are_found_as_one_block(text: str, expected: str) -> None:
    assert _found(text) == [expected]


def test_a_name_before_a_unit_stays_outside_the_address() -> None:
    text = "Mrs. Barbara Yudina Apt. 675 62314 Mellemvej 32\nAalborg NO 9100"
    assert _found(text) == ["Apt. 675 62314 Mellemvej 32\nAalborg NO 9100"]


def test_the_block_stops_at_a_labelled_line_and_a_phone_line() -> None:
    text = "Knowledge Agency\n72 Acheron Road Apt. 237\n655 437 108 office\nMobile: 737 219 628"
    assert _found(text) == ["72 Acheron Road Apt. 237"]


def test_the_block_stops_where_the_sentence_goes_on() -> None:
    text = "Please update the billing address with 05575 Feldstrasse 42 for this card: 4393"
    assert _found(text) == ["05575 Feldstrasse 42"]


@pytest.mark.parametrize(
    "text",
    [
        "The order shipped on time.",
        "Windows 10 and Office 2019 are installed.",
        "We met on 12 May 2020 and again in 2021.",
        "He listed his top 20 songs at #15.",
        "Mobile: 737 219 628",
        "I am 34 years old.",
    ],
)
def test_numbers_next_to_ordinary_words_are_not_addresses(text: str) -> None:
    assert _found(text) == []
