"""Fast pattern-based PII redaction for text that is about to be stored (LLM prompts, answers).

It catches the identifiers that patterns find reliably: e-mail addresses, phone numbers, IBANs,
payment card numbers (Luhn-checked), IPv4 addresses. Names and addresses need the Presidio engine
of the privacy domain; this function is the floor every stored body goes through.
"""

from __future__ import annotations

import re

from core.privacy.identifiers import luhn_valid

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w])\+?\d[\d ()./-]{7,}\d(?![\w])")
_IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "<CREDIT_CARD>" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def redact(text: str) -> str:
    """Replace the identifiers found with their type in angle brackets."""
    text = _EMAIL.sub("<EMAIL>", text)
    text = _IBAN.sub("<IBAN>", text)
    text = _CARD.sub(_card, text)
    text = _IPV4.sub("<IP_ADDRESS>", text)
    return _PHONE.sub("<PHONE>", text)
