"""Home-page numbers for compliance: open and overdue data-subject requests, consents waiting for
review, and when retention last ran."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.platform.home import Metric, home_card
from core.privacy.consent_review import queue_in
from core.privacy.models import DataRequest, RetentionRun


@home_card(Role.COMPLIANCE_OFFICER, Role.ADMIN, title="Privacy")
def privacy(session: Session, actor: Actor) -> list[Metric]:
    now = utcnow()
    open_requests = DataRequest.closed_at.is_(None)
    total = session.scalar(select(func.count()).where(open_requests)) or 0
    overdue = (
        session.scalar(select(func.count()).where(open_requests, DataRequest.due_at < now)) or 0
    )
    review = len(queue_in(session, now))
    last = session.scalar(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(1))
    return [
        Metric(
            "Open requests", f"{total:,}", f"{overdue:,} overdue" if overdue else "none overdue"
        ),
        Metric("Consents to review", f"{review:,}", "stale, unproven, old notice or under age"),
        Metric(
            "Retention",
            last.status if last else "never run",
            f"last run {last.started_at:%Y-%m-%d}" if last else "see the Retention page",
        ),
    ]
