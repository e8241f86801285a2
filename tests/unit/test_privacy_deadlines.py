"""Deadlines of data-subject requests: GDPR one month (clamped to the month's end) plus two,
CCPA 45 days plus 45, CCPA opt-out 15 business days; kinds against regimes and countries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationError
from core.privacy import deadlines as dl

GDPR_KINDS = [k for k in dl.KINDS.values() if k.regime == "GDPR"]
CCPA_KINDS = [k for k in dl.KINDS.values() if k.regime == "CCPA" and k.extendable]
ACCESS, KNOW, OPT_OUT = dl.KINDS["access"], dl.KINDS["ccpa_know"], dl.KINDS["ccpa_opt_out"]

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC)
)


def at(day: str, clock: str = "10:30") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}:00+00:00")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-01-15", "2026-02-15"),
        ("2026-01-31", "2026-02-28"),
        ("2028-01-31", "2028-02-29"),  # leap year
        ("2026-03-31", "2026-04-30"),
        ("2026-12-20", "2027-01-20"),
        ("2026-02-28", "2026-03-28"),
    ],
)
def test_gdpr_one_month_is_the_same_day_next_month_or_its_last_day(received: str, due: str) -> None:
    assert dl.due_date(ACCESS, at(received)) == dl.end_of_day(date.fromisoformat(due))


def test_the_deadline_is_the_end_of_the_due_day_in_utc() -> None:
    due = dl.due_date(ACCESS, datetime.fromisoformat("2026-01-15T23:30:00-05:00"))  # 16th UTC
    assert due.tzinfo is UTC and due.date() == date(2026, 2, 16)
    assert (due.hour, due.minute, due.second) == (23, 59, 59)


def test_gdpr_extension_adds_two_months_to_the_original_deadline() -> None:
    due = dl.due_date(ACCESS, at("2026-01-31"))
    assert dl.extended_due(ACCESS, due).date() == date(2026, 4, 28)


def test_ccpa_is_45_days_and_45_more() -> None:
    due = dl.due_date(KNOW, at("2026-01-31"))
    assert due.date() == date(2026, 3, 17)
    assert dl.extended_due(KNOW, due).date() == date(2026, 5, 1)


def test_ccpa_opt_out_is_15_business_days_and_cannot_be_extended() -> None:
    due = dl.due_date(OPT_OUT, at("2026-11-27"))  # a Friday
    assert due.date() == date(2026, 12, 18)
    with pytest.raises(ValidationError, match="cannot be extended"):
        dl.extended_due(OPT_OUT, due)


def test_days_left_counts_calendar_days_and_goes_negative() -> None:
    due = dl.due_date(ACCESS, at("2026-01-15"))
    assert dl.days_left(due, at("2026-02-14", "23:00")) == 1
    assert dl.days_left(due, at("2026-02-15", "23:00")) == 0
    assert dl.days_left(due, at("2026-02-20")) == -5


@pytest.mark.parametrize(
    ("country", "regime"),
    [
        *[("SI", "GDPR"), ("de", "GDPR"), ("NO", "GDPR"), ("GB", "GDPR"), ("EL", "GDPR")],
        *[("US-CA", "CCPA"), ("US", None), ("JP", None), ("US-NY", None)],
    ],
)
def test_regime_from_country(country: str, regime: str | None) -> None:
    assert dl.regime_for_country(country) == regime


def test_kinds_are_checked_against_the_regime_and_the_country() -> None:
    assert dl.check_kind("access").regime == "GDPR"
    assert dl.check_kind("ccpa_delete", "CCPA", "US").key == "ccpa_delete"
    assert dl.check_kind("erasure", None, "US").regime == "GDPR"  # state unknown: allowed
    with pytest.raises(ValidationError, match="'access' is a GDPR right, not a CCPA one"):
        dl.check_kind("access", "CCPA")
    with pytest.raises(ValidationError, match="SI, which the GDPR covers"):
        dl.check_kind("ccpa_know", None, "SI")
    with pytest.raises(ValidationError, match="Unknown request kind 'forget-me'"):
        dl.check_kind("forget-me")
    with pytest.raises(ValidationError, match="Unknown regime 'LGPD'"):
        dl.check_kind("access", "LGPD")


@given(moments, st.sampled_from(GDPR_KINDS))
def test_gdpr_due_is_after_receipt_and_within_a_calendar_month(
    received: datetime, kind: dl.RequestKind
) -> None:
    due = dl.due_date(kind, received)
    assert due >= received
    assert 28 <= (due.date() - received.date()).days <= 31
    assert due.day == received.day or due.day < received.day  # clamped, never later


@given(moments, st.sampled_from(GDPR_KINDS))
def test_gdpr_extension_is_never_later_than_three_months_from_receipt(
    received: datetime, kind: dl.RequestKind
) -> None:
    due = dl.due_date(kind, received)
    extended = dl.extended_due(kind, due)
    assert due < extended
    assert extended.date() <= dl.add_months(received.date(), 3)
    assert 59 <= (extended.date() - due.date()).days <= 62


@given(moments, st.sampled_from(CCPA_KINDS))
def test_ccpa_due_is_45_days_then_90(received: datetime, kind: dl.RequestKind) -> None:
    due = dl.due_date(kind, received)
    assert due >= received
    assert (due.date() - received.date()).days == 45
    assert (dl.extended_due(kind, due).date() - received.date()).days == 90


@given(moments)
def test_opt_out_due_is_three_working_weeks(received: datetime) -> None:
    due = dl.due_date(OPT_OUT, received)
    assert due.weekday() < 5
    assert timedelta(days=19) <= due - received <= timedelta(days=22)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.integers(0, 36))
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int) -> None:
    later = dl.add_months(day, months)
    assert (later.year - day.year) * 12 + later.month - day.month == months
    assert later.day == day.day or (later.day < day.day and (later + timedelta(days=1)).day == 1)
