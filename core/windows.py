"""Reporting windows read from the console's clock ("last 30 days"), and the latest window that
holds data when the default one holds none.

Why: a demo seeded weeks ago, or a tenant whose traffic stopped, would otherwise open on empty
charts and zero counts. The pages say so and offer the window of the same length that ends with
the newest data instead (`latest_window`). Months with data come from their domain
(`latest_invoiced_period`, `latest_revenue_month`), as billing labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from core.clock import as_zone, utcnow


@dataclass(frozen=True)
class Window:
    """The instants from `start` (included) to `end` (excluded), both UTC."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def holds(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def describe(self, zone: tzinfo | str | None = None) -> str:
        """ "2026-10-02 to 2026-10-31" in the viewer's zone (the last day is the one `end`
        closes; a window ending at midnight ends the day before)."""
        z = as_zone(zone)
        first = self.start.astimezone(z)
        last = (self.end - timedelta(microseconds=1)).astimezone(z)
        if first.date() == last.date():
            return f"{first:%Y-%m-%d %H:%M} to {last:%H:%M}"
        return f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"


def trailing(length: timedelta, end: datetime | None = None) -> Window:
    """The `length` up to `end` (default: now)."""
    end = end if end is not None else utcnow()
    return Window(end - length, end)


def latest_window(default: Window, latest: datetime | None) -> Window | None:
    """The window as long as `default` that ends with the newest data, or None when there is no
    need: the default holds data (`latest` falls in or after it) or there is none at all.

    The window ends at the close of the newest data's UTC day (for windows of a day or more), so
    a whole day shows; shorter windows end just after the newest row."""
    if latest is None or latest >= default.start:
        return None
    if default.length >= timedelta(days=1):
        end = datetime.combine(latest.astimezone(UTC).date() + timedelta(days=1), time.min, UTC)
    else:
        end = latest + timedelta(microseconds=1)
    return Window(end - default.length, end)
