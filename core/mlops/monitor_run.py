"""Running a drift monitor: every complete current window after the reference is compared with
it, once; results are stored per window, alerts raised once per (monitor, kind, window) and sent
to the monitor's webhook when it has one.

Windows are consecutive days or weeks starting at the reference's end, so nothing between the
two is skipped; a window still open at `until` (default now) waits for the next run. Windows
without data are skipped and reported, never alarmed on. The webhook is called after the
results are committed, so a slow or failing receiver neither holds a transaction nor loses
results; its outcome is stored on the alert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import DomainError, ValidationError
from core.mlops import inference
from core.mlops.models import Alert, DriftResult, Monitor
from core.mlops.monitors import EMBEDDING_COLUMN, PRIMARY_METRIC, WINDOWS, get_row

MIN_WINDOW_ROWS = 10
MAX_QUESTIONS = 1_000
WEBHOOK_TIMEOUT_S = 5.0


@dataclass
class RunReport:
    monitor: str
    windows: int = 0
    skipped: list[str] = field(default_factory=list)
    alerts: list[int] = field(default_factory=list)  # raised by this run
    updated: int = 0  # windows added to alerts that were still open
    failed: str = ""  # why the whole run failed (run_enabled only)
    delivered: int = 0
    delivery_failures: int = 0

    @property
    def summary(self) -> str:
        if self.failed:
            return f"{self.monitor}: failed: {self.failed}"
        text = f"{self.monitor}: {self.windows} windows checked, {len(self.alerts)} new alerts"
        if self.updated:
            text += f", {self.updated} windows added to open alerts"
        if self.skipped:
            text += f", {len(self.skipped)} windows skipped"
        if self.delivery_failures:
            text += f", {self.delivery_failures} webhook deliveries failed"
        return text


def windows(
    start: datetime, size: timedelta, until: datetime
) -> Iterator[tuple[datetime, datetime]]:
    cursor = start
    while cursor + size <= until:
        yield cursor, cursor + size
        cursor += size


def performance(frame: pd.DataFrame, task: str) -> dict[str, float]:
    """Error metrics on the rows whose actual is known (empty when none is)."""
    labelled = frame.dropna(subset=["actual"])
    if labelled.empty:
        return {}
    predicted = labelled["prediction"].to_numpy(dtype=float)
    actual = labelled["actual"].to_numpy(dtype=float)
    if task == "regression":
        errors = predicted - actual
        return {
            "mae": float(np.mean(np.abs(errors))),
            "rmse": float(math.sqrt(np.mean(errors**2))),
            "labelled": float(len(labelled)),
        }
    from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]

    return {
        "accuracy": float(accuracy_score(actual, predicted)),
        "f1": float(f1_score(actual, predicted, average="macro", zero_division=0)),
        "labelled": float(len(labelled)),
    }


def _reason(exc: Exception) -> str:
    text = exc.message if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _missing_columns(frame: pd.DataFrame, features: list[str]) -> list[str]:
    return [c for c in features if c not in frame or frame[c].isna().all()]


def _model_window(
    monitor: Monitor, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]]]:
    """Stored fields of one window's result, and the alerts it raises (kind, message, details)."""
    from core.mlops.drift import column_drift, drift_report

    features = json.loads(monitor.features_json)
    thresholds = json.loads(monitor.thresholds_json)
    tests = json.loads(monitor.tests_json)
    absent = sorted(
        set(_missing_columns(reference, features)) | set(_missing_columns(current, features))
    )
    watched = [f for f in features if f not in absent]
    columns: list[dict[str, Any]] = []
    share, dataset_drift, drifted = 0.0, False, []
    if watched:
        report = drift_report(
            reference,
            current,
            columns=watched,
            tests={k: v for k, v in tests.items() if k in watched},
            thresholds={k: v for k, v in thresholds.items() if k in watched},
            share_threshold=monitor.drift_share,
        )
        columns = [c.to_dict() for c in report.columns]
        share, dataset_drift, drifted = (
            report.drift_share,
            report.dataset_drift,
            report.drifted_columns,
        )
    for column in absent:
        where = "reference" if column in _missing_columns(reference, features) else "current"
        columns.append(
            {"column": column, "missing": True, "note": f"missing in the {where} window"}
        )
    kind = "categorical" if monitor.task == "classification" else "numeric"
    prediction = column_drift(
        reference["prediction"],
        current["prediction"],
        kind=kind,
        test=tests.get("prediction"),
        threshold=thresholds.get("prediction"),
        column="prediction",
    )
    metrics = performance(current, monitor.task)
    reference_metrics = performance(reference, monitor.task)
    fields = {
        "columns_json": json.dumps(columns),
        "drift_share": share,
        "dataset_drift": dataset_drift,
        "prediction_json": json.dumps(prediction.to_dict()),
        "prediction_drift": prediction.drifted,
        "labelled_rows": int(metrics.get("labelled", 0)),
        "performance_json": json.dumps(
            {**metrics, **{f"reference_{k}": v for k, v in reference_metrics.items()}}
        ),
    }
    alerts: list[tuple[str, str, dict[str, Any]]] = []
    if dataset_drift:
        alerts.append(
            (
                "data_drift",
                f"{len(drifted)} of {len(watched)} features drifted ({share:.0%} >= "
                f"{monitor.drift_share:.0%}): {', '.join(drifted[:6])}",
                {"features": drifted, "share": share},
            )
        )
    if prediction.drifted:
        alerts.append(
            (
                "prediction_drift",
                f"Predictions drifted ({prediction.test} {prediction.score:.3g}, "
                f"threshold {prediction.threshold:.3g})",
                prediction.to_dict(),
            )
        )
    metric, higher_is_worse = PRIMARY_METRIC[monitor.task]
    value, limit = metrics.get(metric), monitor.performance_threshold
    if (
        value is not None
        and limit is not None
        and (value > limit if higher_is_worse else value < limit)
    ):
        alerts.append(
            (
                "performance",
                f"{metric.upper()} {value:.3g} is {'above' if higher_is_worse else 'below'} the "
                f"limit {limit:.3g} (reference {reference_metrics.get(metric, float('nan')):.3g})",
                {"metric": metric, "value": value, "limit": limit},
            )
        )
    return fields, alerts


def _collection_filter(session: Session, target: str) -> Any:
    from core.mlops.monitors import ALL_COLLECTIONS
    from core.rag.models import Collection, QueryLog

    if target == ALL_COLLECTIONS:
        return None
    collection_id = session.scalar(select(Collection.id).where(Collection.name == target))
    if collection_id is None:
        raise ValidationError(f"No knowledge-base collection named {target!r}.")
    return QueryLog.collection_id == collection_id


def _questions(session: Session, target: str, start: datetime, end: datetime) -> list[str]:
    from core.rag.models import QueryLog

    query = select(QueryLog.question).where(QueryLog.ts >= start, QueryLog.ts < end)
    condition = _collection_filter(session, target)
    if condition is not None:
        query = query.where(condition)
    # the test subsamples to 1,000 a side anyway: embedding more would only cost time
    latest = query.order_by(QueryLog.ts.desc()).limit(MAX_QUESTIONS)
    return [q for q in session.scalars(latest) if q.strip()]


def _embed(texts: list[str]) -> np.ndarray:
    from core.rag.embedders import MINILM, embedder_for

    return np.asarray(embedder_for(MINILM).embed(texts), dtype=np.float32)


def run_monitor(
    actor: Actor,
    monitor_id: int,
    *,
    until: datetime | None = None,
    recompute: bool = False,
) -> RunReport:
    """Check every complete window not checked yet (all of them with `recompute`)."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.monitor.run", target=str(monitor_id))
    with unit_of_work() as session:
        # one run per monitor at a time: a second one (cron and "Run now") waits here, then
        # finds the windows done (PostgreSQL; SQLite already serialises writers)
        monitor = get_row(session, monitor_id, lock=True)
        report = check_windows(session, monitor, until=until, recompute=recompute)
        deliveries = undelivered(session, monitor)
        record(
            session,
            actor,
            "mlops.monitor.run",
            f"monitor:{monitor.id}",
            {
                "windows": report.windows,
                "alerts": len(report.alerts),
                "skipped": len(report.skipped),
            },
        )
    for alert_id in deliveries:
        if deliver(alert_id):
            report.delivered += 1
        else:
            report.delivery_failures += 1
    return report


def check_windows(
    session: Session, monitor: Monitor, *, until: datetime | None = None, recompute: bool = False
) -> RunReport:
    """Compare every complete window not compared yet, within the caller's transaction (the
    service above checks permissions; the demo seeder calls this directly)."""
    until = (until or utcnow()).astimezone(UTC)
    report = RunReport(monitor.name)
    existing = list(
        session.scalars(select(DriftResult).where(DriftResult.monitor_id == monitor.id))
    )
    if recompute:
        for row in existing:
            session.delete(row)
        session.flush()
        existing = []
    done = {row.window_start for row in existing}
    size = WINDOWS[monitor.window]
    # no window beyond the last data: a historical log would otherwise yield years of empties
    last = _last_data(session, monitor)
    until = min(until, last + size) if last is not None else monitor.reference_end
    pending = [w for w in windows(monitor.reference_end, size, until) if w[0] not in done]
    if not pending:
        return report
    if monitor.kind == "model":
        _run_model(session, monitor, pending, report)
    else:
        _run_embeddings(session, monitor, pending, report)
    session.flush()
    return report


def _last_data(session: Session, monitor: Monitor) -> datetime | None:
    if monitor.kind == "model":
        return inference.summary(session, monitor.target).last
    from sqlalchemy import func

    from core.rag.models import QueryLog

    return session.scalar(select(func.max(QueryLog.ts)))


def _reference_error(monitor: Monitor, what: str) -> ValidationError:
    return ValidationError(
        f"The reference window {monitor.reference_start:%Y-%m-%d}.."
        f"{monitor.reference_end:%Y-%m-%d} of {monitor.target} holds {what}: "
        "choose a reference window with data."
    )


def _run_model(
    session: Session, monitor: Monitor, pending: list[tuple[datetime, datetime]], report: RunReport
) -> None:
    features = json.loads(monitor.features_json)
    reference = inference.window(
        session, monitor.target, monitor.reference_start, monitor.reference_end, features
    )
    if len(reference) < MIN_WINDOW_ROWS:
        raise _reference_error(monitor, f"{len(reference)} logged predictions")
    for start, end in pending:
        current = inference.window(session, monitor.target, start, end, features)
        if len(current) < MIN_WINDOW_ROWS:
            report.skipped.append(f"{start:%Y-%m-%d}: {len(current)} predictions")
            continue
        try:
            fields, alerts = _model_window(monitor, reference, current)
        except (ValidationError, ValueError, TypeError) as exc:
            # one bad window (a non-numeric value, a misconfigured test) must not block the
            # others; it is reported, and tried again on the next run
            report.skipped.append(f"{start:%Y-%m-%d}: {_reason(exc)}")
            continue
        _store(session, monitor, start, end, len(current), len(reference), fields, alerts, report)


def _run_embeddings(
    session: Session, monitor: Monitor, pending: list[tuple[datetime, datetime]], report: RunReport
) -> None:
    from core.mlops.drift import embedding_drift

    texts = _questions(session, monitor.target, monitor.reference_start, monitor.reference_end)
    if len(texts) < MIN_WINDOW_ROWS:
        raise _reference_error(monitor, f"{len(texts)} questions")
    reference = _embed(texts)
    threshold = json.loads(monitor.thresholds_json).get(EMBEDDING_COLUMN)
    for start, end in pending:
        questions = _questions(session, monitor.target, start, end)
        if len(questions) < MIN_WINDOW_ROWS:
            report.skipped.append(f"{start:%Y-%m-%d}: {len(questions)} questions")
            continue
        result = embedding_drift(reference, _embed(questions), threshold=threshold)
        column = {"column": EMBEDDING_COLUMN, "kind": "embedding", **result.to_dict()}
        fields: dict[str, Any] = {
            "columns_json": json.dumps([column]),
            "drift_share": 1.0 if result.drifted else 0.0,
            "dataset_drift": result.drifted,
        }
        alerts = []
        if result.drifted:
            detail = (
                f"p = {result.p_value:.3g}" if result.p_value is not None else f"{result.score:.3g}"
            )
            alerts.append(
                (
                    "embedding_drift",
                    f"Knowledge-base questions moved away from the reference ({result.method}, "
                    f"{detail}, {len(questions)} questions)",
                    result.to_dict(),
                )
            )
        _store(session, monitor, start, end, len(questions), len(texts), fields, alerts, report)


def _store(
    session: Session,
    monitor: Monitor,
    start: datetime,
    end: datetime,
    rows: int,
    reference_rows: int,
    fields: dict[str, Any],
    alerts: list[tuple[str, str, dict[str, Any]]],
    report: RunReport,
) -> None:
    session.add(
        DriftResult(
            monitor_id=monitor.id,
            window_start=start,
            window_end=end,
            rows=rows,
            reference_rows=reference_rows,
            **fields,
        )
    )
    report.windows += 1
    for kind, message, details in alerts:
        _raise(session, monitor, kind, start, message, details, report)


def _raise(
    session: Session,
    monitor: Monitor,
    kind: str,
    start: datetime,
    message: str,
    details: dict[str, Any],
    report: RunReport,
) -> None:
    """One alert per episode: a window that finds the same problem as the window just before
    it joins that window's alert while it is unacknowledged (and is not sent again), so a drift
    that lasts a season is one alert with its windows listed, not one per week. A gap, or an
    acknowledgement, starts a new alert. A window already listed in any alert of this kind (a
    re-check after the rules changed) raises nothing again."""
    text = f"{monitor.target}, {monitor.window} of {start:%Y-%m-%d}: {message}"
    stamp = start.isoformat()
    previous = (start - WINDOWS[monitor.window]).isoformat()
    alerts = session.scalars(
        select(Alert)
        .where(Alert.monitor_id == monitor.id, Alert.kind == kind, Alert.window_start <= start)
        .order_by(Alert.window_start.desc())
    ).all()
    for alert in alerts:
        if stamp in _windows(alert):
            return
    episode = next(
        (a for a in alerts if a.acknowledged_at is None and previous in _windows(a)), None
    )
    if episode is not None:
        stored = json.loads(episode.details_json)
        stored["windows"] = [*_windows(episode), stamp]
        stored["latest"] = text
        episode.details_json = json.dumps(stored, default=str)
        first = episode.message.split(" [still ")[0]
        later = len(stored["windows"]) - 1
        episode.message = f"{first} [still so in {later} later windows]"[:1000]
        report.updated += 1
        return
    alert = Alert(
        monitor_id=monitor.id,
        kind=kind,
        window_start=start,
        message=text[:1000],
        details_json=json.dumps({**details, "windows": [stamp]}, default=str),
        delivery="not sent" if monitor.webhook_url else "",
    )
    session.add(alert)
    session.flush()
    report.alerts.append(alert.id)


def _windows(alert: Alert) -> list[str]:
    listed = json.loads(alert.details_json).get("windows")
    return list(listed) if listed else [alert.window_start.isoformat()]


def undelivered(session: Session, monitor: Monitor) -> list[int]:
    """Alerts of a monitor with a webhook that were never delivered (a failed POST, or a crash
    between the commit and the POST): every run tries them again."""
    if not monitor.webhook_url:
        return []
    rows = session.execute(
        select(Alert.id, Alert.delivery)
        .where(Alert.monitor_id == monitor.id, Alert.acknowledged_at.is_(None))
        .order_by(Alert.id)
    ).all()
    return [i for i, delivery in rows if not delivery.startswith("sent")]


def deliver(alert_id: int) -> bool:
    """POST the alert to its monitor's webhook and store the outcome; True when delivered."""
    import httpx

    with unit_of_work() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return False
        monitor = session.get(Monitor, alert.monitor_id)
        if monitor is None or not monitor.webhook_url:
            return False
        url = monitor.webhook_url
        payload = {
            "source": "omni-ops-console",
            "alert_id": alert.id,
            "monitor": monitor.name,
            "target": monitor.target,
            "kind": alert.kind,
            "window_start": alert.window_start.isoformat(),
            "message": alert.message,
            "details": json.loads(alert.details_json),
            "created_at": alert.created_at.isoformat(),
        }
    try:
        response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
        ok = 200 <= response.status_code < 300
        outcome = (
            f"sent (HTTP {response.status_code})" if ok else f"failed: HTTP {response.status_code}"
        )
    except httpx.HTTPError as exc:
        ok, outcome = False, f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    with unit_of_work() as session:
        alert = session.get(Alert, alert_id)
        if alert is not None:
            alert.delivery = f"{outcome} at {utcnow():%Y-%m-%d %H:%M} UTC"[:300]
    return ok


def run_enabled(actor: Actor, *, until: datetime | None = None) -> list[RunReport]:
    """Run every enabled monitor (the cron entry point); one failing monitor does not stop the
    others: its error is in its report's `failed` (and the command exits non-zero)."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.monitor.run_all")
    with unit_of_work(read_only=True) as session:
        monitors = session.execute(
            select(Monitor.id, Monitor.name).where(Monitor.enabled.is_(True)).order_by(Monitor.name)
        ).all()
    reports = []
    for monitor_id, name in monitors:
        try:
            reports.append(run_monitor(actor, monitor_id, until=until))
        except DomainError as exc:
            reports.append(RunReport(name, failed=exc.message))
    return reports
