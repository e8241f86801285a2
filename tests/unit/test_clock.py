"""The console's one clock (core/clock.py), the reporting windows read from it (core/windows.py),
and the lint rule that keeps every other module from reading the system time."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from core import clock
from core.config import reload_settings
from core.windows import Window, latest_window, trailing
from tests.conftest import DEMO_ANCHOR, TEST_NOW

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_runs_on_the_demo_date_whatever_the_machine_says() -> None:
    # the session's pinned clock started at TEST_NOW; a run lasts minutes, not hours
    assert TEST_NOW <= clock.utcnow() < TEST_NOW + timedelta(hours=6)
    assert clock.today() == DEMO_ANCHOR.date()


def test_a_shifted_clock_starts_where_told_and_runs_on() -> None:
    base = clock.FrozenClock(datetime(2030, 5, 5, 8, 0, tzinfo=UTC))
    shifted = clock.ShiftedClock(datetime(2026, 11, 1, 12, 0, tzinfo=UTC), source=base)
    assert shifted.now() == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    base.advance(minutes=90)
    assert shifted.now() == datetime(2026, 11, 1, 13, 30, tzinfo=UTC)


def test_a_frozen_clock_stands_still_until_moved() -> None:
    frozen = clock.FrozenClock(datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    assert frozen.now() == frozen.now()
    assert frozen.advance(hours=2) == datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
    frozen.set(datetime(2027, 3, 1, tzinfo=timezone(timedelta(hours=2))))
    assert frozen.now() == datetime(2027, 2, 28, 22, 0, tzinfo=UTC)
    assert frozen.now().tzinfo is UTC


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.FrozenClock(datetime(2026, 11, 1))


def test_use_clock_puts_the_previous_clock_back(frozen_clock: clock.FrozenClock) -> None:
    other = clock.FrozenClock(datetime(2001, 1, 1, tzinfo=UTC))
    with clock.use_clock(other):
        assert clock.utcnow().year == 2001
    assert clock.get_clock() is frozen_clock
    frozen_clock.advance(days=400)
    assert clock.utcnow() == TEST_NOW + timedelta(days=400)


def test_today_is_the_viewers_date(frozen_clock: clock.FrozenClock) -> None:
    frozen_clock.set(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert clock.today() == datetime(2026, 11, 30).date()
    assert clock.today("Asia/Tokyo") == datetime(2026, 12, 1).date()
    assert clock.today("America/Los_Angeles") == datetime(2026, 11, 30).date()
    assert clock.now("Europe/Ljubljana").utcoffset() == timedelta(hours=1)
    assert clock.today("Not/AZone") == clock.today()  # an unknown zone reads as UTC
    assert clock.epoch_seconds() == datetime(2026, 11, 30, 23, 30, tzinfo=UTC).timestamp()


def test_the_settings_clock_follows_omni_clock_start(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = clock.set_clock(None)  # what a process with no test override sees
    try:
        monkeypatch.setenv("OMNI_CLOCK_START", "2024-02-29T12:00:00Z")
        reload_settings()
        assert clock.today() == datetime(2024, 2, 29).date()
        assert isinstance(clock.get_clock(), clock.ShiftedClock)
        monkeypatch.setenv("OMNI_CLOCK_START", "")
        reload_settings()
        assert isinstance(clock.get_clock(), clock.SystemClock)
        monkeypatch.setenv("OMNI_CLOCK_START", "2024-02-29T12:00:00")  # no zone
        with pytest.raises(ValueError, match="needs a time zone"):
            reload_settings()
    finally:
        monkeypatch.delenv("OMNI_CLOCK_START")
        reload_settings()
        clock.set_clock(previous)


def test_a_window_with_data_needs_no_replacing() -> None:
    last_30 = trailing(timedelta(days=30), end=datetime(2026, 12, 31, 12, tzinfo=UTC))
    assert latest_window(last_30, None) is None  # no data at all: nothing to offer
    assert latest_window(last_30, datetime(2026, 12, 20, tzinfo=UTC)) is None
    assert latest_window(last_30, datetime(2027, 1, 5, tzinfo=UTC)) is None  # data ahead


def test_an_empty_window_offers_the_same_length_ending_with_the_newest_data() -> None:
    last_30 = trailing(timedelta(days=30), end=datetime(2026, 12, 31, 12, tzinfo=UTC))
    offered = latest_window(last_30, datetime(2026, 10, 31, 23, 58, tzinfo=UTC))
    assert offered == Window(
        datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    )  # whole days, the newest data's day included
    assert offered.holds(datetime(2026, 10, 31, 23, 58, tzinfo=UTC))
    assert offered.describe() == "2026-10-02 to 2026-10-31"
    assert offered.describe("Asia/Tokyo") == "2026-10-02 to 2026-11-01"
    last_hour = trailing(timedelta(hours=1), end=datetime(2026, 12, 31, 12, tzinfo=UTC))
    short = latest_window(last_hour, datetime(2026, 10, 31, 9, 15, tzinfo=UTC))
    assert short is not None and short.length == timedelta(hours=1)
    assert short.holds(datetime(2026, 10, 31, 9, 15, tzinfo=UTC))
    assert short.describe() == "2026-10-31 08:15 to 09:15"


BANNED_READS = {
    "from datetime import UTC, datetime\nX = datetime.now(UTC)\n": "datetime.datetime.now",
    "import datetime as dt\nX = dt.date.today()\n": "datetime.date.today",
    "import datetime\nX = datetime.datetime.utcnow()\n": "datetime.datetime.utcnow",
    "import time\nX = time.time()\n": "time.time",
    "import pandas as pd\nX = pd.Timestamp.now(tz='UTC')\n": "pandas.Timestamp.now",
}


@pytest.mark.parametrize("source", list(BANNED_READS))
def test_lint_refuses_reading_the_system_time_outside_the_clock(
    source: str, tmp_path: Path
) -> None:
    module = tmp_path / "pages_module.py"
    module.write_text(source)
    result = _ruff(module)
    assert result.returncode == 1
    assert f"`{BANNED_READS[source]}` is banned" in result.stdout


def test_lint_allows_durations(tmp_path: Path) -> None:
    module = tmp_path / "durations.py"
    module.write_text("import time\nA = time.monotonic()\nB = time.perf_counter()\n")
    assert _ruff(module).returncode == 0


def test_no_module_outside_the_clock_reads_the_system_time() -> None:
    folders = [str(ROOT / name) for name in ("core", "console", "pages", "jobs", "tests", "bench")]
    result = _ruff(*folders)
    assert result.returncode == 0, result.stdout


def _ruff(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--select",
            "TID251",
            "--config",
            str(ROOT / "pyproject.toml"),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
