"""The PII engine as callers use it (`core.privacy.engine`): the real spaCy pipeline and
Presidio, offline. One engine per module (loading spaCy takes about a second)."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import pytest

from core.errors import ValidationError
from core.privacy.engine import Finding, check_language, find_pii, find_pii_batch

GERMAN = (
    "Der Kunde hat die Rechnung nicht bezahlt und wir müssen ihn noch einmal anrufen, "
    "bevor die Frist abläuft."
)


@pytest.fixture(scope="module", autouse=True)
def engine() -> Iterator[None]:
    from core.privacy.analyzer import shared_analyzer

    shared_analyzer()
    yield


def _pairs(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.entity_type, f.text) for f in findings]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ana Novak lives in Ljubljana.", ("PERSON", "Ana Novak")),
        ("Please contact Ana Novak about the invoice.", ("PERSON", "Ana Novak")),
        ("My name is Antti Poutiainen.", ("PERSON", "Antti Poutiainen")),
        ("Meeting with Marko Kovač on Monday.", ("PERSON", "Marko Kovač")),
        ("Hello, this is Dr. Kyle Kuefer. Who are you?", ("PERSON", "Kyle Kuefer")),
        ("Write to ana.novak@example.si today.", ("EMAIL_ADDRESS", "ana.novak@example.si")),
        ("Call me on +386 41 123 456 tomorrow.", ("PHONE_NUMBER", "+386 41 123 456")),
        ("Phone:\n0393 1144137", ("PHONE_NUMBER", "0393 1144137")),
        ("Pay to IBAN SI56 2633 0001 2039 086 please.", ("IBAN_CODE", "SI56 2633 0001 2039 086")),
        (
            "Ship it to Slovenska cesta 12, 1000 Ljubljana.",
            ("ADDRESS", "Slovenska cesta 12, 1000 Ljubljana"),
        ),
        (
            "John Smith, 123 Main Street, Springfield, IL 62704",
            ("ADDRESS", "123 Main Street, Springfield, IL 62704"),
        ),
    ],
)
def test_finds_people_contacts_and_addresses(text: str, expected: tuple[str, str]) -> None:
    assert expected in _pairs(find_pii(text))


@pytest.mark.parametrize(
    "text",
    [
        "The order shipped on time.",
        "We have 25 items in stock and 3 orders pending.",
        "The invoice total is 1234.56 EUR, due in 30 days.",
        "Please restart the server after the upgrade.",
        "",
    ],
)
def test_plain_sentences_have_no_findings(text: str) -> None:
    assert find_pii(text) == []


def test_findings_are_sorted_disjoint_and_carry_their_text() -> None:
    text = (
        "Mrs. Barbara Yudina Apt. 675 62314 Mellemvej 32\nAalborg NO 9100, card 4111 1111 1111 1111"
    )
    found = find_pii(text)
    assert ("PERSON", "Barbara Yudina") in _pairs(found)
    assert ("ADDRESS", "Apt. 675 62314 Mellemvej 32\nAalborg NO 9100") in _pairs(found)
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in _pairs(found)
    for a, b in itertools.pairwise(found):
        assert a.end <= b.start
    assert all(text[f.start : f.end] == f.text for f in found)


def test_entities_filter_and_unknown_entity() -> None:
    text = "Ana Novak, ana.novak@example.si, +386 41 123 456"
    assert _pairs(find_pii(text, entities=["EMAIL_ADDRESS"])) == [
        ("EMAIL_ADDRESS", "ana.novak@example.si")
    ]
    with pytest.raises(ValidationError, match="STREET_ADDRESS"):
        find_pii(text, entities=["STREET_ADDRESS"])


def test_pattern_only_requests_do_not_run_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.privacy.analyzer import shared_analyzer

    nlp = shared_analyzer().nlp_engine.nlp["en"]

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("spaCy's NER ran for a pattern-only request")

    monkeypatch.setattr(nlp, "pipe", no_model)
    found = find_pii("IBAN SI56 2633 0001 2039 086", entities=["IBAN_CODE", "EMAIL_ADDRESS"])
    assert _pairs(found) == [("IBAN_CODE", "SI56 2633 0001 2039 086")]


def test_min_score() -> None:
    text = "Reach the office on +386 41 123 456."
    assert _pairs(find_pii(text)) == [("PHONE_NUMBER", "+386 41 123 456")]
    assert find_pii(text, min_score=0.95) == []
    with pytest.raises(ValidationError, match="between 0 and 1"):
        find_pii(text, min_score=1.5)


def test_batch_keeps_order_and_matches_single_calls() -> None:
    texts = ["Ana Novak", "The order shipped on time.", "ana.novak@example.si"]
    batch = find_pii_batch(texts)
    assert batch == [find_pii(t) for t in texts]
    assert [len(b) for b in batch] == [1, 0, 1]


def test_text_in_another_language_is_refused_with_a_way_out() -> None:
    with pytest.raises(ValidationError) as refused:
        find_pii(GERMAN)
    assert "German" in refused.value.message
    assert "check_text_language=False" in refused.value.message
    assert isinstance(find_pii(GERMAN, check_text_language=False), list)  # scanning is allowed
    with pytest.raises(ValidationError, match="Text 2 of 2"):
        find_pii_batch(["Ana Novak", GERMAN])
    # short values in any language are scanned: cells, names, addresses
    assert len(find_pii_batch(["Hauptstraße 5, 10115 Berlin", "Der Kunde ist da."])) == 2


def test_unsupported_language_code() -> None:
    with pytest.raises(ValidationError, match="'de' is not supported"):
        check_language("de")
    with pytest.raises(ValidationError):
        find_pii("Ana Novak", language="de")


def test_non_text_input_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="not a string"):
        find_pii_batch(["ok", None])  # type: ignore[list-item]


def test_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PII engine tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    found = find_pii("Visit https://www.example.co.uk/path or mail ana@example.si")
    assert {f.entity_type for f in found} >= {"URL", "EMAIL_ADDRESS"}
