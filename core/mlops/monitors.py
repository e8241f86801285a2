"""Drift monitors: what to compare (a reference window of a model's inference log, or of the
knowledge base's questions), in which windows, with which per-feature tests and thresholds, and
where to send alerts. Running them is `core.mlops.monitor_run`; reading their results for charts
is `core.mlops.monitor_views`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.mlops.models import Alert, DriftResult, Monitor
from core.mlops.tracking import Tracking
from core.text import clean_text

KINDS = ("model", "embeddings")
WINDOWS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(weeks=1)}
TASKS = ("regression", "classification")
# the primary performance metric per task, and whether a higher value is worse
PRIMARY_METRIC = {"regression": ("mae", True), "classification": ("f1", False)}
EMBEDDING_COLUMN = "query embedding"
ALL_COLLECTIONS = "*"


@dataclass(frozen=True)
class MonitorView:
    id: int
    name: str
    kind: str
    target: str
    reference_start: datetime
    reference_end: datetime
    window: str
    features: list[str]
    thresholds: dict[str, float]
    tests: dict[str, str]
    drift_share: float
    task: str
    performance_threshold: float | None
    webhook_url: str
    enabled: bool
    created_by: str
    windows_computed: int
    last_window: datetime | None
    open_alerts: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.target})"


def view(session: Session, row: Monitor) -> MonitorView:
    computed, last = session.execute(
        select(func.count(), func.max(DriftResult.window_start)).where(
            DriftResult.monitor_id == row.id
        )
    ).one()
    open_alerts = session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(Alert.monitor_id == row.id, Alert.acknowledged_at.is_(None))
    )
    return MonitorView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        target=row.target,
        reference_start=row.reference_start,
        reference_end=row.reference_end,
        window=row.window,
        features=json.loads(row.features_json),
        thresholds=json.loads(row.thresholds_json),
        tests=json.loads(row.tests_json),
        drift_share=row.drift_share,
        task=row.task,
        performance_threshold=row.performance_threshold,
        webhook_url=row.webhook_url,
        enabled=row.enabled,
        created_by=row.created_by,
        windows_computed=int(computed),
        last_window=last,
        open_alerts=int(open_alerts or 0),
    )


def _choice(value: str, valid: Sequence[str], what: str) -> str:
    if value not in valid:
        raise ValidationError(f"Unknown {what} {value[:40]!r}. Valid: {', '.join(valid)}.")
    return value


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ValidationError(f"The {what} needs a time zone.")
    return value.astimezone(UTC)


def check_webhook(url: str) -> str:
    url = clean_text(url, 500)
    if not url:
        return ""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(
            "The alert webhook must be an http(s) URL, e.g. https://hooks.example.com/omni."
        )
    return url


def check_rules(
    features: Sequence[str],
    thresholds: Mapping[str, float] | None,
    tests: Mapping[str, str] | None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Per-feature thresholds and tests, checked against the features (and "prediction")."""
    from core.mlops.drift import TESTS
    from core.mlops.drift.report import check_threshold

    allowed = {*features, "prediction"}
    clean_thresholds: dict[str, float] = {}
    for column, value in (thresholds or {}).items():
        if column not in allowed:
            raise ValidationError(
                f"Threshold for {column!r}, which the monitor does not watch. "
                f"Watched: {', '.join(sorted(allowed))}."
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"The threshold for {column} is not a number.") from None
        if not 0 < number < 100:
            raise ValidationError(f"The threshold for {column} must be above 0 (and sensible).")
        clean_thresholds[column] = number
    clean_tests: dict[str, str] = {}
    for column, test in (tests or {}).items():
        if column not in allowed:
            raise ValidationError(
                f"Test for {column!r}, which the monitor does not watch. "
                f"Watched: {', '.join(sorted(allowed))}."
            )
        clean_tests[column] = _choice(str(test), TESTS, f"test for {column}")
    for column, test in clean_tests.items():  # a named test fixes the threshold's scale
        if column in clean_thresholds:
            check_threshold(test, clean_thresholds[column])
    return clean_thresholds, clean_tests


def signature_columns(tracking: Tracking, name: str) -> tuple[str, list[str] | None]:
    """(version, input columns) of the model's champion (else newest) version; columns None
    when that version was logged without a signature. NotFound for an unregistered model."""
    from core.mlops import registry

    versions = registry.list_versions(tracking, name)
    if not versions:
        raise NotFound(f"{name} has no versions yet.")
    chosen = next((v for v in versions if "champion" in v.aliases), versions[0])
    columns = registry.model_signature_columns(tracking, name, chosen.version)
    return chosen.version, (list(columns) if columns else None)


def model_features(tracking: Tracking, name: str) -> list[str]:
    """The input columns of the model's champion (else newest) version, from its signature."""
    version, columns = signature_columns(tracking, name)
    if not columns:
        raise ValidationError(
            f"{name} version {version} has no signature, so the monitor cannot know its "
            "features: log the model with a signature (mlflow.models.infer_signature) or list "
            "the features to watch."
        )
    return columns


def _watched(tracking: Tracking | None, name: str, features: Sequence[str]) -> list[str]:
    """The features a model monitor watches: those named (checked against the signature when
    the model has one), else the signature's. A model outside the registry (its predictions
    logged by other means) needs its features named."""
    from core.mlops.tracking import configure_mlflow

    named = [clean_text(f, 100) for f in features if clean_text(f, 100)]
    tracking = tracking or configure_mlflow()
    try:
        version, known = signature_columns(tracking, name)
    except NotFound:
        if named:
            return named
        raise
    if not named:
        return model_features(tracking, name)
    unknown = [f for f in named if known is not None and f not in known]
    if unknown:
        raise ValidationError(
            f"{name} v{version} has no input {', '.join(unknown)}; its inputs are "
            f"{', '.join(known or [])}."
        )
    return named


def create_monitor(
    actor: Actor,
    *,
    name: str,
    target: str,
    reference_start: datetime,
    reference_end: datetime,
    kind: str = "model",
    window: str = "week",
    features: Sequence[str] = (),
    thresholds: Mapping[str, float] | None = None,
    tests: Mapping[str, str] | None = None,
    drift_share: float = 0.5,
    task: str = "regression",
    performance_threshold: float | None = None,
    webhook_url: str = "",
    tracking: Tracking | None = None,
) -> MonitorView:
    require(actor, Permission.MLOPS_MONITOR, action="mlops.monitor.create", target=target)
    name = clean_text(name, 120)
    if len(name) < 3:
        raise ValidationError("Give the monitor a name of at least 3 characters.")
    kind = _choice(kind, KINDS, "monitor kind")
    window = _choice(window, tuple(WINDOWS), "window")
    task = _choice(task, TASKS, "task")
    start, end = _utc(reference_start, "reference start"), _utc(reference_end, "reference end")
    if end <= start:
        raise ValidationError("The reference window must end after it starts.")
    if not 0 < drift_share <= 1:
        raise ValidationError("The drifted-feature share that raises an alert must be in (0, 1].")
    if performance_threshold is not None and performance_threshold <= 0:
        raise ValidationError("The performance threshold must be positive.")
    watched = _watched(tracking, target, features) if kind == "model" else [EMBEDDING_COLUMN]
    clean_thresholds, clean_tests = check_rules(watched, thresholds, tests)
    webhook = check_webhook(webhook_url)
    with unit_of_work() as session:
        if session.scalar(select(Monitor.id).where(Monitor.name == name)) is not None:
            raise Conflict(f"A monitor named {name!r} exists already.")
        row = Monitor(
            name=name,
            kind=kind,
            target=clean_text(target, 200),
            reference_start=start,
            reference_end=end,
            window=window,
            features_json=json.dumps(watched),
            thresholds_json=json.dumps(clean_thresholds),
            tests_json=json.dumps(clean_tests),
            drift_share=drift_share,
            task=task,
            performance_threshold=performance_threshold,
            webhook_url=webhook,
            created_by=actor.username,
        )
        session.add(row)
        session.flush()
        record(
            session,
            actor,
            "mlops.monitor.create",
            f"monitor:{row.id}",
            {"name": name, "kind": kind, "target": row.target, "features": len(watched)},
        )
        return view(session, row)


_UNSET: Any = object()


def update_monitor(
    actor: Actor,
    monitor_id: int,
    *,
    thresholds: Mapping[str, float] | None = None,
    tests: Mapping[str, str] | None = None,
    drift_share: float | None = None,
    performance_threshold: float | None = _UNSET,
    webhook_url: str | None = None,
    enabled: bool | None = None,
) -> MonitorView:
    """Change a monitor's rules or delivery. When a rule really changed (thresholds, tests, the
    drifted share, the performance limit), stored window results are dropped (they were judged
    by the old rules) and recomputed on the next run; alerts already raised are kept."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.monitor.update", target=str(monitor_id))
    with unit_of_work() as session:
        row = get_row(session, monitor_id)
        features = json.loads(row.features_json)
        changes: dict[str, Any] = {}
        if thresholds is not None or tests is not None:
            new_thresholds, new_tests = check_rules(
                features,
                json.loads(row.thresholds_json) if thresholds is None else thresholds,
                json.loads(row.tests_json) if tests is None else tests,
            )
            if new_thresholds != json.loads(row.thresholds_json):
                row.thresholds_json = json.dumps(new_thresholds)
                changes["thresholds"] = new_thresholds
            if new_tests != json.loads(row.tests_json):
                row.tests_json = json.dumps(new_tests)
                changes["tests"] = new_tests
        if drift_share is not None and drift_share != row.drift_share:
            if not 0 < drift_share <= 1:
                raise ValidationError("The drifted-feature share must be in (0, 1].")
            row.drift_share = changes["drift_share"] = drift_share
        if (
            performance_threshold is not _UNSET
            and performance_threshold != row.performance_threshold
        ):
            if performance_threshold is not None and performance_threshold <= 0:
                raise ValidationError("The performance threshold must be positive.")
            row.performance_threshold = changes["performance_threshold"] = performance_threshold
        if webhook_url is not None and check_webhook(webhook_url) != row.webhook_url:
            row.webhook_url = check_webhook(webhook_url)
            changes["webhook"] = bool(row.webhook_url)
        if enabled is not None and enabled != row.enabled:
            row.enabled = changes["enabled"] = enabled
        # only a change of the rules makes the stored verdicts stale
        rules_changed = bool(
            {"thresholds", "tests", "drift_share", "performance_threshold"} & set(changes)
        )
        if rules_changed:
            for result in session.scalars(
                select(DriftResult).where(DriftResult.monitor_id == row.id)
            ):
                session.delete(result)
        if not changes:
            return view(session, row)
        record(session, actor, "mlops.monitor.update", f"monitor:{row.id}", changes)
        session.flush()
        return view(session, row)


def get_row(session: Session, monitor_id: int, *, lock: bool = False) -> Monitor:
    row = session.get(Monitor, monitor_id, with_for_update=lock)
    if row is None:
        raise NotFound(f"No monitor with id {monitor_id}.")
    return row


def list_monitors(actor: Actor) -> list[MonitorView]:
    require(actor, Permission.MLOPS_READ, action="mlops.monitor.list")
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(select(Monitor).order_by(Monitor.name)).all()
        return [view(session, r) for r in rows]


def get_monitor(actor: Actor, monitor_id: int) -> MonitorView:
    require(actor, Permission.MLOPS_READ, action="mlops.monitor.read", target=str(monitor_id))
    with unit_of_work(read_only=True) as session:
        return view(session, get_row(session, monitor_id))
