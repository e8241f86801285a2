"""What every benchmark prints about the machine it ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    return (
        f"{os.cpu_count()}-core {platform.machine()} {platform.system()} ({cpu_name()}), "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    """The 1 / 5 / 15 minute load averages, for judging how quiet the machine was."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def append_results(lines: list[str]) -> None:
    """Append a benchmark's section to bench/RESULTS.md."""
    results = Path(__file__).resolve().parent / "RESULTS.md"
    with results.open("a", encoding="utf-8") as fh:
        fh.write("\n" + "\n".join(lines))
    print("appended to bench/RESULTS.md")
