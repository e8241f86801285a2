"""Which rights a data-subject request may invoke, under which regime, and by when it is due.

Deadline rules (all computed on UTC calendar dates; a request is due at the END of its due day):

- GDPR (Arts. 15-21, deadline in Art. 12(3)): "within one month of receipt of the request".
  Periods in months follow Council Regulation (EEC, Euratom) No 1182/71, Art. 3(2)(c), which the
  EDPB applies to access requests (Guidelines 01/2022, para. 157-159): the period ends on the
  day of the next month with the same date as the day of receipt, or on the last day of that
  month when it has no such date (received 31 January -> due 28/29 February). We do not move a
  deadline that falls on a weekend or holiday to the next working day (Art. 3(4) would allow
  it): the earlier date is always safe. The deadline "may be extended by two further months
  where necessary": we add two months to the original due date with the same clamping rule
  (31 Jan -> 28 Feb -> 28 Apr), which is never later than three months from receipt. Once only,
  and only while the first month is running, because the subject must be told within it.
- CCPA (Cal. Civ. Code §1798.130(a)(2)): respond to a request to know or delete "within 45
  days of receiving" it, extendable "once by an additional 45 days when reasonably necessary",
  with notice within the first 45 days.
- CCPA opt-out of sale or sharing (11 CCR §7026(f)): act no later than 15 business days from
  receipt (Monday-Friday; holidays are not subtracted, the earlier date is safe); no extension.

Country lists are data (below): EU member states and the EEA apply the GDPR, the United Kingdom
the UK GDPR (same deadlines); California residents (ISO 3166-2 `US-CA`) are covered by the CCPA.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from core.errors import ValidationError

Regime = Literal["GDPR", "CCPA"]
REGIMES: tuple[Regime, ...] = ("GDPR", "CCPA")

EU_MEMBER_STATES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
EEA_NON_EU = frozenset({"IS", "LI", "NO"})
UK_GDPR = frozenset({"GB"})
GDPR_COUNTRIES = EU_MEMBER_STATES | EEA_NON_EU | UK_GDPR
CCPA_SUBDIVISIONS = frozenset({"US-CA"})
# Greece's ISO code is GR; EU documents also write EL
_ALIASES = {"EL": "GR", "UK": "GB"}


@dataclass(frozen=True)
class RequestKind:
    key: str
    regime: Regime
    label: str
    legal_basis: str
    exports: bool = False  # answered with a download of everything held (access, portability)
    erases: bool = False  # answered by an erasure across every data source
    extendable: bool = True


KINDS: dict[str, RequestKind] = {
    k.key: k
    for k in (
        RequestKind("access", "GDPR", "Access", "GDPR Art. 15", exports=True),
        RequestKind("rectification", "GDPR", "Rectification", "GDPR Art. 16"),
        RequestKind("erasure", "GDPR", "Erasure", "GDPR Art. 17", erases=True),
        RequestKind("restriction", "GDPR", "Restriction of processing", "GDPR Art. 18"),
        RequestKind("portability", "GDPR", "Data portability", "GDPR Art. 20", exports=True),
        RequestKind("objection", "GDPR", "Objection", "GDPR Art. 21"),
        RequestKind("ccpa_know", "CCPA", "Right to know", "Cal. Civ. Code §1798.110", exports=True),
        RequestKind(
            "ccpa_delete", "CCPA", "Right to delete", "Cal. Civ. Code §1798.105", erases=True
        ),
        RequestKind(
            "ccpa_opt_out",
            "CCPA",
            "Opt-out of sale or sharing",
            "Cal. Civ. Code §1798.120",
            extendable=False,
        ),
    )
}
OPT_OUT_BUSINESS_DAYS = 15
CCPA_DAYS = 45
GDPR_MONTHS = 1
GDPR_EXTENSION_MONTHS = 2


def kinds_for(regime: str) -> list[RequestKind]:
    return [k for k in KINDS.values() if k.regime == regime]


def get_kind(key: str) -> RequestKind:
    kind = KINDS.get(key.strip().lower())
    if kind is None:
        raise ValidationError(
            f"Unknown request kind {key[:40]!r}: use one of {', '.join(KINDS)} "
            "(GDPR: access ... objection; CCPA: ccpa_know, ccpa_delete, ccpa_opt_out)."
        )
    return kind


def regime_for_country(code: str) -> Regime | None:
    """The regime that covers a resident of `code` (ISO 3166-1 alpha-2, or 3166-2 like US-CA),
    or None when neither does or the code is too coarse to tell (plain `US`: which state?)."""
    value = code.strip().upper()
    value = _ALIASES.get(value, value)
    if value in GDPR_COUNTRIES:
        return "GDPR"
    if value in CCPA_SUBDIVISIONS:
        return "CCPA"
    return None


def check_kind(key: str, regime: str | None = None, country: str = "") -> RequestKind:
    """The kind, checked against an explicitly chosen regime and the subject's country."""
    kind = get_kind(key)
    if regime is not None and regime.upper() not in REGIMES:
        raise ValidationError(f"Unknown regime {regime[:20]!r}: use GDPR or CCPA.")
    wanted = regime.upper() if regime else kind.regime
    if wanted != kind.regime:
        raise ValidationError(
            f"'{kind.key}' is a {kind.regime} right, not a {wanted} one. {wanted} requests are: "
            f"{', '.join(k.key for k in kinds_for(wanted))}."
        )
    covering = regime_for_country(country) if country else None
    if covering is not None and covering != kind.regime:
        raise ValidationError(
            f"The subject lives in {country.upper()}, which the {covering} covers; "
            f"'{kind.key}' is a {kind.regime} right. Use one of: "
            f"{', '.join(k.key for k in kinds_for(covering))}."
        )
    return kind


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the last day of that month when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_business_days(day: date, days: int) -> date:
    current = day
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time.max, UTC)


def _utc_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: deadlines are computed in UTC")
    return moment.astimezone(UTC).date()


def due_date(kind: RequestKind, received: datetime) -> datetime:
    """When a request received at `received` must be answered (end of that day, UTC)."""
    day = _utc_date(received)
    if kind.key == "ccpa_opt_out":
        return end_of_day(add_business_days(day, OPT_OUT_BUSINESS_DAYS))
    if kind.regime == "CCPA":
        return end_of_day(day + timedelta(days=CCPA_DAYS))
    return end_of_day(add_months(day, GDPR_MONTHS))


def extended_due(kind: RequestKind, due: datetime) -> datetime:
    """The deadline after the one allowed extension of the deadline `due`."""
    if not kind.extendable:
        raise ValidationError(
            f"{kind.label} requests cannot be extended: they must be acted on within "
            f"{OPT_OUT_BUSINESS_DAYS} business days (11 CCR §7026(f))."
        )
    day = _utc_date(due)
    if kind.regime == "CCPA":
        return end_of_day(day + timedelta(days=CCPA_DAYS))
    return end_of_day(add_months(day, GDPR_EXTENSION_MONTHS))


def extension_rule(kind: RequestKind) -> str:
    if not kind.extendable:
        return "No extension."
    if kind.regime == "CCPA":
        return "Once, by 45 more days, with notice to the consumer within the first 45 days."
    return "Once, by two more months, telling the subject why within the first month."


def days_left(due: datetime, now: datetime) -> int:
    """Calendar days from today to the due day: 0 on the due day, negative once overdue."""
    return (_utc_date(due) - _utc_date(now)).days
