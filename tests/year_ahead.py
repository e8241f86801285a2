"""The UI suite run again with the system clock a year ahead of the demo's anchor, to show that
the console reads the time only through its clock (core/clock.py), libraries included.

The system clock is moved for real: the run's processes load libfaketime (LD_PRELOAD; the
`libfaketime` package builds it at install), so `datetime.now`, `time.time`, SQLite's
CURRENT_TIMESTAMP and every child process see 2027-11-01.

It runs on its own, in sequence with the rest. Run alongside the main session (tried in the
background, at normal and at the lowest priority), it saved no wall time on 2 cores and, when
starved, hit AppTest's 60 s script time-outs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A_YEAR_AHEAD = "2027-11-01 12:00:00"  # the demo's anchor (2026-11-01), midday, a year on
TIMEOUT_S = 30 * 60


def faketime_env(at: str = A_YEAR_AHEAD) -> dict[str, str]:
    """The environment that starts a process's system clock at `at` (UTC), running on."""
    import libfaketime

    library = Path(libfaketime.__file__).parent / "vendor" / "libfaketime" / "src"
    preload = library / "libfaketime.so.1"
    if not preload.is_file():
        raise RuntimeError(f"libfaketime was not built: {preload} is missing")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        {
            "LD_PRELOAD": str(preload),
            "FAKETIME": f"@{at}",
            "TZ": "UTC",
            "DONT_FAKE_MONOTONIC": "1",  # durations and timeouts stay real
        }
    )
    return env


def run_ui_suite() -> tuple[int, str]:
    """Run tests/ui with the system clock at A_YEAR_AHEAD; returns the exit code and the log."""
    with tempfile.TemporaryDirectory(prefix="omni-year-ahead-") as folder:
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "tests/ui",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--basetemp",
                    str(Path(folder) / "tmp"),
                ],
                cwd=ROOT,
                env=faketime_env(),
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            return -9, out + f"\n(timed out after {TIMEOUT_S} s)"
    return done.returncode, done.stdout + done.stderr
