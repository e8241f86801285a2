"""Traffic figures for the Router page, computed from the usage ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import get_engine
from core.llm.ledger import LEDGER
from core.llm.models import LLMUsage

MAX_ROWS = 500_000
_COLUMNS = [
    LLMUsage.ts,
    LLMUsage.request_id,
    LLMUsage.team,
    LLMUsage.customer_id,
    LLMUsage.deployment,
    LLMUsage.status,
    LLMUsage.cache_hit,
    LLMUsage.latency_ms,
    LLMUsage.cost_micros,
    LLMUsage.input_tokens,
    LLMUsage.output_tokens,
]


@dataclass(frozen=True)
class Traffic:
    requests: int
    failovers: int  # requests whose first attempt failed and a later deployment answered
    failed: int  # requests nobody could answer (or refused by budget)
    cache_hits: int
    cost_micros: int
    per_deployment: pd.DataFrame
    per_hour: pd.DataFrame
    spend_by_team: pd.DataFrame
    spend_by_customer: pd.DataFrame


def _frame(since: datetime, until: datetime | None) -> pd.DataFrame:
    stmt = select(*_COLUMNS).where(LLMUsage.ts >= since)
    if until is not None:
        stmt = stmt.where(LLMUsage.ts < until)
    stmt = stmt.order_by(LLMUsage.id).limit(MAX_ROWS)
    with get_engine().connect() as connection:
        frame = pd.read_sql(stmt, connection)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="mixed")
    return frame


def latest_traffic_at(actor: Actor) -> datetime | None:
    """When the newest ledger row was written (None: no traffic ever), so a page whose period
    holds none can offer the latest period that has some."""
    require(actor, Permission.LLM_SPEND_READ, action="llm.router.traffic")
    LEDGER.flush(5.0)
    with get_engine().connect() as connection:
        # max() keeps the column's type, so SQLite's naive text comes back as UTC too
        return connection.scalar(select(func.max(LLMUsage.ts)))


def traffic(actor: Actor, since: datetime, until: datetime | None = None) -> Traffic:
    require(actor, Permission.LLM_SPEND_READ, action="llm.router.traffic")
    LEDGER.flush(5.0)
    rows = _frame(since, until)
    if rows.empty:
        empty = pd.DataFrame()
        return Traffic(0, 0, 0, 0, 0, empty, empty, empty, empty)
    # Vectorised: a Python lambda per group took tens of seconds on a month of demo traffic.
    rows["ok"] = rows["status"] == "ok"
    rows["error"] = ~rows["ok"]
    rows["hit"] = rows["cache_hit"] != ""
    per_request = rows.groupby("request_id", sort=False)["ok"]  # rows are in ledger order
    by_request = pd.DataFrame(
        {
            "attempts": per_request.size(),
            "served": per_request.any(),
            "first_failed": ~per_request.first(),
        }
    )
    served = rows[rows["ok"]]
    attempts = rows[rows["deployment"] != "-"]
    by_deployment = attempts.groupby("deployment")
    per_deployment = by_deployment.agg(
        calls=("status", "size"),
        ok=("ok", "sum"),
        errors=("error", "sum"),
        cache_hits=("hit", "sum"),
        input_tokens=("input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"),
        cost_micros=("cost_micros", "sum"),
    )
    latency = by_deployment["latency_ms"].quantile([0.5, 0.95]).unstack()
    per_deployment.insert(4, "p50_ms", latency[0.5].astype(float))
    per_deployment.insert(5, "p95_ms", latency[0.95].astype(float))
    per_deployment = per_deployment.reset_index()
    per_deployment["error_rate"] = per_deployment["errors"] / per_deployment["calls"]
    per_hour = (
        attempts.assign(hour=attempts["ts"].dt.floor("h"))
        .groupby(["hour", "deployment", "status"])
        .size()
        .rename("calls")
        .reset_index()
    )
    spend_by_team = (
        served.groupby("team")["cost_micros"].sum().sort_values(ascending=False).reset_index()
    )
    spend_by_customer = (
        served.dropna(subset=["customer_id"])
        .groupby("customer_id")["cost_micros"]
        .sum()
        .sort_values(ascending=False)
        .head(20)
        .reset_index()
    )
    return Traffic(
        requests=len(by_request),
        failovers=int(
            (by_request["served"] & by_request["first_failed"] & (by_request["attempts"] > 1)).sum()
        ),
        failed=int((~by_request["served"]).sum()),
        cache_hits=int(served["hit"].sum()),
        cost_micros=int(served["cost_micros"].sum()),
        per_deployment=per_deployment,
        per_hour=per_hour,
        spend_by_team=spend_by_team,
        spend_by_customer=spend_by_customer,
    )
