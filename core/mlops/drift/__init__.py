"""Drift statistics: column-by-column data drift with Evidently 0.7's default rules, and drift of
embedding vectors. Pure functions of DataFrames and arrays; no database, no Streamlit."""

from core.mlops.drift.embedding import METHODS as EMBEDDING_METHODS
from core.mlops.drift.embedding import EmbeddingDrift, embedding_drift
from core.mlops.drift.report import (
    CATEGORICAL,
    DEFAULT_THRESHOLDS,
    KINDS,
    NUMERIC,
    PVALUE_TESTS,
    TESTS,
    ColumnDrift,
    DriftReport,
    check_threshold,
    choose_test,
    column_drift,
    distribution_overlay,
    drift_report,
    infer_kinds,
)

__all__ = [
    "CATEGORICAL",
    "DEFAULT_THRESHOLDS",
    "EMBEDDING_METHODS",
    "KINDS",
    "NUMERIC",
    "PVALUE_TESTS",
    "TESTS",
    "ColumnDrift",
    "DriftReport",
    "EmbeddingDrift",
    "check_threshold",
    "choose_test",
    "column_drift",
    "distribution_overlay",
    "drift_report",
    "embedding_drift",
    "infer_kinds",
]
