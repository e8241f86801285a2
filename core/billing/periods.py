"""Billing periods are calendar months in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.errors import ValidationError


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def next_month(start: datetime) -> datetime:
    return month_start(start.year + start.month // 12, start.month % 12 + 1)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return month_start(index // 12, index % 12 + 1)


def month_of(at: datetime) -> tuple[datetime, datetime]:
    start = month_start(at.year, at.month)
    return start, next_month(start)


def months_between(earlier: datetime, later: datetime) -> int:
    """Whole calendar months from `earlier`'s month to `later`'s (same month: 0)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def parse_period(value: str) -> tuple[datetime, datetime]:
    """'2026-10' -> (1 Oct 2026, 1 Nov 2026), UTC."""
    match = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", value or "")
    if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
        raise ValidationError(f"{(value or '')[:20]!r} is not a billing period: use YYYY-MM.")
    start = month_start(int(match.group(1)), int(match.group(2)))
    return start, next_month(start)


def label(start: datetime) -> str:
    return start.strftime("%Y-%m")
