"""Home-page numbers from the LLM gateway: traffic, failures, spend over the last 24 hours."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.llm.models import LLMUsage
from core.money import format_usd
from core.platform.home import Metric, home_card


def _latest_hint(session: Session) -> str:
    """An empty day says when the latest traffic was, so a quiet tenant (or a demo seeded weeks
    ago) does not read as broken."""
    latest = session.scalar(select(func.max(LLMUsage.ts)))
    if latest is None:
        return "no LLM traffic yet"
    return f"none in the last 24 hours; the latest on {latest:%Y-%m-%d} (LLM router page)"


@home_card(Role.ML_ENGINEER, Role.ADMIN, Role.FINANCE, title="LLM traffic, last 24 hours")
def llm_traffic(session: Session, actor: Actor) -> list[Metric]:
    since = utcnow() - timedelta(hours=24)
    rows = dict(
        session.execute(
            select(LLMUsage.status, func.count())
            .where(LLMUsage.ts >= since)
            .group_by(LLMUsage.status)
        ).all()
    )
    spend = (
        session.scalar(
            select(func.coalesce(func.sum(LLMUsage.cost_micros), 0)).where(LLMUsage.ts >= since)
        )
        or 0
    )
    requests = (
        session.scalar(
            select(func.count(func.distinct(LLMUsage.request_id))).where(LLMUsage.ts >= since)
        )
        or 0
    )
    failed = sum(n for status, n in rows.items() if status != "ok")
    return [
        Metric("Requests", f"{requests:,}", _latest_hint(session) if requests == 0 else ""),
        Metric(
            "Failed attempts",
            f"{failed:,}",
            "timeouts, outages, rate limits and refusals; most were answered by a fallback",
        ),
        Metric("Spend", format_usd(int(spend))),
    ]
