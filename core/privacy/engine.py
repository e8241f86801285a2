"""The PII engine every scanner calls: text in, findings out.

Callers (the PII scanner page, dataset scans, knowledge-base document scans, data-subject request
search) use only `find_pii` / `find_pii_batch` and `Finding`, so the detection behind them can
improve without touching them.

Behind them (`core.privacy.analyzer`): spaCy's NER runs once per batch through `nlp.pipe` (and
not at all when only pattern-based entities are asked for), Presidio's and the project's
recognizers run on the shared NLP artifacts, then overlaps are settled (`core.privacy.spans`:
best score wins, a partly covered name keeps its uncovered words) and a person's name found once
is marked wherever else it occurs. Quality and speed against stock Presidio: bench/pii.py.

Entity types: PERSON, LOCATION (towns, countries, regions), ADDRESS (postal addresses as one
block), ORGANIZATION, NRP (nationality, religious or political group), DATE_TIME (specific dates
only), AGE, TITLE (honorifics), EMAIL_ADDRESS, PHONE_NUMBER, URL, IP_ADDRESS, MAC_ADDRESS,
CREDIT_CARD, IBAN_CODE, CRYPTO, UUID, ZIP_CODE, EU_VAT, SI_EMSO, SI_TAX_NUMBER, and Presidio's
US/UK identifiers (US_SSN, US_PASSPORT, US_DRIVER_LICENSE, US_BANK_NUMBER, US_ITIN, UK_NHS,
MEDICAL_LICENSE), which mostly need their context words to reach the default `min_score`.

Language: detection is English-only. `check_language` rejects other language codes; the text
itself is checked too (`core.privacy.language`): a text of eight words or more that is clearly in
another language raises `ValidationError` rather than returning a misleadingly short list of
findings. Short texts (names, addresses, numbers, most dataset cells) are never rejected; pass
`check_text_language=False` to scan regardless (pattern-based identifiers are still found).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from core.privacy.language import non_english_reason
from core.privacy.spans import Span, propagate_names, resolve_overlaps

SUPPORTED_LANGUAGES = ("en",)
# Entities that need spaCy's NER; a request without any of them skips the model entirely.
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME"})
BATCH_SIZE = 64


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    score: float
    text: str


def check_language(language: str) -> None:
    if language not in SUPPORTED_LANGUAGES:
        raise ValidationError(
            f"PII detection supports {', '.join(SUPPORTED_LANGUAGES)}; {language!r} is not "
            "supported. Translate the text or scan it with a pattern-only check."
        )


def supported_entities() -> list[str]:
    """Every entity type the engine can report, sorted."""
    from core.privacy.analyzer import shared_analyzer

    return sorted(shared_analyzer().get_supported_entities(language="en"))


def find_pii(
    text: str,
    *,
    entities: Sequence[str] | None = None,
    language: str = "en",
    min_score: float = 0.4,
    check_text_language: bool = True,
) -> list[Finding]:
    """Findings in `text`, sorted by position, overlapping spans resolved to the best one."""
    return find_pii_batch(
        [text],
        entities=entities,
        language=language,
        min_score=min_score,
        check_text_language=check_text_language,
    )[0]


def find_pii_batch(
    texts: Iterable[str],
    *,
    entities: Sequence[str] | None = None,
    language: str = "en",
    min_score: float = 0.4,
    check_text_language: bool = True,
) -> list[list[Finding]]:
    """`find_pii` for many texts at once (one spaCy batch), findings per text in input order.
    With `check_text_language`, every text of eight words or more is checked, and the first that
    is clearly not English fails the whole call (naming its position)."""
    from core.privacy.analyzer import shared_analyzer

    check_language(language)
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise ValidationError(
                f"Text {i + 1} is a {type(text).__name__}, not a string: convert it (or skip "
                "empty cells) before scanning."
            )
    if not 0.0 <= min_score <= 1.0:
        raise ValidationError(f"min_score must be between 0 and 1, not {min_score}.")
    if check_text_language:
        _check_texts_are_english(items)
    analyzer = shared_analyzer()
    wanted = _entities(analyzer, entities)
    needs_ner = wanted is None or bool(NER_ENTITIES & set(wanted))
    artifacts = analyzer.nlp_engine.artifacts(items, language, ner=needs_ner, batch_size=BATCH_SIZE)
    out: list[list[Finding]] = []
    for text, nlp_artifacts in zip(items, artifacts, strict=True):
        results = analyzer.analyze(
            text=text,
            language=language,
            entities=wanted,
            nlp_artifacts=nlp_artifacts,
            score_threshold=min_score,
        )
        spans = resolve_overlaps(
            text, (Span(r.entity_type, r.start, r.end, float(r.score)) for r in results)
        )
        spans = [s for s in propagate_names(text, spans) if s.score >= min_score]
        out.append(
            [Finding(s.entity_type, s.start, s.end, s.score, text[s.start : s.end]) for s in spans]
        )
    return out


def _entities(analyzer: Any, entities: Sequence[str] | None) -> list[str] | None:
    if not entities:
        return None
    known = set(analyzer.get_supported_entities(language="en"))
    unknown = sorted(set(entities) - known)
    if unknown:
        raise ValidationError(
            f"Unknown entity type(s) {', '.join(unknown)}: choose from {', '.join(sorted(known))}."
        )
    return list(dict.fromkeys(entities))


def _check_texts_are_english(texts: list[str]) -> None:
    for i, text in enumerate(texts):
        reason = non_english_reason(text)
        if reason is None:
            continue
        where = "The text" if len(texts) == 1 else f"Text {i + 1} of {len(texts)}"
        raise ValidationError(
            f"{where} does not look like English ({reason}). PII detection here understands "
            "English only, so names and addresses in it would be missed. Translate it first, "
            "or scan it anyway with the language check off (check_text_language=False): "
            "pattern-based identifiers such as e-mail addresses, IBANs and card numbers are "
            "still found."
        )
