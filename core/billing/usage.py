"""Metered usage: LLM tokens come from the LLM usage ledger, other metrics from CSV imports.
Invoice runs read usage through the Parquet usage lake (`core.billing.usage_lake`); one
customer's usage for a page is read straight from the database."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.catalog import LEDGER_METRICS, METRICS
from core.billing.models import Customer, UsageEvent
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import NotFound, ValidationError
from core.llm.models import LLMUsage

CSV_COLUMNS = ("event_id", "customer_id", "metric", "quantity", "timestamp")
MAX_IMPORT_BYTES = 50 * 1024 * 1024
MAX_QUANTITY = 10**12


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


def customer_usage(
    actor: Actor, customer_id: int, start: datetime, end: datetime
) -> dict[str, int]:
    """One customer's usage per metric in [start, end), for the customer page: a few SQL sums
    (the lake and DuckDB pay off for all customers at once, not for one)."""
    require(actor, Permission.BILLING_READ, action="billing.usage.read")
    with unit_of_work(read_only=True) as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound(f"No billing customer with id {customer_id}.")
        tokens = session.execute(
            select(
                func.coalesce(func.sum(LLMUsage.input_tokens), 0),
                func.coalesce(func.sum(LLMUsage.output_tokens), 0),
            ).where(
                LLMUsage.customer_id == customer.organisation_id,
                LLMUsage.ts >= start,
                LLMUsage.ts < end,
                LLMUsage.status == "ok",
            )
        ).one()
        totals = {"llm_input_tokens": int(tokens[0]), "llm_output_tokens": int(tokens[1])}
        for metric, quantity in session.execute(
            select(UsageEvent.metric, func.sum(UsageEvent.quantity))
            .where(
                UsageEvent.customer_id == customer_id,
                UsageEvent.ts >= start,
                UsageEvent.ts < end,
            )
            .group_by(UsageEvent.metric)
        ):
            totals[metric] = int(quantity)
    return {metric: quantity for metric, quantity in totals.items() if quantity}
