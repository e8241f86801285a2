"""The anonymizer's operators on analyzer findings: what each leaves in the text, salted hashes
that link equal values, and encryption that round-trips with the configured key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import reload_settings
from core.errors import ConfigurationError, ValidationError
from core.privacy.anonymize import anonymize_text, decrypt_text

TEXT = "Contact john.smith@example.com, EMŠO 0101006500006."
EMAIL = "john.smith@example.com"
EMSO = "0101006500006"


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv("OMNI_PII_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("OMNI_PII_HASH_SALT", raising=False)
    reload_settings()
    yield monkeypatch
    reload_settings()


def test_replace_mask_and_redact() -> None:
    entities = ["EMAIL_ADDRESS", "SI_EMSO"]
    replaced = anonymize_text(TEXT, "replace", entities=entities).text
    assert replaced == "Contact <EMAIL_ADDRESS>, EMŠO <SI_EMSO>."
    masked = anonymize_text(TEXT, "mask", entities=entities).text
    assert EMAIL not in masked and EMSO not in masked and "*" * len(EMSO) in masked
    redacted = anonymize_text(TEXT, "redact", entities=entities).text
    assert redacted == "Contact , EMŠO ."


def test_salted_hash_links_equal_values_only_with_the_same_salt(
    settings: pytest.MonkeyPatch,
) -> None:
    settings.setenv("OMNI_PII_HASH_SALT", "tenant-salt-0001-of-the-demo")
    reload_settings()
    first = anonymize_text(TEXT, "hash", entities=["SI_EMSO"]).text
    again = anonymize_text(TEXT, "hash", entities=["SI_EMSO"]).text
    assert first == again and EMSO not in first
    settings.setenv("OMNI_PII_HASH_SALT", "tenant-salt-0002-of-the-demo")
    reload_settings()
    assert anonymize_text(TEXT, "hash", entities=["SI_EMSO"]).text != first
    settings.setenv("OMNI_PII_HASH_SALT", "short")
    reload_settings()
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        anonymize_text(TEXT, "hash", entities=["SI_EMSO"])


def test_encryption_round_trips_and_needs_a_proper_key(settings: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="OMNI_PII_ENCRYPTION_KEY"):
        anonymize_text(TEXT, "encrypt")
    settings.setenv("OMNI_PII_ENCRYPTION_KEY", "short")
    reload_settings()
    with pytest.raises(ConfigurationError, match="16, 24 or 32"):
        anonymize_text(TEXT, "encrypt")
    settings.setenv("OMNI_PII_ENCRYPTION_KEY", "0123456789abcdef")
    reload_settings()
    encrypted = anonymize_text(TEXT, "encrypt", entities=["EMAIL_ADDRESS", "SI_EMSO"])
    assert EMAIL not in encrypted.text and EMSO not in encrypted.text
    assert decrypt_text(encrypted) == TEXT


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValidationError, match="Unknown operator"):
        anonymize_text(TEXT, "shred")  # type: ignore[arg-type]
