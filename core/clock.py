"""The console's one clock: every page, service, CLI command, seeder and job reads the time here.

Nothing else may read the system time (`datetime.now`, `date.today`, `time.time`, ...): ruff's
banned-API rule (TID251, configured in pyproject.toml) refuses it everywhere but this module.
Durations keep using `time.monotonic` / `time.perf_counter`, which say how long, not when.

Why one clock: what a page shows ("last 30 days", "the last complete month", "overdue") depends
on today's date. With the time read in one place, tests pin "today" to the demo tenant's anchor
and move it where time is the point, and a demo or a screenshot can be shown as of a date
(`OMNI_CLOCK_START`). In production the clock is the system clock.

Three clocks:
- `SystemClock`: the machine's clock (the default).
- `ShiftedClock`: reads a given instant when created and runs on from there at the system's
  pace (`OMNI_CLOCK_START`; the test suite runs on one started at the demo's anchor).
- `FrozenClock`: stands still until moved (`set`, `advance`); for tests about time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ShiftedClock:
    """Starts at `start` and runs on at the pace of `source` (the system clock by default)."""

    def __init__(self, start: datetime, source: Clock | None = None) -> None:
        self._source = source or SystemClock()
        self.start = _aware(start)
        self._offset = self.start - self._source.now()

    def now(self) -> datetime:
        return self._source.now() + self._offset

    def __repr__(self) -> str:
        return f"ShiftedClock(start={self.start.isoformat()})"


class FrozenClock:
    """Reads the same instant until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self._at = _aware(at)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = _aware(at)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by `delta` or by timedelta keywords (`days=3`); returns the new now."""
        with self._lock:
            self._at += delta if delta is not None else timedelta(**parts)
            return self._at

    def __repr__(self) -> str:
        return f"FrozenClock(at={self._at.isoformat()})"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware instant (e.g. 2026-11-01T12:00:00+00:00)")
    return value.astimezone(UTC)


# --- the process's clock --------------------------------------------------------------------------

_override: Clock | None = None
_from_settings: tuple[datetime | None, Clock] | None = None


def get_clock() -> Clock:
    """The clock in force: one set by `set_clock` / `use_clock`, else the one the settings name
    (`OMNI_CLOCK_START`: a shifted clock; unset: the system clock)."""
    global _from_settings
    if _override is not None:
        return _override
    from core.config import get_settings  # late: config must not depend on the clock

    start = get_settings().clock_start
    if _from_settings is None or _from_settings[0] != start:
        _from_settings = (start, ShiftedClock(start) if start else SystemClock())
    return _from_settings[1]


def set_clock(clock: Clock | None) -> Clock | None:
    """Put `clock` in force for the whole process (None: back to the settings' clock). Returns
    the clock that was set before, to put back."""
    global _override
    previous, _override = _override, clock
    return previous


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


# --- reading it -----------------------------------------------------------------------------------


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC: what the database stores."""
    return get_clock().now()


def now(zone: tzinfo | str | None = None) -> datetime:
    """Now in `zone` (a tzinfo or an IANA name such as "Europe/Ljubljana"; default UTC)."""
    return utcnow().astimezone(as_zone(zone))


def today(zone: tzinfo | str | None = None) -> date:
    """Today's date in `zone` (default UTC): a viewer's "today" is the one in their zone."""
    return now(zone).date()


def epoch_seconds() -> float:
    """Now as seconds since the Unix epoch, for APIs that take a number (MLflow's millisecond
    timestamps, rate-limit windows shared through Redis, file ages)."""
    return utcnow().timestamp()


def as_zone(zone: tzinfo | str | None) -> tzinfo:
    """A tzinfo from a zone or its IANA name; None and unknown names mean UTC."""
    if zone is None:
        return UTC
    if isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
