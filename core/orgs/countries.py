"""Country facts shipped in `data/countries.csv` (EU membership, currency)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    eu: bool
    currency: str
    demo_weight: int


@lru_cache(maxsize=1)
def countries() -> dict[str, Country]:
    with (DATA_DIR / "countries.csv").open(encoding="utf-8") as handle:
        return {
            row["code"]: Country(
                row["code"], row["name"], row["eu"] == "1", row["currency"], int(row["demo_weight"])
            )
            for row in csv.DictReader(handle)
        }


def eu_codes() -> list[str]:
    return sorted(code for code, c in countries().items() if c.eu)
