"""The project's Presidio recognizers.

- `ProjectNerRecognizer` replaces Presidio's SpacyRecognizer: spaCy's entities go through
  `core.privacy.ner_rules` (ORG that is a person's name -> PERSON, durations are not dates, ...)
  and names introduced by a cue or heading a contact block are added.
- `SpanFinderRecognizer` wraps the pure pattern finders (`core.privacy.addresses`,
  `core.privacy.patterns`): ADDRESS, TITLE, AGE, PHONE_NUMBER (national formats with a phone
  word), ZIP_CODE, CREDIT_CARD (Luhn-checked formats Presidio's pattern misses).
- Identifiers validated by check digits (`core.privacy.identifiers`), so a random number of the
  right length is not reported: EU VAT numbers (`EU_VAT`), Slovenian EMŠO (`SI_EMSO`) and tax
  numbers (`SI_TAX_NUMBER`).

Context words are matched against lower-cased tokens (the engine runs no lemmatizer), so they
are listed in the forms that occur.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from presidio_analyzer import (
    EntityRecognizer,
    LocalRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts

from core.privacy.addresses import find_addresses
from core.privacy.identifiers import is_valid_emso, is_valid_si_tax_number, is_valid_vat
from core.privacy.ner_rules import (
    leading_name_line,
    names_by_cue,
    names_by_given_name,
    names_with_initial,
    organisations_by_form,
    refine_entities,
    speaker_names,
)
from core.privacy.patterns import (
    find_ages,
    find_card_numbers,
    find_phones,
    find_titles,
    find_zip_codes,
)
from core.privacy.spans import Span

NER_ENTITIES = ("PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME")

_VAT_PREFIXES = (
    "AT|BE|BG|CY|CZ|DE|DK|EE|EL|GR|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
)


def _results(spans: list[Span], entities: list[str] | None) -> list[RecognizerResult]:
    wanted = set(entities) if entities else None
    return [
        RecognizerResult(s.entity_type, s.start, s.end, s.score)
        for s in spans
        if wanted is None or s.entity_type in wanted
    ]


class ProjectNerRecognizer(LocalRecognizer):
    """PERSON, LOCATION, NRP, ORGANIZATION, DATE_TIME from spaCy's entities and name cues."""

    def __init__(self) -> None:
        super().__init__(
            supported_entities=list(NER_ENTITIES), name="ProjectNerRecognizer", context=[]
        )

    def load(self) -> None:
        """Nothing to load: the NLP engine ran spaCy already."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        spans: list[Span] = []
        if nlp_artifacts is not None and nlp_artifacts.entities:
            raw = [(e.label_, e.start_char, e.end_char) for e in nlp_artifacts.entities]
            spans.extend(refine_entities(text, raw))
        if not entities or "PERSON" in entities:
            spans.extend(names_by_cue(text))
            spans.extend(leading_name_line(text))
            spans.extend(speaker_names(text))
            spans.extend(names_with_initial(text))
            spans.extend(names_by_given_name(text))
        if not entities or "ORGANIZATION" in entities:
            spans.extend(organisations_by_form(text))
        return _results(spans, entities)


class SpanFinderRecognizer(EntityRecognizer):
    """A Presidio recognizer around a pure function text -> spans."""

    def __init__(self, name: str, entities: list[str], finder: Callable[[str], list[Span]]):
        self._finder = finder
        super().__init__(supported_entities=entities, name=name, context=[])

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return _results(self._finder(text), entities)


def pattern_finders() -> list[SpanFinderRecognizer]:
    return [
        SpanFinderRecognizer("AddressRecognizer", ["ADDRESS"], find_addresses),
        SpanFinderRecognizer("TitleRecognizer", ["TITLE"], find_titles),
        SpanFinderRecognizer("AgeRecognizer", ["AGE"], find_ages),
        SpanFinderRecognizer("ContextPhoneRecognizer", ["PHONE_NUMBER"], find_phones),
        SpanFinderRecognizer("ZipCodeRecognizer", ["ZIP_CODE"], find_zip_codes),
        SpanFinderRecognizer("CardNumberRecognizer", ["CREDIT_CARD"], find_card_numbers),
    ]


class _Validated(PatternRecognizer):
    validator: Any = None

    def validate_result(self, pattern_text: str) -> bool:
        return bool(type(self).validator(pattern_text))


class EuVatRecognizer(_Validated):
    validator = staticmethod(is_valid_vat)


class SiEmsoRecognizer(_Validated):
    validator = staticmethod(is_valid_emso)


class SiTaxNumberRecognizer(_Validated):
    validator = staticmethod(is_valid_si_tax_number)


def identifier_recognizers() -> list[PatternRecognizer]:
    return [
        EuVatRecognizer(
            supported_entity="EU_VAT",
            name="EuVatRecognizer",
            patterns=[
                Pattern(
                    "eu_vat",
                    rf"\b(?:{_VAT_PREFIXES})[ ]?[0-9A-Z](?:[0-9A-Z]|[ .\-](?=[0-9A-Z])){{5,14}}\b",
                    0.5,
                )
            ],
            context=["vat", "ddv", "tva", "iva", "ust-idnr", "btw", "mwst", "moms"],
        ),
        SiEmsoRecognizer(
            supported_entity="SI_EMSO",
            name="SiEmsoRecognizer",
            patterns=[Pattern("emso", r"\b\d{13}\b", 0.5)],
            context=["emšo", "emso", "personal number", "matična", "številka"],
        ),
        SiTaxNumberRecognizer(
            supported_entity="SI_TAX_NUMBER",
            name="SiTaxNumberRecognizer",
            # 8 digits alone are common (order numbers): low score unless context supports it
            patterns=[Pattern("si_tax", r"\b[1-9]\d{7}\b", 0.3)],
            context=["davčna", "davcna", "tax", "ddv"],
        ),
    ]
