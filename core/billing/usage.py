"""Metered usage: LLM tokens come from the LLM usage ledger, other metrics from CSV imports.

For an invoice run the period's usage is exported from the relational store to one Parquet file
(streamed in batches, so memory stays flat at any size) and summed per customer and metric by
DuckDB in-process. The same aggregation serves the dashboards and the benchmark
(`bench/billing.py`), which measures it against plain pandas on 10 million events.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.catalog import LEDGER_METRICS, METRICS
from core.billing.models import Customer, UsageEvent
from core.config import get_settings
from core.db import unit_of_work, utcnow
from core.errors import ValidationError
from core.llm.models import LLMUsage

USAGE_SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("metric", pa.string()), ("quantity", pa.int64())]
)
CSV_COLUMNS = ("event_id", "customer_id", "metric", "quantity", "timestamp")
MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_QUANTITY = 10**12
BATCH_ROWS = 100_000


# --- CSV import -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    rows: int
    added: int
    already_imported: int
    batch: str


def _parse_ts(value: str) -> datetime:
    text = value.strip().replace("Z", "+00:00")
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise ValueError("no time zone")
    return ts.astimezone(UTC)


def _parse_rows(data: bytes, known_customers: set[int], now: datetime) -> list[dict[str, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The usage file is not UTF-8 text; export it as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ValidationError(
            f"The usage file lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(CSV_COLUMNS)}."
        )
    rows, problems, seen = [], [], set()
    importable = sorted(set(METRICS) - set(LEDGER_METRICS))
    for line, raw in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        try:
            key = row["event_id"]
            if not key or len(key) > 128:
                raise ValueError("event_id must be 1-128 characters")
            if key in seen:
                raise ValueError(f"event_id {key[:40]!r} appears twice in the file")
            seen.add(key)
            customer = int(row["customer_id"])
            if customer not in known_customers:
                raise ValueError(f"no billing customer {customer}")
            if row["metric"] not in importable:
                raise ValueError(
                    f"metric {row['metric'][:40]!r} is not importable ({', '.join(importable)}; "
                    "LLM tokens come from the usage ledger)"
                )
            quantity = int(row["quantity"])
            if not 0 <= quantity <= MAX_QUANTITY:
                raise ValueError("quantity must be a whole number from 0 to 10^12")
            ts = _parse_ts(row["timestamp"])
            if ts > now:
                raise ValueError("timestamp is in the future")
        except (ValueError, TypeError) as exc:
            problems.append(f"line {line}: {exc}")
            if len(problems) >= 5:
                break
            continue
        rows.append(
            {
                "event_key": key,
                "customer_id": customer,
                "metric": row["metric"],
                "quantity": quantity,
                "ts": ts,
            }
        )
    if problems:
        raise ValidationError(
            "Nothing was imported; fix these rows and import the file again: " + "; ".join(problems)
        )
    if not rows:
        raise ValidationError("The usage file has a header but no rows.")
    return rows


def import_usage_csv(actor: Actor, data: bytes, filename: str = "usage.csv") -> ImportReport:
    """All rows or none: one bad row refuses the file and says which lines to fix. Events whose
    `event_id` was imported before are skipped, so importing the same file twice adds nothing."""
    require(actor, Permission.BILLING_MANAGE, action="billing.usage.import")
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(
            f"The usage file is {len(data) / 1e6:.0f} MB; the limit is "
            f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB. Split it by month."
        )
    now = utcnow()
    batch = f"csv-{now:%Y%m%dT%H%M%S}"
    with unit_of_work() as session:
        known = set(session.scalars(select(Customer.id)))
        rows = _parse_rows(data, known, now)
        existing: set[str] = set()
        keys = [r["event_key"] for r in rows]
        for i in range(0, len(keys), 1000):
            existing.update(
                session.scalars(
                    select(UsageEvent.event_key).where(UsageEvent.event_key.in_(keys[i : i + 1000]))
                )
            )
        fresh = [{**r, "batch": batch} for r in rows if r["event_key"] not in existing]
        if fresh:
            session.execute(insert(UsageEvent), fresh)
        record(
            session,
            actor,
            "billing.usage.import",
            f"usage:{batch}",
            {"rows": len(rows), "added": len(fresh), "skipped": len(rows) - len(fresh)},
        )
        return ImportReport(len(rows), len(fresh), len(rows) - len(fresh), batch)


# --- export and aggregation ---------------------------------------------------------------------


def lake_dir() -> Path:
    path = get_settings().ensure_home() / "billing" / "usage"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ledger_batches(
    session: Session, start: datetime, end: datetime, customer_id: int | None = None
) -> Any:
    """Successful LLM calls of the period as (customer, metric, quantity) batches."""
    stmt = (
        select(Customer.id, LLMUsage.input_tokens, LLMUsage.output_tokens)
        .join(Customer, Customer.organisation_id == LLMUsage.customer_id)
        .where(LLMUsage.ts >= start, LLMUsage.ts < end, LLMUsage.status == "ok")
        .execution_options(yield_per=BATCH_ROWS)
    )
    if customer_id is not None:
        stmt = stmt.where(Customer.id == customer_id)
    for part in session.execute(stmt).partitions():
        customers = [r[0] for r in part]
        yield pa.record_batch(
            [
                pa.array(customers + customers, pa.int64()),
                pa.array(["llm_input_tokens"] * len(part) + ["llm_output_tokens"] * len(part)),
                pa.array([r[1] for r in part] + [r[2] for r in part], pa.int64()),
            ],
            schema=USAGE_SCHEMA,
        )


def _event_batches(
    session: Session, start: datetime, end: datetime, customer_id: int | None = None
) -> Any:
    stmt = (
        select(UsageEvent.customer_id, UsageEvent.metric, UsageEvent.quantity)
        .where(UsageEvent.ts >= start, UsageEvent.ts < end)
        .execution_options(yield_per=BATCH_ROWS)
    )
    if customer_id is not None:
        stmt = stmt.where(UsageEvent.customer_id == customer_id)
    for part in session.execute(stmt).partitions():
        yield pa.record_batch(
            [
                pa.array([r[0] for r in part], pa.int64()),
                pa.array([r[1] for r in part]),
                pa.array([r[2] for r in part], pa.int64()),
            ],
            schema=USAGE_SCHEMA,
        )


def export_period(session: Session, start: datetime, end: datetime) -> Path:
    """Write the period's usage to `$OMNI_HOME/billing/usage/<YYYY-MM>.parquet`, atomically (a
    temp file renamed into place), so a crash never leaves half a file for the next run."""
    target = lake_dir() / f"{start:%Y-%m}.parquet"
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".parquet.tmp")
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, USAGE_SCHEMA) as writer:
            writer.write_table(USAGE_SCHEMA.empty_table())
            for batches in (
                _ledger_batches(session, start, end),
                _event_batches(session, start, end),
            ):
                for batch in batches:
                    writer.write_batch(batch)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


UsageTotals = dict[tuple[int, str], int]


def aggregate(source: Path | pa.Table) -> UsageTotals:
    """Sum usage per (customer, metric) with DuckDB, over a Parquet file or an Arrow table."""
    con = duckdb.connect()
    try:
        if isinstance(source, Path):
            con.read_parquet(str(source)).create_view("usage")
        else:
            con.register("usage", source)
        rows = con.execute(
            "SELECT customer_id, metric, CAST(SUM(quantity) AS BIGINT) FROM usage "
            "GROUP BY customer_id, metric"
        ).fetchall()
    finally:
        con.close()
    return {(int(c), str(m)): int(q) for c, m, q in rows}


def period_usage(session: Session, start: datetime, end: datetime) -> UsageTotals:
    return aggregate(export_period(session, start, end))


def customer_usage(
    actor: Actor, customer_id: int, start: datetime, end: datetime
) -> dict[str, int]:
    """A customer's usage per metric in [start, end), for the customer page."""
    require(actor, Permission.BILLING_READ, action="billing.usage.read")
    with unit_of_work(read_only=True) as session:
        tables = [
            pa.Table.from_batches(list(batches), schema=USAGE_SCHEMA)
            for batches in (
                _ledger_batches(session, start, end, customer_id),
                _event_batches(session, start, end, customer_id),
            )
        ]
    totals = aggregate(pa.concat_tables(tables))
    return {metric: qty for (customer, metric), qty in totals.items() if customer == customer_id}
