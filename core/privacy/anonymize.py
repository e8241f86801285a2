"""Anonymising text with Presidio's anonymizer: replace, mask, salted hash, redact, and
reversible AES encryption with the key from settings (OMNI_PII_ENCRYPTION_KEY).

The scanner and dataset anonymiser call `anonymize_text` with the findings of
`core.privacy.engine` (anything with entity_type, start, end, score), or let it analyse.
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
    from presidio_anonymizer.entities import RecognizerResult

    _check_operator(operator)
    if findings is None:
        from core.privacy.engine import find_pii

        findings = find_pii(text, entities=entities)
    spans = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
    config = {"DEFAULT": _operator_config(operator)}
    result = AnonymizerEngine().anonymize(  # type: ignore[no-untyped-call]
        text=text, analyzer_results=spans, operators=config
    )
    return Anonymized(result.text, list(result.items))


def anonymize_many(
    texts: Sequence[str], findings: Sequence[Sequence[Any]], operator: Operator = "replace"
) -> list[str]:
    """`anonymize_text` over many texts with their findings (free-text dataset cells): the engine
    and the operator's settings (salt, key) are set up once instead of once per cell."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import RecognizerResult

    if len(texts) != len(findings):
        raise ValueError("texts and findings must be the same length")
    _check_operator(operator)
    engine = AnonymizerEngine()  # type: ignore[no-untyped-call]
    config = {"DEFAULT": _operator_config(operator)}
    out: list[str] = []
    for text, found in zip(texts, findings, strict=True):
        if not found:
            out.append(text)
            continue
        spans = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in found]
        out.append(engine.anonymize(text=text, analyzer_results=spans, operators=config).text)
    return out


def anonymize_values(values: Sequence[str], operator: Operator, entity_type: str) -> list[str]:
    """Each whole value transformed by `operator` as one `entity_type` finding: the fast path for
    a column whose every cell is one identifier (an e-mail column), with no analysis at all.

    The result equals `anonymize_text` with one finding spanning the value, so a salted hash of
    an address is the same in an e-mail column and inside a free-text note."""
    from presidio_anonymizer.operators import OperatorsFactory, OperatorType

    _check_operator(operator)
    config = _operator_config(operator)
    params = {**config.params, "entity_type": entity_type}
    op = OperatorsFactory().create_operator_class(  # type: ignore[no-untyped-call]
        config.operator_name, OperatorType.Anonymize
    )
    op.validate(params=params)
    # Encryption draws a fresh IV per value, and an unsalted hash a fresh salt: caching those by
    # value would make equal inputs visibly equal, which is exactly what they avoid.
    deterministic = operator != "encrypt" and (operator != "hash" or "salt" in params)
    cache: dict[str, str] = {}
    out: list[str] = []
    for value in values:
        if deterministic and value in cache:
            out.append(cache[value])
            continue
        result = str(op.operate(text=value, params=params))
        if deterministic:
            cache[value] = result
        out.append(result)
    return out


def decrypt_value(token: str) -> str:
    """Undo `encrypt` on one whole value (a cell of a column anonymised with `anonymize_values`),
    with the key from settings. A token that is not ours gets a ValidationError."""
    from presidio_anonymizer.operators import Decrypt

    key = _encryption_key()
    # CSV exports put an apostrophe before a cell a spreadsheet would run as a formula
    value = token[1:] if token.startswith("'") else token
    try:
        return str(Decrypt().operate(text=value, params={"key": key}))
    except Exception as exc:  # bad padding, bad base64: the token was not encrypted with this key
        raise ValidationError(
            "This value cannot be decrypted with the configured OMNI_PII_ENCRYPTION_KEY: it was "
            "encrypted with another key, or it is not an encrypted value."
        ) from exc


def _check_operator(operator: str) -> None:
    if operator not in OPERATORS:
        raise ValidationError(f"Unknown operator {operator!r}: use one of {', '.join(OPERATORS)}.")


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
