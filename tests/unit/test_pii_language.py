"""The conservative is-this-English check (core.privacy.language)."""

from __future__ import annotations

import pytest

from core.privacy.language import non_english_reason


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (
            "Der Kunde hat die Rechnung nicht bezahlt und wir müssen ihn noch einmal anrufen.",
            "German",
        ),
        (
            "Stranka ni plačala računa, zato jo bomo še enkrat poklicali in ji poslali opomin.",
            "Slovenian",
        ),
        ("El cliente no ha pagado la factura y por eso lo llamaremos otra vez mañana.", "Spanish"),
    ],
)
def test_foreign_prose_is_named(text: str, language: str) -> None:
    reason = non_english_reason(text)
    assert reason is not None and language in reason


def test_non_latin_prose_is_rejected() -> None:
    reason = non_english_reason("Клиент не оплатил счет, поэтому мы позвоним ему еще раз сегодня.")
    assert reason is not None and "Latin" in reason


@pytest.mark.parametrize(
    "text",
    [
        "The order shipped on time and the customer was happy with it.",
        "Ana Novak",
        "Hauptstraße 5, 10115 Berlin",
        "Der Kunde ist da.",  # too short to judge
        "Juan de la Cruz, María del Carmen, José da Silva, Ana Novak, Janez Novak, Marko Horvat",
        "Ulica heroja Staneta 12, 1000 Ljubljana, Slovenija; Trg republike 3, Maribor",
        "4111 1111 1111 1111; SI56 2633 0001 2039 086; +386 41 123 456; 1000 Ljubljana",
        "Please call Ana Novak about the invoice für Müller GmbH tomorrow morning.",
    ],
)
def test_english_lists_and_short_values_pass(text: str) -> None:
    assert non_english_reason(text) is None
