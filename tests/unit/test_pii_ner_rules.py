"""Rules around spaCy's entities and names it misses (core.privacy.ner_rules)."""

from __future__ import annotations

from core.privacy.ner_rules import (
    leading_name_line,
    names_by_cue,
    names_by_given_name,
    names_with_initial,
    organisations_by_form,
    refine_entities,
    speaker_names,
)
from core.privacy.spans import Span


def _values(text: str, spans: list[Span]) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start : s.end]) for s in spans]


def _ent(text: str, label: str, value: str) -> tuple[str, int, int]:
    start = text.index(value)
    return label, start, start + len(value)


def test_org_that_is_a_personal_name_becomes_person() -> None:
    text = "My name is Antti Poutiainen and I work at Palantir Technologies."
    ents = [_ent(text, "ORG", "Antti Poutiainen"), _ent(text, "ORG", "Palantir Technologies")]
    assert _values(text, refine_entities(text, ents)) == [
        ("PERSON", "Antti Poutiainen"),
        ("ORGANIZATION", "Palantir Technologies"),
    ]


def test_one_word_org_without_an_org_word_is_dropped() -> None:
    text = "Luiza is from Xignite"
    assert refine_entities(text, [_ent(text, "ORG", "Xignite")]) == []


def test_only_specific_dates_are_reported() -> None:
    text = "For a year, this month; born on 2/8/1935, founded in 1990, on Thursday; 4966 Bond St"
    ents = [
        _ent(text, "DATE", "a year"),
        _ent(text, "DATE", "this month"),
        _ent(text, "DATE", "2/8/1935"),
        _ent(text, "DATE", "1990"),
        _ent(text, "DATE", "Thursday"),
    ]
    values = [v for _, v in _values(text, refine_entities(text, ents))]
    assert values == ["2/8/1935", "1990", "Thursday"]


def test_person_spans_lose_titles_possessives_and_address_words() -> None:
    text = "Mrs. Barbara Yudina Apt. 675 and Maite Lemmens's killers"
    ents = [
        _ent(text, "PERSON", "Mrs. Barbara Yudina Apt"),
        _ent(text, "PERSON", "Maite Lemmens's"),
    ]
    assert _values(text, refine_entities(text, ents)) == [
        ("PERSON", "Barbara Yudina"),
        ("PERSON", "Maite Lemmens"),
    ]


def test_locations_split_at_line_breaks_and_nationalities_map_to_nrp() -> None:
    text = "Grand Rapids\n United States; the Finnish team"
    ents = [_ent(text, "GPE", "Grand Rapids\n United States"), _ent(text, "NORP", "Finnish")]
    assert _values(text, refine_entities(text, ents)) == [
        ("LOCATION", "Grand Rapids"),
        ("LOCATION", "United States"),
        ("NRP", "Finnish"),
    ]


def test_names_after_cues_including_lower_case() -> None:
    text = "my name is borna jerković but everyone calls me Borna. Hi Vinicio, said Maslin to Tom"
    found = [v for _, v in _values(text, names_by_cue(text))]
    assert found == ["borna jerković", "Borna", "Vinicio", "Maslin"]


def test_weak_cues_do_not_take_ordinary_words() -> None:
    text = "Hi there, I'm glad this is fine. Dear Mr. Horvat"
    assert [v for _, v in _values(text, names_by_cue(text))] == ["Horvat"]


def test_first_line_of_a_contact_block() -> None:
    assert _values(
        "Christophe Björklund\n\nPower distributor",
        leading_name_line("Christophe Björklund\n\nPower distributor"),
    ) == [("PERSON", "Christophe Björklund")]
    assert leading_name_line("Palantir Technologies\n12 Main St") == []
    assert leading_name_line("Christophe Björklund") == []  # one line: not a block


def test_speakers_of_a_transcript() -> None:
    text = "Ella: What a wife.\nDestiny: Remember me?\nNote: not a person"
    assert [v for _, v in _values(text, speaker_names(text))] == ["Ella", "Destiny"]
    assert speaker_names("Phone: 123\nEmail: a@b.c") == []


def test_given_names_with_and_without_surname() -> None:
    text = "Ana Novak met Marko Kovač and Janez M. Horvat; ask Ana. Jan 2020; ana@x.si"
    assert [v for _, v in _values(text, names_by_given_name(text))] == [
        "Ana Novak",
        "Marko Kovač",
        "Janez M. Horvat",
        "Ana",
    ]


def test_names_with_a_middle_initial() -> None:
    text = "Csanád P Gere lives here; so does Vide A. Persson."
    assert [v for _, v in _values(text, names_with_initial(text))] == [
        "Csanád P Gere",
        "Vide A. Persson",
    ]


def test_organisations_by_legal_form_firm_pattern_and_employer_cue() -> None:
    text = (
        "At Acme d.o.o. and Clark, Romero and Hall; I work for Thinknum. "
        "Founders: Eklund, Michael and Hodge"
    )
    assert [v for _, v in _values(text, organisations_by_form(text))] == [
        "Clark, Romero and Hall",
        "Acme d.o.o.",
        "Thinknum",
    ]
