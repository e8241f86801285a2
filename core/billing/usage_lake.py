"""The usage lake: metered usage copied out of the relational store into Parquet, where DuckDB
sums a month of it in a fraction of a second however many events there are.

The copy is incremental. Both sources only ever gain rows (the LLM ledger and imported usage
events; their quantities never change), so each refresh appends the rows whose id is above the
last one copied, as a new part file. A manifest lists the parts; it is replaced atomically after
a part is written, so a crash in between leaves an unlisted part that the next refresh simply
overwrites. Rows are stored with the key their source has (the organisation for ledger rows, the
billing customer for imported events), so a billing customer created later still gets its usage.

Before a month is billed, the lake is checked against the database: each part records how many
source rows its id range held, and those counts must still match. A row the lake missed (a
transaction that committed below an id already copied) or a deleted one makes the check fail, as
does a lake left over from another database; the lake is then rebuilt from scratch, so invoices
never rest on an incomplete copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing.catalog import METRICS
from core.billing.models import Customer, SyncState, UsageEvent
from core.clock import utcnow
from core.config import get_settings
from core.errors import IntegrityError
from core.llm.models import LLMUsage

LAKE_SCHEMA = pa.schema(
    [
        ("key", pa.int64()),  # organisation id (llm) or billing customer id (events)
        ("metric", pa.string()),
        ("quantity", pa.int64()),
        ("ts", pa.timestamp("us", tz="UTC")),
    ]
)
SOURCES = ("llm", "events")
COST_METRIC = "llm_cost_micros"  # provider cost in micro-USD; for margins, never billed
LAKE_FORMAT = 3
BATCH_ROWS = 200_000
MAX_PARTS = 24  # per source; more are merged into one file
LAKE_ID_KEY = "usage_lake_id"
UsageTotals = dict[tuple[int, str], int]


def lake_dir() -> Path:
    path = get_settings().ensure_home() / "billing" / "usage-lake"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _manifest_path() -> Path:
    return lake_dir() / "manifest.json"


def _load_manifest() -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(_manifest_path().read_text(encoding="utf-8"))
        return data
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_manifest(manifest: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=lake_dir(), suffix=".json.tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(tmp, _manifest_path())


def _lake_id(session: Session) -> str:
    """The id of the lake this database feeds, kept in the database itself: a lake directory
    left over from another (or a re-created) database does not match and is rebuilt."""
    row = session.get(SyncState, LAKE_ID_KEY)
    if row is None:
        row = SyncState(key=LAKE_ID_KEY, value=uuid.uuid4().hex)
        session.add(row)
        session.flush()
    return row.value


def _llm_batch(part: Any) -> Any:
    """Tokens of successful calls (what is billed) and the provider cost of every attempt
    (what the margin report sets against revenue) as lake rows."""
    keys: list[int] = []
    metrics: list[str] = []
    quantities: list[int] = []
    stamps: list[datetime] = []
    for customer, tokens_in, tokens_out, cost, status, at in part:
        if customer is None:  # internal teams' calls: nobody to bill
            continue
        if status == "ok":
            keys += (customer, customer)
            metrics += ("llm_input_tokens", "llm_output_tokens")
            quantities += (tokens_in, tokens_out)
            stamps += (at, at)
        if cost:
            keys.append(customer)
            metrics.append(COST_METRIC)
            quantities.append(cost)
            stamps.append(at)
    return pa.record_batch(
        [
            pa.array(keys, pa.int64()),
            pa.array(metrics),
            pa.array(quantities, pa.int64()),
            pa.array(stamps, LAKE_SCHEMA.field("ts").type),
        ],
        schema=LAKE_SCHEMA,
    )


def _rows(session: Session, source: str, after: int, upto: int) -> Any:
    if source == "llm":
        stmt: Any = select(
            LLMUsage.customer_id,
            LLMUsage.input_tokens,
            LLMUsage.output_tokens,
            LLMUsage.cost_micros,
            LLMUsage.status,
            LLMUsage.ts,
        ).where(LLMUsage.id > after, LLMUsage.id <= upto)
    else:
        stmt = select(
            UsageEvent.customer_id, UsageEvent.metric, UsageEvent.quantity, UsageEvent.ts
        ).where(UsageEvent.id > after, UsageEvent.id <= upto)
    for part in session.execute(stmt.execution_options(yield_per=BATCH_ROWS)).partitions():
        if source == "llm":
            yield len(part), _llm_batch(part)
        else:
            yield (
                len(part),
                pa.record_batch(
                    [
                        pa.array([r[0] for r in part], pa.int64()),
                        pa.array([r[1] for r in part]),
                        pa.array([r[2] for r in part], pa.int64()),
                        pa.array([r[3] for r in part], LAKE_SCHEMA.field("ts").type),
                    ],
                    schema=LAKE_SCHEMA,
                ),
            )


def _max_id(session: Session, source: str) -> int:
    column = LLMUsage.id if source == "llm" else UsageEvent.id
    return int(session.scalar(select(func.max(column))) or 0)


def refresh(session: Session, *, rebuild: bool = False) -> dict[str, Any]:
    """Copy the rows added since the last refresh; returns the manifest."""
    lake_id = _lake_id(session)
    manifest = _load_manifest()
    if rebuild or manifest.get("lake_id") != lake_id or manifest.get("format") != LAKE_FORMAT:
        for part in lake_dir().glob("part-*.parquet"):
            part.unlink()
        manifest = {
            "lake_id": lake_id,
            "format": LAKE_FORMAT,
            "last_id": dict.fromkeys(SOURCES, 0),
            "parts": [],
        }
        _save_manifest(manifest)  # never leave a manifest that lists deleted parts
    for source in SOURCES:
        after, upto = int(manifest["last_id"][source]), _max_id(session, source)
        if upto <= after:
            continue
        name = f"part-{source}-{after + 1:012d}.parquet"
        fd, tmp = tempfile.mkstemp(dir=lake_dir(), suffix=".parquet.tmp")
        os.close(fd)
        rows = 0  # source rows read, so the completeness check compares like with like
        try:
            with pq.ParquetWriter(tmp, LAKE_SCHEMA) as writer:
                for count, batch in _rows(session, source, after, upto):
                    writer.write_batch(batch)
                    rows += count
            os.replace(tmp, lake_dir() / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        manifest["parts"] = [p for p in manifest["parts"] if p["file"] != name]
        manifest["parts"].append(
            {"file": name, "source": source, "from": after + 1, "to": upto, "rows": rows}
        )
        manifest["last_id"][source] = upto
        manifest["refreshed_at"] = utcnow().isoformat()
        _save_manifest(manifest)
        if sum(1 for p in manifest["parts"] if p["source"] == source) > MAX_PARTS:
            _compact(manifest, source)
    return manifest


def _compact(manifest: dict[str, Any], source: str) -> None:
    """Merge a source's parts into one file (frequent refreshes leave many small ones). The new
    manifest lists either the old parts or the merged one, never both, so a crash is harmless."""
    parts = sorted((p for p in manifest["parts"] if p["source"] == source), key=lambda p: p["from"])
    name = f"part-{source}-{parts[0]['from']:012d}-{parts[-1]['to']:012d}.parquet"
    fd, tmp = tempfile.mkstemp(dir=lake_dir(), suffix=".parquet.tmp")
    os.close(fd)
    con = duckdb.connect()
    try:
        merged = con.read_parquet([str(lake_dir() / p["file"]) for p in parts])
        merged.write_parquet(tmp)
        os.replace(tmp, lake_dir() / name)
    finally:
        con.close()
        Path(tmp).unlink(missing_ok=True)
    manifest["parts"] = [p for p in manifest["parts"] if p["source"] != source] + [
        {
            "file": name,
            "source": source,
            "from": parts[0]["from"],
            "to": parts[-1]["to"],
            "rows": sum(int(p["rows"]) for p in parts),
        }
    ]
    _save_manifest(manifest)
    for part in parts:
        if part["file"] != name:
            (lake_dir() / part["file"]).unlink(missing_ok=True)


def _parts(manifest: dict[str, Any], source: str) -> list[str]:
    return [str(lake_dir() / p["file"]) for p in manifest["parts"] if p["source"] == source]


def sum_parts(
    files: list[str], start: datetime, end: datetime, metrics: tuple[str, ...] | None = None
) -> list[tuple[int, str, int]]:
    """(key, metric, quantity) summed by DuckDB over Parquet files, for ts in [start, end),
    optionally only for some metrics."""
    if not files:
        return []
    con = duckdb.connect()
    try:
        con.read_parquet(files).create_view("usage")
        where = "ts >= ? AND ts < ?"
        params: list[Any] = [start, end]
        if metrics:
            where += f" AND metric IN ({', '.join('?' for _ in metrics)})"
            params += list(metrics)
        rows = con.execute(
            "SELECT key, metric, CAST(SUM(quantity) AS BIGINT) FROM usage "  # noqa: S608 - placeholders only
            f"WHERE {where} GROUP BY key, metric",
            params,
        ).fetchall()
    finally:
        con.close()
    return [(int(k), str(m), int(q)) for k, m, q in rows]


def _source_rows(session: Session, source: str, after: int, upto: int) -> int:
    model = LLMUsage if source == "llm" else UsageEvent
    return int(
        session.scalar(
            select(func.count()).select_from(model).where(model.id > after, model.id <= upto)
        )
        or 0
    )


def is_complete(session: Session, manifest: dict[str, Any]) -> bool:
    """Whether the database still holds exactly the rows the parts were copied from: a row
    that committed below the copied ids after the copy, or a deleted one, changes the count.
    A count over the primary key is cheap even at ten million rows, unlike re-summing them."""
    for source in SOURCES:
        copied = sum(int(p.get("rows", -1)) for p in manifest["parts"] if p["source"] == source)
        if copied != _source_rows(session, source, 0, int(manifest["last_id"][source])):
            return False
    return True


def verified(session: Session) -> dict[str, Any]:
    """The lake brought up to date and checked complete (rebuilt once if it is not)."""
    for attempt in range(2):
        manifest = refresh(session, rebuild=attempt == 1)
        if is_complete(session, manifest):
            return manifest
    raise IntegrityError(
        "The usage lake does not match the database even after a rebuild; check "
        f"{lake_dir()} is writable and not shared with another database."
    )


def period_usage(session: Session, start: datetime, end: datetime) -> UsageTotals:
    """Usage per (billing customer, metric) in [start, end), from a verified lake."""
    manifest = verified(session)
    billed = tuple(METRICS)
    llm = sum_parts(_parts(manifest, "llm"), start, end, billed)
    events = sum_parts(_parts(manifest, "events"), start, end, billed)
    customers = {
        org: cid for org, cid in session.execute(select(Customer.organisation_id, Customer.id))
    }
    totals: UsageTotals = defaultdict(int)
    for org, metric, quantity in llm:
        if org in customers:
            totals[(customers[org], metric)] += quantity
    for customer, metric, quantity in events:
        totals[(customer, metric)] += quantity
    return dict(totals)


def llm_cost_by_organisation(session: Session, start: datetime, end: datetime) -> dict[int, int]:
    """Provider cost (micro-USD) per organisation in [start, end), from the lake."""
    manifest = verified(session)
    rows = sum_parts(_parts(manifest, "llm"), start, end, (COST_METRIC,))
    return {key: quantity for key, _, quantity in rows}


def drop() -> None:
    """Remove the lake (it is a cache of the database and is rebuilt on the next refresh)."""
    shutil.rmtree(lake_dir(), ignore_errors=True)
