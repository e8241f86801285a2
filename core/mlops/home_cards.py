"""Home-page numbers for ML engineers: open drift alerts, monitors, running experiments and the
last champion change. Read from the console's own tables only, so the home page never waits on
the MLflow store."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.roles import Role
from core.mlops.models import Alert, AliasEvent, Experiment, Monitor
from core.platform.home import Metric, home_card


@home_card(Role.ML_ENGINEER, Role.ADMIN, title="Models")
def models(session: Session, actor: Actor) -> list[Metric]:
    open_alerts = session.scalar(
        select(func.count()).select_from(Alert).where(Alert.acknowledged_at.is_(None))
    )
    monitors = session.scalar(
        select(func.count()).select_from(Monitor).where(Monitor.enabled.is_(True))
    )
    running = session.scalar(
        select(func.count()).select_from(Experiment).where(Experiment.status == "running")
    )
    last = session.scalars(
        select(AliasEvent)
        .where(AliasEvent.alias == "champion")
        .order_by(AliasEvent.ts.desc(), AliasEvent.id.desc())
        .limit(1)
    ).first()
    champion = (
        Metric(
            "Last champion change",
            f"{last.model_name} v{last.version}" if last.version else f"{last.model_name}: none",
            f"{last.action} on {last.ts:%Y-%m-%d} by {last.actor}: {last.reason}",
        )
        if last
        else Metric("Last champion change", "none", "no model has a champion yet")
    )
    return [
        Metric("Open drift alerts", f"{open_alerts or 0:,}", "alerts nobody has acknowledged"),
        Metric("Active monitors", f"{monitors or 0:,}"),
        Metric("Running experiments", f"{running or 0:,}"),
        champion,
    ]
