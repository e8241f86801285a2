"""Anonymising text with Presidio's anonymizer: replace, mask, salted hash, redact, and
reversible AES encryption with the key from settings (OMNI_PII_ENCRYPTION_KEY).

Scaffolding for issue 5's scanner and dataset anonymiser: they call `anonymize_text` with the
findings of `core.privacy.analyzer` (or let it analyse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.config import get_settings
from core.errors import ConfigurationError, ValidationError

Operator = Literal["replace", "mask", "hash", "redact", "encrypt"]
OPERATORS: tuple[Operator, ...] = ("replace", "mask", "hash", "redact", "encrypt")
AES_KEY_BYTES = (16, 24, 32)


@dataclass(frozen=True)
class Anonymized:
    text: str
    items: list[Any]  # presidio OperatorResult: entity_type, start, end, text, operator


def _encryption_key() -> str:
    secret = get_settings().pii_encryption_key
    if secret is None:
        raise ConfigurationError(
            "Reversible encryption needs a key: set OMNI_PII_ENCRYPTION_KEY (16, 24 or 32 "
            "characters; keep it in the secrets directory) or choose another operator."
        )
    key = secret.get_secret_value()
    if len(key.encode("utf-8")) not in AES_KEY_BYTES:
        raise ConfigurationError(
            f"OMNI_PII_ENCRYPTION_KEY is {len(key.encode('utf-8'))} bytes; AES needs 16, 24 or "
            "32 bytes."
        )
    return key


def _operator_config(operator: Operator) -> Any:
    from presidio_anonymizer.entities import OperatorConfig

    if operator == "replace":
        return OperatorConfig("replace")  # "<ENTITY_TYPE>"
    if operator == "mask":
        return OperatorConfig(
            "mask", {"masking_char": "*", "chars_to_mask": 100, "from_end": False}
        )
    if operator == "hash":
        salt = get_settings().pii_hash_salt
        params: dict[str, Any] = {"hash_type": "sha256"}
        if salt is not None:
            value = salt.get_secret_value()
            if len(value.encode("utf-8")) < 16:
                raise ConfigurationError(
                    "OMNI_PII_HASH_SALT must be at least 16 bytes (a shorter salt is guessable)."
                )
            params["salt"] = value
        return OperatorConfig("hash", params)
    if operator == "redact":
        return OperatorConfig("redact")
    return OperatorConfig("encrypt", {"key": _encryption_key()})


def anonymize_text(
    text: str,
    operator: Operator = "replace",
    *,
    findings: Sequence[Any] | None = None,
    entities: Sequence[str] | None = None,
) -> Anonymized:
    """`text` with every finding (from the analyzer when not given) transformed by `operator`."""
    from presidio_anonymizer import AnonymizerEngine

    if operator not in OPERATORS:
        raise ValidationError(f"Unknown operator {operator!r}: use one of {', '.join(OPERATORS)}.")
    if findings is None:
        from core.privacy.analyzer import shared_analyzer

        findings = shared_analyzer().analyze(
            text=text, language="en", entities=list(entities) if entities else None
        )
    config = {"DEFAULT": _operator_config(operator)}
    result = AnonymizerEngine().anonymize(  # type: ignore[no-untyped-call]
        text=text, analyzer_results=list(findings), operators=config
    )
    return Anonymized(result.text, list(result.items))


def decrypt_text(anonymized: Anonymized) -> str:
    """Undo `encrypt`: the original text, with the key from settings."""
    from presidio_anonymizer import DeanonymizeEngine
    from presidio_anonymizer.entities import OperatorConfig, OperatorResult

    items = [
        OperatorResult(
            start=i.start, end=i.end, entity_type=i.entity_type, text=i.text, operator=i.operator
        )
        for i in anonymized.items
        if i.operator == "encrypt"
    ]
    result = DeanonymizeEngine().deanonymize(  # type: ignore[no-untyped-call]
        text=anonymized.text,
        entities=items,
        operators={"DEFAULT": OperatorConfig("decrypt", {"key": _encryption_key()})},
    )
    return str(result.text)
