"""Presidio with the bundled spaCy pipeline and the project's recognizers, offline: structured
identifiers are found only when their check digits hold, and no network is touched."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from core.privacy.analyzer import shared_analyzer

TEXT = (
    "John Smith (EMŠO 0101006500006, davčna številka 50223054) pays to IBAN "
    "SI56 2633 0001 2039 086 for the invoice of Acme d.o.o., VAT SI 5022 3054; "
    "write to ana.novak@example.si."
)


@pytest.fixture(scope="module")
def analyzer() -> Any:
    return shared_analyzer()


def _found(analyzer: Any, text: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in analyzer.analyze(text=text, language="en"):
        out.setdefault(r.entity_type, set()).add(text[r.start : r.end])
    return out


def test_finds_people_contacts_and_validated_identifiers(
    analyzer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PII engine tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    found = _found(analyzer, TEXT)
    assert "John Smith" in found["PERSON"]
    assert found["EMAIL_ADDRESS"] == {"ana.novak@example.si"}
    assert found["SI_EMSO"] == {"0101006500006"}
    assert "50223054" in found["SI_TAX_NUMBER"]
    assert found["IBAN_CODE"] == {"SI56 2633 0001 2039 086"}
    assert found["EU_VAT"] == {"SI 5022 3054"}


def test_numbers_with_wrong_check_digits_are_not_reported(analyzer: Any) -> None:
    found = _found(
        analyzer, "EMŠO 0101006500007, davčna številka 50223055, VAT DE136695977, order 1234567."
    )
    assert not {"SI_EMSO", "SI_TAX_NUMBER", "EU_VAT"} & set(found)
