"""Turning one column of one window into `Counts`: which values count, which are dropped, and how
values of different types are made comparable.

Kept apart from the tests so that every rule about messy input (missing values, infinities,
mixed types, unused categories) lives in one place and is applied the same way to both windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ValidationError
from core.mlops.drift.stattests import Counts, counts_of


@dataclass(frozen=True)
class Window:
    """A column's values in one window, and how many rows were left out and why."""

    counts: Counts
    missing: int = 0
    infinite: int = 0


def empty_window_error(window: str) -> ValidationError:
    return ValidationError(
        f"The {window} window is empty (no rows); choose a wider {window} window or check the "
        "filter that selected it."
    )


def _no_values_error(column: str, window: str, rows: int) -> ValidationError:
    return ValidationError(
        f"Column '{column}' has no values in the {window} window (all {rows:,} rows are missing); "
        "leave it out of the report or choose a window in which it is filled."
    )


def _is_plain_numeric(series: pd.Series) -> bool:
    dtype = series.dtype
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def numeric_window(series: pd.Series, *, column: str, window: str) -> Window:
    """Finite numeric values; NaN and +-inf are dropped (as Evidently does) and counted."""
    rows = len(series)
    if rows == 0:
        raise empty_window_error(window)
    if not _is_plain_numeric(series):
        raise ValidationError(
            f"Column '{column}' is not numeric in the {window} window (type {series.dtype}); "
            f"declare it categorical (kinds={{'{column}': 'categorical'}}) or fix its values."
        )
    if pd.api.types.is_complex_dtype(series.dtype):
        raise ValidationError(
            f"Column '{column}' holds complex numbers in the {window} window; drift is computed "
            "for real numbers and categories only."
        )
    integer = pd.api.types.is_integer_dtype(series.dtype)
    if integer and not series.hasnans:
        # numpy integers have no missing values and no infinities: nothing to filter
        values = series.to_numpy(dtype=np.int64 if series.dtype.kind == "i" else None)
        return Window(counts_of(values, integer=True))
    raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(raw)
    missing = infinite = 0
    if not finite.all():
        missing = int(np.isnan(raw).sum())
        infinite = int((~finite).sum()) - missing
        raw = raw[finite]
    if raw.size == 0:
        raise _no_values_error(column, window, rows)
    if integer:
        # a nullable integer column: the filtered floats are whole numbers, keep them integers
        # so that numpy's integer bin-width rule (PSI) applies as it does to the raw column
        return Window(counts_of(raw.astype(np.int64), integer=True), missing, infinite)
    return Window(counts_of(raw), missing, infinite)


def categorical_window(series: pd.Series, *, column: str, window: str) -> Window:
    """Non-null values as categories. Numbers stay numbers (1 and 1.0 are one category); an
    object column mixing types is compared as strings, since ordering them needs one type."""
    rows = len(series)
    if rows == 0:
        raise empty_window_error(window)
    if _is_plain_numeric(series):
        return numeric_window(series, column=column, window=window)
    if pd.api.types.is_bool_dtype(series.dtype):
        present = series.dropna()
        if present.empty:
            raise _no_values_error(column, window, rows)
        return Window(counts_of(present.to_numpy(dtype=bool)), rows - len(present))
    present = series.dropna()
    if present.empty:
        raise _no_values_error(column, window, rows)
    tally = present.value_counts(sort=False)
    tally = tally[tally > 0]  # a categorical dtype lists its unused categories with count 0
    keys = tally.index.to_numpy(dtype=object)
    counts = tally.to_numpy(dtype=np.int64)
    if all(isinstance(k, str) for k in keys):
        order = np.argsort(keys)
        return Window(Counts(keys[order], counts[order]), rows - len(present))
    if all(isinstance(k, (int, float, np.number)) and not isinstance(k, bool) for k in keys):
        numbers = np.asarray(keys, dtype=np.float64)
        return Window(_regroup(numbers, counts), rows - len(present))
    return Window(as_strings(Counts(keys, counts)), rows - len(present))


def _regroup(keys: np.ndarray, counts: np.ndarray) -> Counts:
    """Sum counts of keys that became equal (1 and 1.0, or 1 and "1" once stringified)."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=counts, minlength=distinct.size)
    return Counts(distinct, summed.astype(np.int64))


def as_strings(counts: Counts) -> Counts:
    keys = np.array([str(k) for k in counts.values], dtype=object)
    return _regroup(keys, counts.counts)


def comparable(reference: Counts, current: Counts) -> tuple[Counts, Counts]:
    """Both windows with values of one comparable type: numbers with numbers, booleans with
    booleans, and otherwise both as strings (a column read as int in one window and as text in
    the other must not report every value as a new category)."""
    kinds = {reference.values.dtype.kind, current.values.dtype.kind}
    if kinds <= set("iuf") or kinds == {"b"}:
        return reference, current
    if (
        kinds == {"O"}
        and all(isinstance(k, str) for k in reference.values)
        and all(isinstance(k, str) for k in current.values)
    ):
        return reference, current
    return as_strings(reference), as_strings(current)
