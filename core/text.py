"""Normalising free text from users before it reaches a query or a stored field."""

from __future__ import annotations

import re

# C0 controls (NUL included: PostgreSQL refuses it in text, SQLite cuts strings at it) and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str, max_length: int) -> str:
    """Strip control characters and surrounding space; cut to `max_length`."""
    return _CONTROL.sub("", value).strip()[:max_length]


def search_term(value: str, max_length: int = 100) -> str:
    """A search box's text: matched literally (callers use autoescaped LIKE), never as SQL."""
    return clean_text(value.replace("\n", " ").replace("\t", " "), max_length)
