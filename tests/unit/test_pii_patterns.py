"""Context-dependent identifiers (core.privacy.patterns): titles, ages, phones, postcodes, card
numbers with the Luhn check."""

from __future__ import annotations

from core.privacy.patterns import (
    find_ages,
    find_card_numbers,
    find_phones,
    find_titles,
    find_zip_codes,
    luhn_valid,
)
from core.privacy.spans import Span


def _values(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def test_titles_need_a_name_after_them() -> None:
    text = "Hello, this is Dr. Kyle Kuefer; ms. Quinzia called. I miss you, Dr."
    assert _values(text, find_titles(text)) == ["Dr.", "ms."]


def test_ages_need_their_cue_words() -> None:
    text = "Patient is a 65-year-old male. He just turned 22 years old. I'll turn 40."
    assert sorted(set(_values(text, find_ages(text)))) == ["22", "40", "65"]
    plain = "I am 5 minutes late; we sold 34 units; it is 3 of 4."
    assert find_ages(plain) == []


def test_phones_in_national_formats_count_with_a_phone_word() -> None:
    text = (
        "Phone:\n0393 1144137\nMobile: (71) 4233-6306\n416 60 039 office\ncall me at 0699 868 88 55"
    )
    assert _values(text, find_phones(text)) == [
        "0393 1144137",
        "(71) 4233-6306",
        "416 60 039",
        "0699 868 88 55",
    ]


def test_international_numbers_count_without_context_but_lower() -> None:
    text = "+46 (0)8 928 571 38 and 0393 1144137"
    spans = find_phones(text)
    assert _values(text, spans) == ["+46 (0)8 928 571 38"]
    assert spans[0].score < 0.6


def test_dates_and_short_numbers_are_not_phones() -> None:
    text = "Phone day 2/8/1935, phone ext 12345."
    assert find_phones(text) == []


def test_zip_codes_after_their_label() -> None:
    text = "ZIP: 7412 SL, my zip code is 35350, postcode SW1A 1AA"
    assert _values(text, find_zip_codes(text)) == ["7412 SL", "35350", "SW1A 1AA"]


def test_card_numbers_need_the_luhn_check() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    text = "My card 503867297114 and 4111 1111 1111 1111, not 4111 1111 1111 1112."
    spans = find_card_numbers(text)
    assert _values(text, spans) == ["503867297114", "4111 1111 1111 1111"]
    assert all(s.score >= 0.9 for s in spans)  # a card word stands before both
