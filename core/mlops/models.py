"""Model-operations tables: the alias history MLflow does not keep, the production inference log
(features, prediction, and the actual once it arrives), drift monitors with their per-window
results and alerts, and A/B experiments with their observations.

MLflow stays the source of truth for models, versions, runs and the current aliases; these tables
hold what the console adds around it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UTCDateTime
from core.llm.models import BigId


class AliasEvent(Base):
    """One move of a registered model's alias (champion, challenger, ...): who, why, from which
    version to which. `version` None: the alias was removed."""

    __tablename__ = "mlops_alias_events"
    __table_args__ = (Index("ix_mlops_alias_events_model_alias", "model_name", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(32))
    previous_version: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # promote, rollback, remove
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Inference(Base):
    """One production prediction of a registered model: its input features (JSON object), the
    prediction, and the observed outcome once it is known."""

    __tablename__ = "mlops_inferences"
    __table_args__ = (Index("ix_mlops_inferences_model_ts", "model_name", "ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    features: Mapped[str] = mapped_column(Text)
    prediction: Mapped[float] = mapped_column(Float)
    actual: Mapped[float | None] = mapped_column(Float)
    actual_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Monitor(Base):
    """A drift monitor: a reference window against consecutive current windows (day or week).

    kind "model": the features, prediction and (with actuals) performance of a registered model's
    inference log; kind "embeddings": the knowledge base's query embeddings (`target` names the
    collection, or "*" for all)."""

    __tablename__ = "mlops_monitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="model")
    target: Mapped[str] = mapped_column(String(200), index=True)  # model name or collection
    reference_start: Mapped[datetime] = mapped_column(UTCDateTime())
    reference_end: Mapped[datetime] = mapped_column(UTCDateTime())
    window: Mapped[str] = mapped_column(String(8), default="week")  # day, week
    features_json: Mapped[str] = mapped_column(Text, default="[]")  # [] = the model's signature
    thresholds_json: Mapped[str] = mapped_column(Text, default="{}")  # feature -> threshold
    tests_json: Mapped[str] = mapped_column(Text, default="{}")  # feature -> test name
    drift_share: Mapped[float] = mapped_column(Float, default=0.5)
    task: Mapped[str] = mapped_column(String(16), default="regression")  # or classification
    # the worst acceptable value of the primary metric: regression MAE above it, classification
    # macro F1 below it, raises a performance alert
    performance_threshold: Mapped[float | None] = mapped_column(Float)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class DriftResult(Base):
    """A monitor's verdict for one current window: per-column tests (JSON list), the share of
    drifted columns, prediction drift and performance."""

    __tablename__ = "mlops_drift_results"
    __table_args__ = (UniqueConstraint("monitor_id", "window_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("mlops_monitors.id", ondelete="CASCADE"), index=True
    )
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(Integer)
    reference_rows: Mapped[int] = mapped_column(Integer)
    columns_json: Mapped[str] = mapped_column(Text, default="[]")
    drift_share: Mapped[float] = mapped_column(Float, default=0.0)
    dataset_drift: Mapped[bool] = mapped_column(Boolean, default=False)
    prediction_json: Mapped[str] = mapped_column(Text, default="null")  # the prediction's test
    prediction_drift: Mapped[bool] = mapped_column(Boolean, default=False)
    labelled_rows: Mapped[int] = mapped_column(Integer, default=0)
    performance_json: Mapped[str] = mapped_column(Text, default="{}")  # mae, rmse / accuracy, f1
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """Something a monitor found: data drift, prediction drift, a performance drop or embedding
    drift, for one window. Stored once per (monitor, kind, window) however often monitors run."""

    __tablename__ = "mlops_alerts"
    __table_args__ = (UniqueConstraint("monitor_id", "kind", "window_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    monitor_id: Mapped[int] = mapped_column(
        ForeignKey("mlops_monitors.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    message: Mapped[str] = mapped_column(String(1000))
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    delivery: Mapped[str] = mapped_column(String(300), default="")  # webhook outcome
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Experiment(Base):
    """An A/B test between model versions, prompts or LLM providers. The sample size is computed
    when the experiment is created, from the baseline, the minimum detectable effect, alpha and
    power, and fixed from then on (changing it after peeking would void the test)."""

    __tablename__ = "mlops_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # model, prompt, llm_provider
    description: Mapped[str] = mapped_column(String(1000), default="")
    variants_json: Mapped[str] = mapped_column(Text)  # [{"key", "label", "weight"}], control 1st
    metric_name: Mapped[str] = mapped_column(String(64))
    metric_kind: Mapped[str] = mapped_column(String(16))  # proportion, mean
    higher_is_better: Mapped[bool] = mapped_column(Boolean, default=True)
    baseline: Mapped[float] = mapped_column(Float)  # rate, or mean
    baseline_sd: Mapped[float | None] = mapped_column(Float)  # mean metrics only
    mde: Mapped[float] = mapped_column(Float)  # minimum detectable effect, absolute
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    power: Mapped[float] = mapped_column(Float, default=0.8)
    sample_size: Mapped[int] = mapped_column(Integer)  # per variant
    sequential: Mapped[bool] = mapped_column(Boolean, default=False)
    salt: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running, stopped
    decision: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExperimentObservation(Base):
    """One unit's outcome in an experiment (0/1 for a proportion metric)."""

    __tablename__ = "mlops_experiment_observations"
    __table_args__ = (UniqueConstraint("experiment_id", "unit_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("mlops_experiments.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
