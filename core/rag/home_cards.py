"""Home-page numbers from the knowledge base: what it holds, and how its answers fare."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.platform.home import Metric, home_card
from core.rag.collections import may_access
from core.rag.models import Collection, QueryLog


def _latest_hint(session: Session, open_ids: list[int]) -> str:
    latest = session.scalar(
        select(func.max(QueryLog.ts)).where(QueryLog.collection_id.in_(open_ids))
    )
    if latest is None:
        return "no questions asked yet"
    return f"none in the last 7 days; the latest on {latest:%Y-%m-%d}"


@home_card(
    Role.COMPLIANCE_OFFICER, Role.ML_ENGINEER, Role.ADMIN, title="Knowledge base, last 7 days"
)
def knowledge_base(session: Session, actor: Actor) -> list[Metric]:
    open_ids = [c.id for c in session.scalars(select(Collection)) if may_access(actor, c)]
    since = utcnow() - timedelta(days=7)
    base = select(QueryLog.status, QueryLog.rating, func.count()).where(
        QueryLog.ts >= since, QueryLog.collection_id.in_(open_ids)
    )
    rows = session.execute(base.group_by(QueryLog.status, QueryLog.rating)).all()
    asked = sum(n for _, _, n in rows)
    not_found = sum(n for status, _, n in rows if status == "not_found")
    rated = sum(n for _, rating, n in rows if rating is not None)
    helpful = sum(n for _, rating, n in rows if rating == 1)
    return [
        Metric("Collections", f"{len(open_ids):,}", "open to your role"),
        Metric(
            "Questions",
            f"{asked:,}",
            f"{not_found:,} found nothing relevant enough"
            if asked
            else _latest_hint(session, open_ids),
        ),
        Metric(
            "Rated helpful",
            f"{helpful / rated:.0%}" if rated else "n/a",
            f"of {rated:,} rated answers" if rated else "no answers rated yet",
        ),
    ]
