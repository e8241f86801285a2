"""The UI suite run again with the system clock a year ahead of the demo's anchor, to show that
the console reads the time only through its clock (core/clock.py), libraries included.

The system clock is moved for real: the run's processes load libfaketime (LD_PRELOAD; the
`libfaketime` package builds it at install), so `datetime.now`, `time.time`, SQLite's
CURRENT_TIMESTAMP and every child process see 2027-11-01. The run goes on in the background
from the moment the main session has collected its tests (tests/conftest.py starts it), at the
lowest CPU priority and on one thread, so it takes the core the main session leaves idle rather
than slowing it down; the test that reads its verdict runs last."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A_YEAR_AHEAD = "2027-11-01 12:00:00"  # the demo's anchor (2026-11-01), midday, a year on
TEST_ID = "tests/integration/test_clock_independence.py::test_ui_suite_passes_a_year_ahead"
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
            "FAKETIME_NO_CACHE": "1",
        }
    )
    return env


@dataclass
class BackgroundRun:
    process: subprocess.Popen[bytes]
    log: Path

    def wait(self) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = -9
        return code, self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_RUN: BackgroundRun | None = None


def start() -> BackgroundRun:
    """Start the year-ahead UI run (once per session)."""
    global _RUN
    if _RUN is None:
        folder = Path(tempfile.mkdtemp(prefix="omni-year-ahead-"))
        log = folder / "pytest.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    "nice",
                    "-n",
                    "19",
                    sys.executable,
                    "-m",
                    "pytest",
                    "tests/ui",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--basetemp",
                    str(folder / "tmp"),
                ],
                cwd=ROOT,
                # one thread each for torch and BLAS: two runs of two threads on two cores
                # thrash (measured: the main session took twice as long)
                env={**faketime_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _RUN = BackgroundRun(process, log)
    return _RUN


def stop() -> None:
    if _RUN is not None:
        _RUN.stop()
