"""Validation of the structured identifiers the PII engine looks for beyond Presidio's defaults:
IBAN (ISO 13616, mod 97), EU VAT numbers (format for every member state plus Northern Ireland,
check digits where the algorithm is public and stable), and Slovenia's EMŠO (personal number,
with its birth date) and davčna številka (tax number).

Pure functions on strings: no Presidio here, so recognizers, dataset scanners and tests share one
definition of "valid". Input may contain spaces, dots and dashes as people write them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

__all__ = [
    "IBAN_LENGTHS",
    "VAT_FORMATS",
    "compact",
    "emso_birth_date",
    "is_valid_emso",
    "is_valid_iban",
    "is_valid_si_tax_number",
    "is_valid_vat",
]

_SEPARATORS = re.compile(r"[\s.\-/]")

# ISO 13616 lengths for the SEPA countries (the console's customers bank there).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "VA": 22,
}  # fmt: skip


def compact(value: str) -> str:
    """Upper case without the separators people type (spaces, dots, dashes, slashes)."""
    return _SEPARATORS.sub("", value).upper()


def _mod97(text: str) -> int:
    """The remainder mod 97 of `text` with letters as numbers (A=10 ... Z=35)."""
    remainder = 0
    for ch in text:
        for digit in str(int(ch, 36)):
            remainder = (remainder * 10 + int(digit)) % 97
    return remainder


def is_valid_iban(value: str) -> bool:
    iban = compact(value)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", iban):
        return False
    expected = IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    return _mod97(iban[4:] + iban[:4]) == 1


# -- Slovenia ----------------------------------------------------------------------------------


def _weighted_mod11(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11


def is_valid_si_tax_number(value: str) -> bool:
    """Davčna številka: 8 digits, the first not 0; the last is 11 - (weighted sum mod 11) with
    weights 8..2, 10 written as 0, and 11 never issued."""
    number = compact(value)
    if number.startswith("SI"):
        number = number[2:]
    if not re.fullmatch(r"[1-9]\d{7}", number):
        return False
    check = 11 - _weighted_mod11(number[:7], (8, 7, 6, 5, 4, 3, 2))
    if check == 11:
        return False
    return (0 if check == 10 else check) == int(number[7])


def emso_birth_date(value: str) -> date | None:
    """The birth date an EMŠO encodes (DDMMYYY: YYY >= 800 means 1YYY, else 2YYY), or None."""
    number = compact(value)
    if not re.fullmatch(r"\d{13}", number):
        return None
    day, month, yyy = int(number[:2]), int(number[2:4]), int(number[4:7])
    year = 1000 + yyy if yyy >= 800 else 2000 + yyy
    try:
        return date(year, month, day)
    except ValueError:
        return None


def is_valid_emso(value: str) -> bool:
    """EMŠO: DDMMYYY RR BBB K, a real date, and K = 11 - (weighted sum mod 11) with weights
    7,6,5,4,3,2,7,6,5,4,3,2 (a remainder of 0 gives 0; 1 would need 10, which is never issued)."""
    number = compact(value)
    if emso_birth_date(number) is None:
        return False
    remainder = _weighted_mod11(number[:12], (7, 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2))
    if remainder == 1:
        return False
    check = 0 if remainder == 0 else 11 - remainder
    return check == int(number[12])


# -- EU VAT ------------------------------------------------------------------------------------

# The part after the country prefix (Greece uses EL; XI is Northern Ireland under the Protocol).
VAT_FORMATS: dict[str, str] = {
    "AT": r"U\d{8}", "BE": r"[01]\d{9}", "BG": r"\d{9,10}", "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}", "DE": r"\d{9}", "DK": r"\d{8}", "EE": r"\d{9}", "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]", "FI": r"\d{8}", "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}", "HU": r"\d{8}", "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}", "LT": r"\d{9}|\d{12}", "LU": r"\d{8}", "LV": r"\d{11}", "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}", "PL": r"\d{10}", "PT": r"\d{9}", "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01", "SI": r"[1-9]\d{7}", "SK": r"[1-9]\d{9}",
    "XI": r"\d{9}|\d{12}|GD\d{3}|HA\d{3}",
}  # fmt: skip


def _iso7064_mod11_10(digits: str) -> bool:
    product = 10
    for d in digits[:-1]:
        total = (int(d) + product) % 10 or 10
        product = (2 * total) % 11
    return (11 - product) % 10 == int(digits[-1])


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of payment cards and Italian VAT numbers."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _at(n: str) -> bool:
    digits = n[1:]
    total = 0
    for i, d in enumerate(digits[:7]):
        p = int(d) * (2 if i % 2 else 1)
        total += p // 10 + p % 10
    return (10 - (total + 4) % 10) % 10 == int(digits[7])


def _be(n: str) -> bool:
    return 97 - int(n[:8]) % 97 == int(n[8:])


def _fr(n: str) -> bool:
    key, siren = n[:2], n[2:]
    if not key.isdigit():
        return True  # the alphabetic keys of newer numbers have no published check
    return int(key) == (12 + 3 * (int(siren) % 97)) % 97


def _nl(n: str) -> bool:
    # sole traders' numbers (since 2020) pass mod 97 over "NL" + number; older ones the mod 11
    legacy = _weighted_mod11(n[:8], (9, 8, 7, 6, 5, 4, 3, 2)) == int(n[8])
    return legacy or _mod97("NL" + n) == 1


def _pl(n: str) -> bool:
    check = _weighted_mod11(n[:9], (6, 5, 7, 2, 3, 4, 5, 6, 7))
    return check != 10 and check == int(n[9])


def _dk(n: str) -> bool:
    return sum(int(d) * w for d, w in zip(n, (2, 7, 6, 5, 4, 3, 2, 1), strict=True)) % 11 == 0


def _fi(n: str) -> bool:
    check = 11 - _weighted_mod11(n[:7], (7, 9, 10, 5, 8, 4, 2))
    if check == 10:
        return False
    return (0 if check == 11 else check) == int(n[7])


def _pt(n: str) -> bool:
    check = 11 - _weighted_mod11(n[:8], (9, 8, 7, 6, 5, 4, 3, 2))
    return (0 if check >= 10 else check) == int(n[8])


def _lu(n: str) -> bool:
    return int(n[:6]) % 89 == int(n[6:])


_VAT_CHECKS: dict[str, Callable[[str], bool]] = {
    "AT": _at,
    "BE": _be,
    "DE": _iso7064_mod11_10,
    "DK": _dk,
    "FI": _fi,
    "FR": _fr,
    "HR": _iso7064_mod11_10,
    "IT": luhn_valid,
    "LU": _lu,
    "NL": _nl,
    "PL": _pl,
    "PT": _pt,
    "SI": is_valid_si_tax_number,
}


def is_valid_vat(value: str) -> bool:
    """An EU VAT number with its country prefix (e.g. "SI 1234 5678", "DE123456788"): the
    country's format, and its check digits where `_VAT_CHECKS` knows the algorithm. A number
    that passes is well-formed; whether it is registered only VIES can say."""
    number = compact(value)
    country, rest = number[:2], number[2:]
    if country == "GR":
        country = "EL"
    pattern = VAT_FORMATS.get(country)
    if pattern is None or not re.fullmatch(pattern, rest):
        return False
    check = _VAT_CHECKS.get(country)
    return check(rest) if check is not None else True
