"""Overlap resolution and name propagation: pure span logic behind core.privacy.engine."""

from __future__ import annotations

from core.privacy.spans import Span, propagate_names, resolve_overlaps


def _values(text: str, spans: list[Span]) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start : s.end]) for s in spans]


def test_higher_score_wins_and_output_is_sorted_and_disjoint() -> None:
    text = "card 4111111111111111 now"
    spans = [
        Span("US_BANK_NUMBER", 5, 21, 0.4),
        Span("CREDIT_CARD", 5, 21, 1.0),
        Span("PHONE_NUMBER", 9, 21, 0.6),
    ]
    assert _values(text, resolve_overlaps(text, spans)) == [("CREDIT_CARD", "4111111111111111")]


def test_partly_covered_name_keeps_its_uncovered_words() -> None:
    text = "Mrs. Barbara Yudina Apt. 675 Mellemvej 32"
    person = Span("PERSON", text.index("Barbara"), text.index(" 675"), 0.85)
    address = Span("ADDRESS", text.index("Apt."), len(text), 0.9)
    assert _values(text, resolve_overlaps(text, [person, address])) == [
        ("PERSON", "Barbara Yudina"),
        ("ADDRESS", "Apt. 675 Mellemvej 32"),
    ]


def test_identifiers_and_organisations_are_never_trimmed() -> None:
    text = "IBAN SI56263300012039086 of the University of Porvoo"
    spans = [
        Span("IBAN_CODE", 5, 24, 1.0),
        Span("PHONE_NUMBER", 10, 30, 0.5),  # would leave a fragment
        Span("LOCATION", text.index("Porvoo"), len(text), 0.85),
        Span("ORGANIZATION", text.index("the University"), len(text), 0.6),
    ]
    assert _values(text, resolve_overlaps(text, spans)) == [
        ("IBAN_CODE", "SI56263300012039086"),
        ("LOCATION", "Porvoo"),
    ]


def test_a_remainder_that_ends_inside_a_word_is_dropped() -> None:
    text = "Janez Apt. 5"
    spans = [Span("PERSON", 0, 9, 0.85), Span("ADDRESS", 8, len(text), 0.9)]
    # what the address leaves of the person is "Janez Ap": a fragment, not a name
    assert _values(text, resolve_overlaps(text, spans)) == [("ADDRESS", "t. 5")]


def test_a_found_name_marks_its_other_occurrences() -> None:
    text = "My name is Vanessa P. Hertzog but everyone calls me Vanessa; Hertzog agrees."
    found = [Span("PERSON", 11, 29, 0.9)]
    out = _values(text, propagate_names(text, found))
    assert out == [("PERSON", "Vanessa P. Hertzog"), ("PERSON", "Vanessa"), ("PERSON", "Hertzog")]


def test_propagation_leaves_other_findings_alone() -> None:
    text = "Novak wrote to novak@example.si"
    found = [Span("PERSON", 0, 5, 0.8), Span("EMAIL_ADDRESS", 15, 31, 1.0)]
    assert propagate_names(text, found) == found
