"""The production inference log: what a registered model was asked, what it answered, and what
actually happened once that is known. Drift monitors read their windows from here.

Serving code (or `omni mlops log-predictions`) appends rows; actuals arrive later and are matched
to their prediction by (model, timestamp). Features are stored as one JSON object per row so any
model's inputs fit the same table; a window is read back into a DataFrame with one column per
feature.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import ValidationError
from core.mlops.models import Inference

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
RESERVED = ("ts", "prediction", "actual")
_BATCH = 5_000


@dataclass(frozen=True)
class LogSummary:
    rows: int
    first: datetime | None
    last: datetime | None


def _utc(values: pd.Series, what: str) -> pd.Series:
    try:
        stamps = pd.to_datetime(values, utc=False, format="mixed")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{what}: the ts column holds values that are not timestamps."
        ) from exc
    if stamps.isna().any():
        raise ValidationError(f"{what}: {int(stamps.isna().sum())} rows have no ts.")
    if stamps.dt.tz is None:
        raise ValidationError(
            f"{what}: timestamps need a time zone (e.g. 2012-03-01T08:00:00+00:00), so windows "
            "are cut at the same instants everywhere."
        )
    return stamps.dt.tz_convert("UTC")


def check_frame(frame: pd.DataFrame, features: Sequence[str], *, what: str) -> pd.DataFrame:
    """A copy of `frame` with ts in UTC and the named feature columns; errors name what is
    missing or wrong."""
    missing = [c for c in ("ts", "prediction", *features) if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{what} lacks columns: {', '.join(missing)}. Needed: ts, prediction, "
            f"{', '.join(features)} (actual optional)."
        )
    if frame.empty:
        raise ValidationError(f"{what} has no rows.")
    out = frame[["ts", "prediction", *features, *(["actual"] if "actual" in frame else [])]].copy()
    out["ts"] = _utc(out["ts"], what)
    for column in ("prediction", "actual"):
        if column in out:
            numbers = pd.to_numeric(out[column], errors="coerce")
            bad = numbers.isna() & out[column].notna()
            if bad.any():
                raise ValidationError(
                    f"{what}: column {column} holds non-numbers (first at row "
                    f"{int(bad.to_numpy().nonzero()[0][0]) + 1})."
                )
            out[column] = numbers
    if out["prediction"].isna().any():
        raise ValidationError(
            f"{what}: {int(out['prediction'].isna().sum())} rows lack a prediction."
        )
    return out


def _jsonable(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def append(
    session: Session, model_name: str, version: str, frame: pd.DataFrame, features: Sequence[str]
) -> int:
    """Bulk-insert checked rows (see `check_frame`) within the caller's transaction."""
    columns = list(features)
    records = frame[columns].to_dict(orient="records")
    actuals = frame["actual"].tolist() if "actual" in frame else [None] * len(frame)
    rows = [
        {
            "model_name": model_name,
            "model_version": str(version),
            "ts": ts.to_pydatetime(),
            "features": json.dumps({k: _jsonable(v) for k, v in rec.items()}, allow_nan=False),
            "prediction": float(pred),
            "actual": None if actual is None or math.isnan(actual) else float(actual),
            "actual_at": None if actual is None or math.isnan(actual) else ts.to_pydatetime(),
        }
        for rec, ts, pred, actual in zip(
            records, frame["ts"], frame["prediction"], actuals, strict=True
        )
    ]
    for start in range(0, len(rows), _BATCH):
        session.execute(insert(Inference), rows[start : start + _BATCH])
    return len(rows)


def read_table(data: bytes, filename: str) -> pd.DataFrame:
    """A CSV or Parquet upload as a DataFrame, with size and format errors a user can act on."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationError(
            f"The file is {len(data) / 1e6:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 10**6} MB. "
            "Split it by day."
        )
    try:
        if filename.lower().endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(data))
        return pd.read_csv(io.BytesIO(data))
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if filename.lower().endswith(".parquet") else "CSV (UTF-8)"
        raise ValidationError(f"The file could not be read as {kind}: {str(exc)[:200]}") from exc


def log_predictions(
    actor: Actor,
    model_name: str,
    version: str,
    frame: pd.DataFrame,
    features: Sequence[str],
) -> int:
    """Append a batch of predictions (all or nothing)."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.inference.log", target=model_name)
    checked = check_frame(frame, features, what="The predictions file")
    with unit_of_work() as session:
        count = append(session, model_name, version, checked, features)
        record(
            session,
            actor,
            "mlops.inference.log",
            model_name,
            {"version": str(version), "rows": count},
        )
    return count


def record_actuals(actor: Actor, model_name: str, frame: pd.DataFrame) -> int:
    """Attach observed outcomes (columns ts, actual) to the logged predictions at those instants;
    returns how many predictions were updated. Unknown instants are refused, all or nothing."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.inference.actuals", target=model_name)
    missing = [c for c in ("ts", "actual") if c not in frame.columns]
    if missing:
        raise ValidationError(f"The actuals file lacks columns: {', '.join(missing)}.")
    stamps = _utc(frame["ts"], "The actuals file")
    values = pd.to_numeric(frame["actual"], errors="coerce")
    if values.isna().any():
        raise ValidationError(f"{int(values.isna().sum())} actuals are not numbers.")
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with unit_of_work() as session:
        updated = 0
        for ts, value in zip(stamps, values, strict=True):
            result = session.execute(
                update(Inference)
                .where(Inference.model_name == model_name, Inference.ts == ts.to_pydatetime())
                .values(actual=float(value), actual_at=now)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise ValidationError(
                    f"No prediction of {model_name} at {ts.isoformat()}: nothing was updated."
                )
            updated += result.rowcount  # type: ignore[attr-defined]
        record(session, actor, "mlops.inference.actuals", model_name, {"rows": updated})
    return updated


def window(
    session: Session, model_name: str, start: datetime, end: datetime, features: Sequence[str]
) -> pd.DataFrame:
    """The logged rows with start <= ts < end: ts, version, prediction, actual and one column per
    feature (a feature a row lacks is missing, not an error: the monitor reports it)."""
    rows = session.execute(
        select(
            Inference.ts,
            Inference.model_version,
            Inference.features,
            Inference.prediction,
            Inference.actual,
        )
        .where(Inference.model_name == model_name, Inference.ts >= start, Inference.ts < end)
        .order_by(Inference.ts, Inference.id)
    ).all()
    base = pd.DataFrame(
        {
            "ts": pd.to_datetime([r.ts for r in rows], utc=True),
            "version": [r.model_version for r in rows],
            "prediction": pd.array([r.prediction for r in rows], dtype="float64"),
            "actual": pd.array([r.actual for r in rows], dtype="Float64").astype("float64"),
        }
    )
    decoded = pd.DataFrame.from_records([json.loads(r.features) for r in rows])
    for column in features:
        base[column] = decoded[column].to_numpy() if column in decoded else pd.NA
    return base


def logged_columns(session: Session, model_name: str) -> list[str]:
    """Feature names of the model's most recent logged row (for models without a signature)."""
    latest = session.scalar(
        select(Inference.features)
        .where(Inference.model_name == model_name)
        .order_by(Inference.ts.desc())
        .limit(1)
    )
    return list(json.loads(latest)) if latest else []


def summary(session: Session, model_name: str) -> LogSummary:
    rows, first, last = session.execute(
        select(func.count(), func.min(Inference.ts), func.max(Inference.ts)).where(
            Inference.model_name == model_name
        )
    ).one()
    return LogSummary(int(rows), first, last)
