"""Nothing in the console reads the system clock: the UI suite passes with the machine's clock a
year ahead of the demo's anchor (tests/year_ahead.py runs it under libfaketime)."""

from __future__ import annotations

import subprocess

from tests import year_ahead


def test_the_fake_clock_really_moves_the_system_clock() -> None:
    # without this, a broken preload would let the check below pass on today's date
    shown = subprocess.run(
        ["date", "-u", "+%Y-%m-%d"],
        env=year_ahead.faketime_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == year_ahead.A_YEAR_AHEAD.split()[0]


def test_ui_suite_passes_a_year_ahead() -> None:
    code, log = year_ahead.run_ui_suite()
    tail = "\n".join(log.splitlines()[-40:])
    assert code == 0, (
        f"the UI suite failed with the system clock at {year_ahead.A_YEAR_AHEAD}:\n{tail}"
    )
    summary = log.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
