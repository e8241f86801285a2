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
from core.clock import utcnow
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


_ZONE = r"(?:Z|[+-]\d\d(?::?\d\d)?)$"


def _utc(values: pd.Series, what: str) -> pd.Series:
    """Timestamps in UTC. Each must carry its time zone (offsets may differ, as they do across a
    daylight-saving change); a naive one is refused rather than guessed."""
    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            raise ValidationError(_naive(what))
        return values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    if text.isna().any():
        raise ValidationError(f"{what}: {int(text.isna().sum())} rows have no ts.")
    if not text.str.contains(_ZONE, regex=True).all():
        raise ValidationError(_naive(what))
    try:
        return pd.to_datetime(text, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise ValidationError(
            f"{what}: the ts column holds values that are not timestamps."
        ) from exc


def _naive(what: str) -> str:
    return (
        f"{what}: timestamps need a time zone (e.g. 2012-03-01T08:00:00+00:00), so windows "
        "are cut at the same instants everywhere."
    )


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
    """A feature value as JSON: missing is null; timestamps become ISO text; infinities are
    refused by the caller (JSON has none)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def append(
    session: Session, model_name: str, version: str, frame: pd.DataFrame, features: Sequence[str]
) -> int:
    """Bulk-insert checked rows (see `check_frame`) within the caller's transaction."""
    columns = list(features)
    numeric = frame[columns].select_dtypes("number")
    infinite = numeric.columns[~numeric.apply(lambda c: c.isna() | c.abs().lt(math.inf)).all()]
    if len(infinite):
        raise ValidationError(
            f"Features {', '.join(map(str, infinite))} hold infinite values: log missing values "
            "as empty, not as inf."
        )
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
    version = str(version).strip()
    if not version.isdigit() or len(version) > 32:
        raise ValidationError(f"Version {version[:40]!r} is not a model version number.")
    if not model_name.strip() or len(model_name) > 200:
        raise ValidationError("Name the model (at most 200 characters).")
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
    returns how many predictions were updated. All or nothing: an instant with no prediction, or
    with several (ambiguous), or given twice, is refused. Monitor windows already checked that
    contain these instants are dropped, so the next run judges their performance too."""
    require(actor, Permission.MLOPS_MONITOR, action="mlops.inference.actuals", target=model_name)
    missing = [c for c in ("ts", "actual") if c not in frame.columns]
    if missing:
        raise ValidationError(f"The actuals file lacks columns: {', '.join(missing)}.")
    stamps = _utc(frame["ts"], "The actuals file")
    values = pd.to_numeric(frame["actual"], errors="coerce")
    if values.isna().any():
        raise ValidationError(f"{int(values.isna().sum())} actuals are not numbers.")
    repeated = stamps[stamps.duplicated()]
    if len(repeated):
        raise ValidationError(f"The actuals file gives {repeated.iloc[0].isoformat()} twice.")
    now = utcnow()
    with unit_of_work() as session:
        for ts, value in zip(stamps, values, strict=True):
            instant = ts.to_pydatetime()
            ids = session.scalars(
                select(Inference.id).where(
                    Inference.model_name == model_name, Inference.ts == instant
                )
            ).all()
            if len(ids) != 1:
                raise ValidationError(
                    f"{'No' if not ids else len(ids)} predictions of {model_name} at "
                    f"{ts.isoformat()}: nothing was updated."
                    + (" Several predictions share that instant; match them by id." if ids else "")
                )
            session.execute(
                update(Inference)
                .where(Inference.id == ids[0])
                .values(actual=float(value), actual_at=now)
            )
        stale = _drop_checked_windows(
            session, model_name, stamps.min().to_pydatetime(), stamps.max().to_pydatetime()
        )
        record(
            session,
            actor,
            "mlops.inference.actuals",
            model_name,
            {"rows": len(stamps), "windows_to_recheck": stale},
        )
    return len(stamps)


def _drop_checked_windows(
    session: Session, model_name: str, first: datetime, last: datetime
) -> int:
    from core.mlops.models import DriftResult, Monitor

    stale = session.scalars(
        select(DriftResult)
        .join(Monitor, Monitor.id == DriftResult.monitor_id)
        .where(
            Monitor.kind == "model",
            Monitor.target == model_name,
            DriftResult.window_start <= last,
            DriftResult.window_end > first,
        )
    ).all()
    for row in stale:
        session.delete(row)
    return len(stale)


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
