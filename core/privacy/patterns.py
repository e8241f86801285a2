"""Identifiers that a pattern finds when the words around it say what it is: honorifics, ages,
phone numbers in any national format, postcodes.

Presidio's own phone recognizer accepts only numbers valid in a few countries (US, UK, DE, IL,
IN, CA, BR) or written with a country code; "0393 1144137" or "(71) 4233-6306" on a line
labelled "Phone:" is missed. Here a digit group of phone length counts when a phone word
(phone, mobile, fax, call me at, ...) stands just before or after it, or when it starts with a
country code. Ages and postcodes are numbers too, so they need their cue words ("turned 21",
"65-year-old", "ZIP: 48750") and are never guessed from the number alone.

Pure functions returning `Span`s; `core.privacy.recognizers` wraps them for Presidio.
"""

from __future__ import annotations

import re

from core.privacy.identifiers import luhn_valid
from core.privacy.spans import Span

TITLE_SCORE = 0.6
AGE_SCORE = 0.75
PHONE_CONTEXT_SCORE = 0.65
PHONE_INTERNATIONAL_SCORE = 0.55
ZIP_SCORE = 0.7
CARD_CONTEXT_SCORE = 0.9
CARD_SCORE = 0.5

# An honorific before a name. "Miss", "Sir", "Lady", "Lord" are ordinary words in lower case
# ("I miss you"), so those count only when capitalised.
_TITLE = re.compile(
    r"(?<![\w.])(?:(?i:mr|mrs|ms|mx|dr|prof|mme|mlle|herr|frau)\.?|(?:Miss|Sir|Lady|Lord|Dame|Madam))"
    r"(?=[ \t]+[^\W\d_])",
    re.UNICODE,
)
_AGE_PATTERNS = (
    # 65-year-old, 22 years old, 19 year old, 40 yrs old
    re.compile(r"(?<![\w.,])(\d{1,3})(?=[ \t-]*(?:years?|yrs?|y/o)[ \t-]*old\b)", re.IGNORECASE),
    # aged 34, age: 34, turned 21, I'll turn 40, at the age of 30
    re.compile(
        r"(?i:\b(?:aged?|age\s*:|age\s+of|turn(?:ed|s|ing)?|i\s+am|i'm|is)\s+)"
        r"(\d{1,3})(?![\d,:/%-]|\.\d|\s*(?:%|percent|am\b|pm\b|kg|km|cm|m\b|eur|usd|\$|dollars|"
        r"euros|minutes?|mins?|hours?|days?|weeks?|months?|times?|of\b|out\b|x\b))",
    ),
)
_AGE_CUE_NEEDS_CONTEXT = re.compile(r"(?i:\b(?:i\s+am|i'm|is)\s+$)")
_AGE_WORDS = re.compile(r"(?i:\b(?:years?|yrs?|birthday|born|old|age|aged|turn(?:ed|s)?)\b)")

# A run of digits in groups, optionally with a country code and a trunk prefix in parentheses:
# +46 (0)8 928 571 38, (71) 4233-6306, 0699 868 88 55, +1-984-182-0190, 5403926876 x123
_PHONE = re.compile(
    r"(?<![\w+/.-])(?:\+|00)?(?:\(\d{1,4}\)[ .-]?)?\d[\d .()/-]{5,20}\d"
    r"(?:[ \t]?(?:x|ext\.?)[ \t]?\d{1,5})?(?![\w/-]|\.\d)",
    re.IGNORECASE,
)
_PHONE_WORDS_BEFORE = re.compile(
    r"(?i:\b(?:phone|tel|telephone|mobile|mob|cell|cellphone|fax|desk|office|landline|"
    r"whatsapp|sms|text\s+me|call(?:\s+me)?(?:\s+(?:at|on))?|reach\s+me(?:\s+(?:at|on))?|"
    r"dial|ring|contact\s+(?:number|me)|number|messages\s+to|registered)\b)[\s:#.()-]*"
    r"(?:is\s+|number\s+|no\.?\s+)?$"
)
_PHONE_WORDS_AFTER = re.compile(r"^[\s(]*(?i:office|fax|mobile|cell|home|work|phone|tel)\b")
_DATE_LIKE = re.compile(r"^\d{1,4}([./-])\d{1,2}\1\d{1,4}$")

_ZIP = re.compile(
    r"(?i:\b(?:zip(?:\s*code)?|postal\s*code|post\s*code|postcode|plz)\b(?:\s+is)?[\s:#]*)"
    r"(\d{3,6}(?:[ -]\d{2,4})?(?:[ ]?[A-Z]{2}\b)?|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2})"
)


def find_titles(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _TITLE.finditer(text):
        out.append(Span("TITLE", m.start(), m.end(), TITLE_SCORE))
    return out


def find_ages(text: str) -> list[Span]:
    out: list[Span] = []
    for pattern in _AGE_PATTERNS:
        for m in pattern.finditer(text):
            value = int(m.group(1))
            if not 0 < value <= 120:
                continue
            before = text[: m.start(1)]
            # "I'm 34" and "is 34" are ages only when the sentence speaks of age
            if _AGE_CUE_NEEDS_CONTEXT.search(before) and not _AGE_WORDS.search(
                text[max(0, m.start(1) - 60) : m.end(1) + 40]
            ):
                continue
            out.append(Span("AGE", m.start(1), m.end(1), AGE_SCORE))
    return out


def find_phones(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _PHONE.finditer(text):
        value = m.group().rstrip(" .-/(")
        digits = sum(c.isdigit() for c in value)
        if not 7 <= digits <= 15 or _DATE_LIKE.match(value):
            continue
        # unbalanced parentheses mean the match started or ended inside a group
        if value.count("(") != value.count(")"):
            value = value.lstrip("(") if value.startswith("(") else value
            if value.count("(") != value.count(")"):
                continue
        start = m.start() + m.group().index(value)
        end = start + len(value)
        before = text[max(0, start - 40) : start]
        after = text[end : end + 12]
        if _PHONE_WORDS_BEFORE.search(before) or _PHONE_WORDS_AFTER.match(after):
            out.append(Span("PHONE_NUMBER", start, end, PHONE_CONTEXT_SCORE))
        elif value.startswith(("+", "00")) and any(c in value for c in " -()"):
            out.append(Span("PHONE_NUMBER", start, end, PHONE_INTERNATIONAL_SCORE))
    return out


def find_zip_codes(text: str) -> list[Span]:
    return [Span("ZIP_CODE", m.start(1), m.end(1), ZIP_SCORE) for m in _ZIP.finditer(text)]


# Card numbers Presidio's pattern misses (12-digit Maestro, 19-digit Visa, 15-digit JCB, the
# 2-series Mastercard): 12 to 19 digits, optionally in groups, passing the Luhn check; with a card
# word before them they are near certain, without one a Luhn pass is still 1 in 10 by chance.
_CARD = re.compile(r"(?<![\w.+/-])\d(?:[ -]?\d){11,18}(?![\w/-]|\.\d)")
_CARD_WORDS = re.compile(
    r"(?i:\b(?:card|credit|debit|visa|mastercard|master\s+card|amex|maestro|jcb|diners|cc|"
    r"pan)\b)"
)


def find_card_numbers(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not luhn_valid(digits) or len(set(digits)) < 2:
            continue
        if _CARD_WORDS.search(text[max(0, m.start() - 40) : m.start()]):
            out.append(Span("CREDIT_CARD", m.start(), m.end(), CARD_CONTEXT_SCORE))
        elif 13 <= len(digits) <= 19:
            out.append(Span("CREDIT_CARD", m.start(), m.end(), CARD_SCORE))
    return out
