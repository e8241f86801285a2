"""Column-by-column data drift between a reference and a current window, with Evidently 0.7's
default rules (column types, test choice, thresholds, the dataset-drift share), computed fast.

Pure functions of two DataFrames: no database, no Streamlit. The speed comes from summarising
each column of each window once as distinct values with counts (`stattests.Counts`), running the
columns on a thread pool (numpy's sort releases the GIL), and computing every statistic exactly
from the summaries; see `stattests` for why that is exact.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ValidationError
from core.mlops.drift import stattests as st
from core.mlops.drift.samples import (
    Window,
    categorical_window,
    comparable,
    empty_window_error,
    numeric_window,
)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS: tuple[str, ...] = (NUMERIC, CATEGORICAL)
TESTS: tuple[str, ...] = ("ks", "wasserstein", "chisquare", "jensenshannon", "psi", "z")
# tests whose score is a p-value (drift when small); the others score a distance (drift when large)
PVALUE_TESTS: frozenset[str] = frozenset({"ks", "chisquare", "z"})
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
# Wasserstein and KS integrate over an order of values that categories do not have
ORDERED_TESTS: frozenset[str] = frozenset({"ks", "wasserstein"})
TESTS_FOR_KIND: dict[str, tuple[str, ...]] = {
    NUMERIC: TESTS,
    CATEGORICAL: tuple(t for t in TESTS if t not in ORDERED_TESTS),
}
# Evidently 0.7 (`core/datasets.py:infer_column_type`) calls an integer column with at most 10
# distinct values categorical; a float column stays numerical, but its default test for at most
# 5 distinct values is a categorical one (`_get_default_stattest`), so we call it categorical.
INTEGER_CATEGORY_LIMIT = 10
FEW_VALUES = 5
# Evidently picks the small-sample tests (KS, chi-square, z) up to this many reference rows.
SMALL_REFERENCE_ROWS = 1000
NOTE_CATEGORY_LIMIT = 5


def score_severity(score: float, threshold: float, *, p_value: bool) -> float:
    """A test's score on one scale, 1 at its threshold: log(p) / log(alpha) for p-values (so
    p = alpha**2 is 2), score / threshold for distances."""
    if p_value:
        return -math.log10(max(score, 1e-300)) / -math.log10(threshold)
    return score / threshold


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. `score` is a p-value for ks / chisquare / z and a distance for
    wasserstein (in reference standard deviations), jensenshannon and psi."""

    column: str
    kind: str
    test: str
    score: float
    threshold: float
    drifted: bool
    psi: float
    reference_rows: int
    current_rows: int
    note: str = ""

    @property
    def severity(self) -> float:
        """How far past (above 1) or short of (below 1) its threshold the score is, on one scale
        for both kinds of score, so that columns judged by different tests can be ranked."""
        return score_severity(self.score, self.threshold, p_value=self.test in PVALUE_TESTS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnDrift:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data and n != "note"]
        if missing:
            raise ValidationError(f"A stored column drift result lacks: {', '.join(missing)}.")
        _check_kind(str(data["kind"]))
        _check_test_name(str(data["test"]))
        try:
            return cls(
                column=str(data["column"]),
                kind=str(data["kind"]),
                test=str(data["test"]),
                score=float(data["score"]),
                threshold=float(data["threshold"]),
                drifted=bool(data["drifted"]),
                psi=float(data["psi"]),
                reference_rows=int(data["reference_rows"]),
                current_rows=int(data["current_rows"]),
                note=str(data.get("note", "")),
            )
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"A stored column drift result is malformed: {exc}.") from exc


@dataclass(frozen=True)
class DriftReport:
    """Every column's verdict and the dataset verdict: drift when at least `share_threshold` of
    the columns drifted (Evidently's rule, default one half)."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    share_threshold: float
    dataset_drift: bool
    reference_rows: int
    current_rows: int

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the drifted columns, most severe first (ties: larger PSI first)."""
        drifted = [c for c in self.columns if c.drifted]
        drifted.sort(key=lambda c: (-c.severity, -c.psi, c.column))
        return [c.column for c in drifted]

    def column(self, name: str) -> ColumnDrift:
        for result in self.columns:
            if result.column == name:
                return result
        raise ValidationError(
            f"The drift report has no column '{name}'; it has: "
            + ", ".join(c.column for c in self.columns)
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column, for tables and CSV export."""
        return pd.DataFrame(
            [c.to_dict() for c in self.columns], columns=[f.name for f in fields(ColumnDrift)]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": [c.to_dict() for c in self.columns],
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "dataset_drift": self.dataset_drift,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        try:
            return cls(
                columns=tuple(ColumnDrift.from_dict(c) for c in data["columns"]),
                drift_share=float(data["drift_share"]),
                share_threshold=float(data["share_threshold"]),
                dataset_drift=bool(data["dataset_drift"]),
                reference_rows=int(data["reference_rows"]),
                current_rows=int(data["current_rows"]),
            )
        except KeyError as exc:
            raise ValidationError(f"A stored drift report lacks {exc}.") from exc


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValidationError(f"Unknown column kind '{kind}'; valid kinds: {', '.join(KINDS)}.")


def _check_test_name(test: str) -> None:
    if test not in TESTS:
        raise ValidationError(f"Unknown drift test '{test}'; valid tests: {', '.join(TESTS)}.")


def check_threshold(test: str, threshold: float | None) -> float:
    """The threshold to use for `test`: the default, or the given one if it is in range."""
    _check_test_name(test)
    if threshold is None:
        return DEFAULT_THRESHOLDS[test]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValidationError(f"The threshold for '{test}' must be a number, not {threshold!r}.")
    value = float(threshold)
    if test in PVALUE_TESTS:
        ok, valid = 0 < value < 1, "a p-value between 0 and 1 (exclusive), e.g. 0.05"
    elif test == "jensenshannon":
        ok, valid = 0 < value <= 1, "a distance above 0 and at most 1, e.g. 0.1"
    else:
        ok, valid = 0 < value < math.inf, "a positive distance, e.g. 0.1"
    if not ok:
        raise ValidationError(f"Threshold {threshold!r} is out of range for '{test}': use {valid}.")
    return value


def _kind_of(series: pd.Series, column: str) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        limit = INTEGER_CATEGORY_LIMIT if pd.api.types.is_integer_dtype(dtype) else FEW_VALUES
        # a glance at the head settles high-cardinality columns without hashing every row
        if series.iloc[:2000].nunique() > limit or series.nunique() > limit:
            return NUMERIC
        return CATEGORICAL
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_string_dtype(dtype):
        return CATEGORICAL
    raise ValidationError(
        f"Column '{column}' has type {dtype}; drift is computed for numeric and categorical "
        "columns only: leave it out (columns=...)."
    )


def _supported(series: pd.Series) -> bool:
    try:
        _kind_of(series.iloc[:0], "")
    except ValidationError:
        return False
    return True


def _missing_columns_error(window: str, missing: Sequence[str]) -> ValidationError:
    return ValidationError(f"The {window} window lacks columns: {', '.join(map(str, missing))}.")


def infer_kinds(reference: pd.DataFrame, columns: Sequence[str]) -> dict[str, str]:
    """Evidently 0.7's column types: bool, text and category columns are categorical; an integer
    column with at most 10 distinct values is categorical, a float one with at most 5."""
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        raise _missing_columns_error("reference", missing)
    return {c: _kind_of(reference[c], c) for c in columns}


def choose_test(kind: str, reference_rows: int, n_unique: int) -> str:
    """Evidently 0.7's default test (`_get_default_stattest`). `n_unique` counts the distinct
    values of both windows together, as Evidently does."""
    _check_kind(kind)
    many_values = kind == NUMERIC and n_unique > FEW_VALUES
    if reference_rows <= SMALL_REFERENCE_ROWS:
        if many_values:
            return "ks"
        return "chisquare" if n_unique > 2 else "z"
    return "wasserstein" if many_values else "jensenshannon"


def _window(series: pd.Series, kind: str, column: str, window: str) -> Window:
    if kind == NUMERIC:
        return numeric_window(series, column=column, window=window)
    return categorical_window(series, column=column, window=window)


def _score(test: str, ref: st.Counts, cur: st.Counts, numeric: bool) -> float:
    if test == "ks":
        return st.ks_pvalue(ref, cur)
    if test == "wasserstein":
        return st.wasserstein_norm(ref, cur)
    if test == "chisquare":
        return st.chisquare_pvalue(ref, cur)
    if test == "z":
        return st.z_pvalue(ref, cur)
    if test == "jensenshannon":
        return st.jensenshannon(ref, cur, numeric=numeric)
    return st.psi(ref, cur, numeric=numeric)


def _is_drift(test: str, score: float, threshold: float) -> bool:
    if test == "ks":
        return score <= threshold  # Evidently's KS uses <=, its chi-square and z tests <
    if test in PVALUE_TESTS:
        return score < threshold
    return score >= threshold


def _label(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _notes(kind: str, ref: Window, cur: Window, keys_count: int) -> str:
    notes = []
    if keys_count == 1:
        notes.append("constant in both windows")
    elif ref.counts.values.size == 1:
        notes.append("constant in the reference window")
    elif cur.counts.values.size == 1:
        notes.append("constant in the current window")
    if kind == CATEGORICAL:
        new = np.setdiff1d(cur.counts.values, ref.counts.values)
        if new.size:
            shown = ", ".join(_label(v) for v in new[:NOTE_CATEGORY_LIMIT])
            more = (
                f" (+{new.size - NOTE_CATEGORY_LIMIT} more)"
                if new.size > NOTE_CATEGORY_LIMIT
                else ""
            )
            notes.append(f"new categories: {shown}{more}")
    for what, r, c in (
        ("missing", ref.missing, cur.missing),
        ("infinite", ref.infinite, cur.infinite),
    ):
        if r or c:
            notes.append(f"{r + c:,} {what} values dropped (reference {r:,}, current {c:,})")
    return "; ".join(notes)


def _check_applicable(test: str, kind: str, column: str, numeric_values: bool) -> None:
    if test not in TESTS_FOR_KIND[kind]:
        raise ValidationError(
            f"Test '{test}' compares ordered numbers, but column '{column}' is {kind}; use one of "
            f"{', '.join(TESTS_FOR_KIND[kind])}, or declare the column {NUMERIC}."
        )
    if test in ORDERED_TESTS and not numeric_values:
        raise ValidationError(
            f"Test '{test}' needs numeric values, but column '{column}' holds text; use one of "
            f"{', '.join(TESTS_FOR_KIND[CATEGORICAL])}."
        )


def column_drift(
    reference: pd.Series,
    current: pd.Series,
    *,
    kind: str,
    test: str | None = None,
    threshold: float | None = None,
    column: str = "",
) -> ColumnDrift:
    """One column's drift: missing values dropped, the test chosen as Evidently would unless
    given, PSI computed beside it."""
    _check_kind(kind)
    name = column or str(reference.name if reference.name is not None else "")
    if test is not None:
        _check_test_name(test)
        _check_applicable(test, kind, name, numeric_values=True)
    _precheck_threshold(test, threshold)
    ref = _window(reference, kind, name, "reference")
    cur = _window(current, kind, name, "current")
    ref_counts, cur_counts = comparable(ref.counts, cur.counts)
    distinct = _distinct_both(ref_counts, cur_counts)
    chosen = test or choose_test(kind, ref_counts.rows, distinct)
    _check_applicable(chosen, kind, name, ref_counts.numeric and cur_counts.numeric)
    limit = check_threshold(chosen, threshold)
    numeric = kind == NUMERIC
    score = _score(chosen, ref_counts, cur_counts, numeric)
    psi = score if chosen == "psi" else st.psi(ref_counts, cur_counts, numeric=numeric)
    ref = Window(ref_counts, ref.missing, ref.infinite)
    cur = Window(cur_counts, cur.missing, cur.infinite)
    return ColumnDrift(
        column=name,
        kind=kind,
        test=chosen,
        score=score,
        threshold=limit,
        drifted=_is_drift(chosen, score, limit),
        psi=psi,
        reference_rows=ref_counts.rows,
        current_rows=cur_counts.rows,
        note=_notes(kind, ref, cur, distinct),
    )


def _distinct_both(reference: st.Counts, current: st.Counts) -> int:
    """Distinct values of both windows together. Only counts up to `FEW_VALUES` change a
    decision (test choice, the constant note), so a side with more than that answers it without
    merging a million values."""
    larger = max(reference.values.size, current.values.size)
    if larger > FEW_VALUES:
        return larger
    return int(np.union1d(reference.values, current.values).size)


def _precheck_threshold(test: str | None, threshold: float | None) -> None:
    """Reject a bad threshold before any data is read. With the test still to be chosen only
    what no test accepts is rejected here; the range of the chosen test is checked later."""
    if threshold is None:
        return
    if test is not None:
        check_threshold(test, threshold)
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValidationError(f"A drift threshold must be a number, not {threshold!r}.")
    if not 0 < float(threshold) < math.inf:
        raise ValidationError(
            f"Threshold {threshold!r} is out of range: thresholds are positive, e.g. 0.05 for a "
            "p-value or 0.1 for a distance."
        )


def _check_names(label: str, mapping: Mapping[str, Any] | None, columns: Sequence[str]) -> None:
    if mapping:
        unknown = [str(c) for c in mapping if c not in columns]
        if unknown:
            raise ValidationError(
                f"{label} names columns that are not in the report: {', '.join(unknown)}."
            )


def _select_columns(
    reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str] | None
) -> list[str]:
    if columns is None:
        chosen = [c for c in reference.columns if _supported(reference[c])]
    else:
        if isinstance(columns, str):
            raise ValidationError("columns must be a list of column names, not one string.")
        chosen = list(dict.fromkeys(columns))
    if not chosen:
        raise ValidationError(
            "There are no numeric or categorical columns to compare; name them with columns=[...]."
        )
    for window, frame in (("reference", reference), ("current", current)):
        missing = [c for c in chosen if c not in frame.columns]
        if missing:
            raise _missing_columns_error(window, missing)
    return chosen


def _check_filled(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str]) -> None:
    """Name every column that is entirely missing in a window, all in one message."""
    problems = []
    for window, frame in (("reference", reference), ("current", current)):
        empty = [str(c) for c in columns if frame[c].isna().all()]
        if empty:
            problems.append(f"in the {window} window: {', '.join(empty)}")
    if problems:
        raise ValidationError(
            "Some columns have no values (every row missing) "
            + "; ".join(problems)
            + ". Leave them out of the report or choose windows in which they are filled."
        )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, str] | None = None,
    tests: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = 0.5,
    workers: int | None = None,
) -> DriftReport:
    """Drift of every column (default: every numeric and categorical column of the reference)
    and the dataset verdict. `kinds`, `tests` and `thresholds` override the defaults per column;
    `workers` threads compute columns in parallel (default: one per CPU core)."""
    for window, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError(f"The {window} window must be a table (DataFrame).")
        if len(frame) == 0:
            raise empty_window_error(window)
    if isinstance(share_threshold, bool) or not 0 < float(share_threshold) <= 1:
        raise ValidationError(
            f"share_threshold {share_threshold!r} is out of range: use a share above 0 and at "
            "most 1, e.g. 0.5."
        )
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValidationError(f"workers must be at least 1, not {workers!r}.")
    chosen = _select_columns(reference, current, columns)
    for label, mapping in (("kinds", kinds), ("tests", tests), ("thresholds", thresholds)):
        _check_names(label, mapping, chosen)
    for kind in (kinds or {}).values():
        _check_kind(kind)
    for test in (tests or {}).values():
        _check_test_name(test)
    for name, limit in (thresholds or {}).items():
        _precheck_threshold((tests or {}).get(name), limit)
    _check_filled(reference, current, chosen)
    resolved = {
        **infer_kinds(reference, [c for c in chosen if c not in (kinds or {})]),
        **(kinds or {}),
    }

    def one(name: str) -> ColumnDrift:
        return column_drift(
            reference[name],
            current[name],
            kind=resolved[name],
            test=(tests or {}).get(name),
            threshold=(thresholds or {}).get(name),
            column=str(name),
        )

    threads = min(int(workers or os.cpu_count() or 1), len(chosen))
    if threads == 1:
        results = [one(c) for c in chosen]
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="drift") as pool:
            results = list(pool.map(one, chosen))
    share = sum(r.drifted for r in results) / len(results)
    return DriftReport(
        columns=tuple(results),
        drift_share=share,
        share_threshold=float(share_threshold),
        dataset_drift=share >= share_threshold,
        reference_rows=len(reference),
        current_rows=len(current),
    )


def _bin_labels(edges: np.ndarray) -> list[str]:
    """ "[a, b)" labels (the last bin closed), with just enough digits to tell bins apart."""
    for digits in range(3, 17):
        text = [f"{e:.{digits}g}" for e in edges]
        if len(set(text)) == len(text):
            break
    labels = [f"[{a}, {b})" for a, b in itertools.pairwise(text)]
    labels[-1] = labels[-1][:-1] + "]"
    return labels


def distribution_overlay(
    reference: pd.Series, current: pd.Series, *, kind: str, bins: int = 30
) -> pd.DataFrame:
    """Both windows' distributions on common buckets, for the overlay chart: columns `bucket`,
    `reference_share`, `current_share` (each share column sums to 1). Numeric columns: `bins`
    equal-width bins over the range of both windows; categorical: one row per category of
    either window."""
    _check_kind(kind)
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
        raise ValidationError(f"bins must be a whole number from 1 to 1000, not {bins!r}.")
    name = str(reference.name if reference.name is not None else "")
    ref_w = _window(reference, kind, name, "reference")
    cur_w = _window(current, kind, name, "current")
    ref, cur = comparable(ref_w.counts, cur_w.counts)
    if kind == NUMERIC:
        low = float(min(ref.values[0], cur.values[0]))
        high = float(max(ref.values[-1], cur.values[-1]))
        if low == high:
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
        labels = _bin_labels(edges)
        ref_hist = st.histogram_counts(ref, edges).astype(np.float64)
        cur_hist = st.histogram_counts(cur, edges).astype(np.float64)
    else:
        keys, ref_int, cur_int = st.align(ref, cur)
        labels = [_label(k) for k in keys]
        ref_hist, cur_hist = ref_int.astype(np.float64), cur_int.astype(np.float64)
    return pd.DataFrame(
        {
            "bucket": labels,
            "reference_share": ref_hist / ref.rows,
            "current_share": cur_hist / cur.rows,
        }
    )
