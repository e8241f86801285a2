"""Reading monitor results for people: the per-window table, the feature x time heatmap, the
distribution overlay of one feature in one window, performance over time, and the alert inbox.

Severity puts every test on one scale for the heatmap: 1 is the threshold, above it drifted. For
distance tests (Wasserstein, Jensen-Shannon, PSI, MMD^2) it is score / threshold; for tests that
give a p-value it is log(p) / log(alpha), so p = alpha is 1 and p = alpha^2 is 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound
from core.mlops import inference
from core.mlops.models import Alert, DriftResult, Monitor
from core.mlops.monitors import get_row

MAX_SEVERITY = 5.0


def severity(test: str, score: float | None, threshold: float | None) -> float | None:
    """`drift.score_severity` for a stored result (None when it cannot be scored), capped for
    the heatmap's colour scale. Embedding MMD decides on its permutation p-value."""
    from core.mlops.drift.report import PVALUE_TESTS, score_severity

    if score is None or threshold is None or math.isnan(score) or threshold <= 0:
        return None
    p_value = test in PVALUE_TESTS or test == "mmd"
    if p_value and threshold >= 1:
        return None
    value = score_severity(score, threshold, p_value=p_value)
    return round(min(max(value, 0.0), MAX_SEVERITY), 4)


def _test_of(column: dict[str, Any]) -> str:
    return str(column.get("test") or column.get("method") or "")


def _score_of(column: dict[str, Any]) -> float | None:
    if column.get("method") == "mmd":  # embeddings: the decision is on the permutation p-value
        return column.get("p_value")
    return column.get("score")


def _results(session: Any, monitor_id: int) -> list[DriftResult]:
    return list(
        session.scalars(
            select(DriftResult)
            .where(DriftResult.monitor_id == monitor_id)
            .order_by(DriftResult.window_start)
        )
    )


def results_frame(actor: Actor, monitor_id: int) -> pd.DataFrame:
    """One row per checked window: rows, drift share, drifted features, prediction drift and
    the performance metrics."""
    require(actor, Permission.MLOPS_READ, action="mlops.monitor.results", target=str(monitor_id))
    with unit_of_work(read_only=True) as session:
        get_row(session, monitor_id)
        records = []
        for r in _results(session, monitor_id):
            columns = json.loads(r.columns_json)
            drifted = [c["column"] for c in columns if c.get("drifted")]
            perf = json.loads(r.performance_json)
            records.append(
                {
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "rows": r.rows,
                    "drift_share": r.drift_share,
                    "dataset_drift": r.dataset_drift,
                    "drifted_features": ", ".join(drifted),
                    "prediction_drift": r.prediction_drift,
                    "labelled_rows": r.labelled_rows,
                    **{k: v for k, v in perf.items() if k != "labelled"},
                }
            )
    return pd.DataFrame.from_records(records)


def heatmap_frame(actor: Actor, monitor_id: int) -> pd.DataFrame:
    """Long format: window_start, column, test, score, severity, drifted (prediction included)."""
    require(actor, Permission.MLOPS_READ, action="mlops.monitor.results", target=str(monitor_id))
    with unit_of_work(read_only=True) as session:
        get_row(session, monitor_id)
        records = []
        for r in _results(session, monitor_id):
            columns = json.loads(r.columns_json)
            prediction = json.loads(r.prediction_json)
            if prediction:
                columns.append(prediction)
            for c in columns:
                if c.get("missing"):
                    continue
                test, score = _test_of(c), _score_of(c)
                records.append(
                    {
                        "window_start": r.window_start,
                        "column": c["column"],
                        "test": test,
                        "score": score,
                        "severity": severity(test, score, c.get("threshold")),
                        "drifted": bool(c.get("drifted")),
                    }
                )
    return pd.DataFrame.from_records(
        records, columns=["window_start", "column", "test", "score", "severity", "drifted"]
    )


@dataclass(frozen=True)
class WindowDetail:
    window_start: datetime
    window_end: datetime
    rows: int
    reference_rows: int
    drift_share: float
    dataset_drift: bool
    columns: list[dict[str, Any]]  # most severe first; missing columns last
    prediction: dict[str, Any] | None
    performance: dict[str, float]


def window_detail(actor: Actor, monitor_id: int, window_start: datetime) -> WindowDetail:
    require(actor, Permission.MLOPS_READ, action="mlops.monitor.results", target=str(monitor_id))
    with unit_of_work(read_only=True) as session:
        row = session.scalar(
            select(DriftResult).where(
                DriftResult.monitor_id == monitor_id, DriftResult.window_start == window_start
            )
        )
        if row is None:
            raise NotFound(f"No checked window starting {window_start:%Y-%m-%d %H:%M}.")
        columns = json.loads(row.columns_json)
        for c in columns:
            c["severity"] = severity(_test_of(c), _score_of(c), c.get("threshold"))
        columns.sort(key=lambda c: (c.get("missing", False), -(c.get("severity") or 0.0)))
        return WindowDetail(
            row.window_start,
            row.window_end,
            row.rows,
            row.reference_rows,
            row.drift_share,
            row.dataset_drift,
            columns,
            json.loads(row.prediction_json),
            json.loads(row.performance_json),
        )


def overlay(actor: Actor, monitor_id: int, window_start: datetime, column: str) -> pd.DataFrame:
    """Reference and window distributions of one feature (or "prediction") on common buckets."""
    from core.mlops.drift import CATEGORICAL, distribution_overlay, infer_kinds

    require(actor, Permission.MLOPS_READ, action="mlops.monitor.results", target=str(monitor_id))
    with unit_of_work(read_only=True) as session:
        monitor = get_row(session, monitor_id)
        if monitor.kind != "model":
            raise NotFound("Distribution overlays are for model monitors.")
        features = json.loads(monitor.features_json)
        if column not in (*features, "prediction"):
            raise NotFound(f"The monitor does not watch {column!r}.")
        result = session.scalar(
            select(DriftResult).where(
                DriftResult.monitor_id == monitor_id, DriftResult.window_start == window_start
            )
        )
        if result is None:
            raise NotFound(f"No checked window starting {window_start:%Y-%m-%d %H:%M}.")
        wanted = [c for c in features if c == column]
        reference = inference.window(
            session, monitor.target, monitor.reference_start, monitor.reference_end, wanted
        )
        current = inference.window(
            session, monitor.target, result.window_start, result.window_end, wanted
        )
    stored = {c["column"]: c for c in json.loads(result.columns_json)}
    kind = stored.get(column, {}).get("kind") or infer_kinds(reference, [column])[column]
    if column == "prediction" and monitor.task == "classification":
        kind = CATEGORICAL
    return distribution_overlay(reference[column].dropna(), current[column].dropna(), kind=kind)


def performance_frame(actor: Actor, monitor_id: int) -> pd.DataFrame:
    """Per window: labelled rows, the metrics, and the reference's metrics beside them."""
    frame = results_frame(actor, monitor_id)
    if frame.empty:
        return frame
    keep = [
        c
        for c in frame.columns
        if c in ("window_start", "labelled_rows")
        or c.removeprefix("reference_") in ("mae", "rmse", "accuracy", "f1")
    ]
    return frame[keep]


@dataclass(frozen=True)
class AlertView:
    id: int
    monitor_id: int
    monitor: str
    target: str
    kind: str
    window_start: datetime
    message: str
    details: dict[str, Any]
    delivery: str
    created_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


def list_alerts(
    actor: Actor, *, open_only: bool = False, monitor_id: int | None = None, limit: int = 500
) -> list[AlertView]:
    require(actor, Permission.MLOPS_READ, action="mlops.alert.list")
    with unit_of_work(read_only=True) as session:
        query = select(Alert, Monitor.name, Monitor.target).join(
            Monitor, Monitor.id == Alert.monitor_id
        )
        if open_only:
            query = query.where(Alert.acknowledged_at.is_(None))
        if monitor_id is not None:
            query = query.where(Alert.monitor_id == monitor_id)
        rows = session.execute(
            query.order_by(Alert.window_start.desc(), Alert.id.desc()).limit(limit)
        ).all()
        return [
            AlertView(
                a.id,
                a.monitor_id,
                name,
                target,
                a.kind,
                a.window_start,
                a.message,
                json.loads(a.details_json),
                a.delivery,
                a.created_at,
                a.acknowledged_by,
                a.acknowledged_at,
            )
            for a, name, target in rows
        ]


def acknowledge(actor: Actor, alert_ids: list[int]) -> int:
    """Mark alerts as seen (audited); returns how many were open."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.alert.acknowledge")
    if not alert_ids:
        return 0
    with unit_of_work() as session:
        alerts = session.scalars(select(Alert).where(Alert.id.in_(alert_ids))).all()
        if len(alerts) != len(set(alert_ids)):
            raise NotFound("Some of those alerts do not exist.")
        open_ones = [a for a in alerts if a.acknowledged_at is None]
        if not open_ones:
            raise Conflict("Those alerts were acknowledged already.")
        now = utcnow()
        for alert in open_ones:
            alert.acknowledged_by, alert.acknowledged_at = actor.username, now
        record(
            session,
            actor,
            "mlops.alert.acknowledge",
            "alerts",
            {"ids": sorted(a.id for a in open_ones)},
        )
        return len(open_ones)


def open_alerts_by_target(actor: Actor) -> dict[str, int]:
    """Open alerts per monitored target (model name, or collection), for the models list."""
    require(actor, Permission.MLOPS_READ, action="mlops.alert.count")
    with unit_of_work(read_only=True) as session:
        return open_alert_counts(session)


def open_alert_counts(session: Any) -> dict[str, int]:
    """Open alerts per monitored target."""
    rows = session.execute(
        select(Monitor.target, func.count())
        .join(Alert, Alert.monitor_id == Monitor.id)
        .where(Alert.acknowledged_at.is_(None))
        .group_by(Monitor.target)
    ).all()
    return {target: int(n) for target, n in rows}
