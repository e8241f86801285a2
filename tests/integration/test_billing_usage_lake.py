"""The usage lake copies usage incrementally, and never lets an invoice rest on a copy that
misses rows: a mismatch with the database rebuilds it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from core.billing import usage_lake
from core.billing.models import SyncState
from core.db import unit_of_work
from tests.billing_ledger import T0, build_ledger
from tests.integration.test_billing_invoicing import add_tokens

JAN = (T0, T0 + timedelta(days=31))


def berlin_tokens() -> int:
    with unit_of_work() as session:
        totals = usage_lake.period_usage(session, *JAN)
    return sum(q for (_, metric), q in totals.items() if metric == "llm_input_tokens")


def test_refresh_appends_only_new_rows(sqlite_db: str) -> None:
    build_ledger()
    add_tokens("Berlin", 1_000, T0 + timedelta(days=1))
    assert berlin_tokens() == 1_000
    add_tokens("Berlin", 500, T0 + timedelta(days=2))
    assert berlin_tokens() == 1_500
    manifest = json.loads((usage_lake.lake_dir() / "manifest.json").read_text())
    assert [p["from"] for p in manifest["parts"] if p["source"] == "llm"] == [1, 2]


def test_a_copy_that_missed_rows_or_belongs_to_another_database_is_rebuilt(sqlite_db: str) -> None:
    build_ledger()
    add_tokens("Berlin", 1_000, T0 + timedelta(days=1))
    assert berlin_tokens() == 1_000
    path = usage_lake.lake_dir() / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["last_id"]["llm"] = 99  # as if rows up to 99 were copied: the next one is missed
    path.write_text(json.dumps(manifest))
    add_tokens("Berlin", 700, T0 + timedelta(days=3))
    assert berlin_tokens() == 1_700  # the check against the database caught it

    with unit_of_work() as session:  # the database was re-created: the lake is not its own
        session.get(SyncState, usage_lake.LAKE_ID_KEY).value = "another-database"
    (usage_lake.lake_dir() / "part-llm-000000000999.parquet").write_bytes(b"half-written")
    assert berlin_tokens() == 1_700
    assert json.loads(path.read_text())["lake_id"] == "another-database"


def test_many_small_parts_are_merged(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_lake, "MAX_PARTS", 3)
    build_ledger()
    for day in range(1, 6):
        add_tokens("Berlin", 100 * day, T0 + timedelta(days=day))
        assert berlin_tokens() == sum(100 * d for d in range(1, day + 1))
    manifest = json.loads((usage_lake.lake_dir() / "manifest.json").read_text())
    llm_parts = [p for p in manifest["parts"] if p["source"] == "llm"]
    assert len(llm_parts) <= 3 and sum(p["rows"] for p in llm_parts) == 5
    on_disk = {p.name for p in usage_lake.lake_dir().glob("part-llm-*.parquet")}
    assert on_disk == {p["file"] for p in llm_parts}
