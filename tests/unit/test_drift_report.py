"""Column drift and the drift report: Evidently's selection rules, verdicts on same and shifted
distributions, every kind of bad input, ordering, serialisation and the overlay data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from core.errors import ValidationError
from core.mlops.drift import (
    CATEGORICAL,
    NUMERIC,
    TESTS,
    ColumnDrift,
    DriftReport,
    choose_test,
    column_drift,
    distribution_overlay,
    drift_report,
    infer_kinds,
)


def normal(seed: int, rows: int, shift: float = 0.0) -> pd.Series:
    return pd.Series(np.random.default_rng(seed).normal(shift, 1.0, rows))


def frames(rows: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    letters = np.array(list("abcd"), dtype=object)
    reference = pd.DataFrame(
        {
            "stable": rng.normal(0, 1, rows),
            "moved": rng.normal(0, 1, rows),
            "plan": rng.choice(letters, rows, p=[0.4, 0.3, 0.2, 0.1]),
            "hour": rng.integers(0, 24, rows),
        }
    )
    current = pd.DataFrame(
        {
            "stable": rng.normal(0, 1, rows),
            "moved": rng.normal(1, 1, rows),
            "plan": rng.choice(letters, rows, p=[0.1, 0.2, 0.3, 0.4]),
            "hour": rng.integers(0, 24, rows),
        }
    )
    return reference, current


# --- Evidently's rules -------------------------------------------------------------------------


def test_infer_kinds_follows_evidently() -> None:
    rows = 100
    frame = pd.DataFrame(
        {
            "float_many": np.linspace(0, 1, rows),
            "float_few": np.tile([0.5, 1.5, 2.5, 3.5, 4.5], rows // 5),
            "int_ten": np.arange(rows) % 10,
            "int_eleven": np.arange(rows) % 11,
            "flag": np.arange(rows) % 2 == 0,
            "text": np.array(["x", "y"] * (rows // 2), dtype=object),
            "string": pd.Series(["p", "q"] * (rows // 2), dtype="string"),
            "category": pd.Series(["u", "v"] * (rows // 2), dtype="category"),
        }
    )
    assert infer_kinds(frame, list(frame.columns)) == {
        "float_many": NUMERIC,
        "float_few": CATEGORICAL,
        "int_ten": CATEGORICAL,
        "int_eleven": NUMERIC,
        "flag": CATEGORICAL,
        "text": CATEGORICAL,
        "string": CATEGORICAL,
        "category": CATEGORICAL,
    }


def test_infer_kinds_rejects_dates_and_missing_columns() -> None:
    frame = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=3), "x": [1.0, 2.0, 3.0]})
    with pytest.raises(ValidationError, match=r"'when'.*numeric and categorical"):
        infer_kinds(frame, ["when"])
    with pytest.raises(ValidationError, match="reference window lacks columns: temp, hum"):
        infer_kinds(frame, ["x", "temp", "hum"])


@pytest.mark.parametrize(
    ("kind", "rows", "unique", "expected"),
    [
        (NUMERIC, 1000, 6, "ks"),
        (NUMERIC, 1001, 6, "wasserstein"),
        (NUMERIC, 1000, 5, "chisquare"),
        (NUMERIC, 1000, 2, "z"),
        (NUMERIC, 5000, 5, "jensenshannon"),
        (CATEGORICAL, 1000, 3, "chisquare"),
        (CATEGORICAL, 1000, 2, "z"),
        (CATEGORICAL, 1000, 1, "z"),
        (CATEGORICAL, 1001, 2, "jensenshannon"),
        (CATEGORICAL, 1001, 50, "jensenshannon"),
    ],
)
def test_choose_test_follows_evidently(kind: str, rows: int, unique: int, expected: str) -> None:
    assert choose_test(kind, rows, unique) == expected


def test_choose_test_rejects_unknown_kind() -> None:
    with pytest.raises(ValidationError, match="valid kinds: numeric, categorical"):
        choose_test("ordinal", 10, 3)


def test_default_tests_per_column() -> None:
    reference, current = frames()
    report = drift_report(reference, current)
    chosen = {c.column: (c.kind, c.test) for c in report.columns}
    assert chosen == {
        "stable": (NUMERIC, "wasserstein"),
        "moved": (NUMERIC, "wasserstein"),
        "plan": (CATEGORICAL, "jensenshannon"),
        "hour": (NUMERIC, "wasserstein"),
    }
    small = drift_report(reference.head(500), current.head(500))
    assert {c.column: c.test for c in small.columns} == {
        "stable": "ks",
        "moved": "ks",
        "plan": "chisquare",
        "hour": "ks",
    }


# --- verdicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_same_distribution_is_not_flagged_and_a_one_sd_shift_is(seed: int) -> None:
    ref = normal(seed, 5000)
    same = column_drift(ref, normal(seed + 100, 5000), kind=NUMERIC)
    assert same.test == "wasserstein" and not same.drifted
    shifted = column_drift(ref, normal(seed + 100, 5000, shift=1.0), kind=NUMERIC)
    assert shifted.drifted and shifted.score == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("test", TESTS)
def test_identical_windows_never_drift(test: str) -> None:
    rng = np.random.default_rng(5)
    if test in ("chisquare", "z"):
        values = pd.Series(rng.choice(np.array(["a", "b"], dtype=object), 4000))
        kind = CATEGORICAL
    else:
        values = pd.Series(rng.normal(0, 1, 4000))
        kind = NUMERIC
    result = column_drift(values, values.copy(), kind=kind, test=test)
    assert not result.drifted
    assert result.psi == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(hs.lists(hs.floats(-1e6, 1e6), min_size=1, max_size=300))
def test_a_window_compared_with_itself_never_drifts(values: list[float]) -> None:
    series = pd.Series(values)
    for kind in (NUMERIC, CATEGORICAL):
        assert not column_drift(series, series.sample(frac=1.0, random_state=1), kind=kind).drifted


def test_small_samples_use_ks_and_catch_a_shift() -> None:
    ref = normal(1, 400)
    assert not column_drift(ref, normal(2, 400), kind=NUMERIC).drifted
    moved = column_drift(ref, normal(2, 400, shift=0.5), kind=NUMERIC)
    assert moved.test == "ks" and moved.drifted and moved.score < 0.05


def test_categorical_shift_is_detected() -> None:
    reference, current = frames()
    result = column_drift(reference["plan"], current["plan"], kind=CATEGORICAL)
    assert result.test == "jensenshannon" and result.drifted
    assert not column_drift(reference["plan"], reference["plan"], kind=CATEGORICAL).drifted


def test_custom_test_and_threshold_per_column() -> None:
    reference, current = frames()
    report = drift_report(
        reference,
        current,
        tests={"stable": "psi", "plan": "chisquare"},
        thresholds={"moved": 5.0, "stable": 0.2},
    )
    assert report.column("stable").test == "psi" and report.column("stable").threshold == 0.2
    assert report.column("plan").test == "chisquare" and report.column("plan").drifted
    # a 1 sd shift is under a threshold of 5 sd
    assert report.column("moved").threshold == 5.0 and not report.column("moved").drifted


def test_dataset_drift_uses_the_share_rule() -> None:
    reference, current = frames()
    report = drift_report(reference, current)
    assert set(report.drifted_columns) == {"moved", "plan"}
    severities = [report.column(c).severity for c in report.drifted_columns]
    assert severities == sorted(severities, reverse=True)
    assert report.drift_share == 0.5 and report.dataset_drift
    stricter = drift_report(reference, current, share_threshold=0.75)
    assert not stricter.dataset_drift
    assert report.reference_rows == len(reference) and report.current_rows == len(current)


def test_threads_do_not_change_the_result() -> None:
    reference, current = frames()
    assert drift_report(reference, current, workers=1) == drift_report(
        reference, current, workers=4
    )


def test_drifted_columns_most_severe_first() -> None:
    def result(name: str, test: str, score: float, threshold: float, psi: float) -> ColumnDrift:
        drifted = score < threshold if test in ("ks", "chisquare", "z") else score >= threshold
        return ColumnDrift(name, NUMERIC, test, score, threshold, drifted, psi, 10, 10)

    report = DriftReport(
        columns=(
            result("mild", "wasserstein", 0.15, 0.1, 0.2),
            result("fine", "wasserstein", 0.01, 0.1, 0.0),
            result("severe", "wasserstein", 2.0, 0.1, 0.9),
            result("p_tiny", "ks", 1e-12, 0.05, 0.3),
            result("p_edge", "ks", 0.04, 0.05, 0.05),
        ),
        drift_share=0.8,
        share_threshold=0.5,
        dataset_drift=True,
        reference_rows=10,
        current_rows=10,
    )
    assert report.drifted_columns == ["severe", "p_tiny", "mild", "p_edge"]


# --- bad input ---------------------------------------------------------------------------------


def test_missing_columns_are_named_with_their_window() -> None:
    reference, current = frames()
    with pytest.raises(ValidationError, match="current window lacks columns: stable, moved"):
        drift_report(reference, current.drop(columns=["stable", "moved"]))
    with pytest.raises(ValidationError, match="reference window lacks columns: extra"):
        drift_report(reference, current.assign(extra=1), columns=["stable", "extra"])


@pytest.mark.parametrize("window", ["reference", "current"])
def test_empty_window_says_which_and_suggests_a_wider_one(window: str) -> None:
    reference, current = frames()
    if window == "reference":
        reference = reference.iloc[:0]
    else:
        current = current.iloc[:0]
    with pytest.raises(ValidationError, match=f"The {window} window is empty.*wider"):
        drift_report(reference, current)
    with pytest.raises(ValidationError, match=f"The {window} window is empty"):
        column_drift(reference["stable"], current["stable"], kind=NUMERIC)


def test_all_null_columns_are_named() -> None:
    reference, current = frames()
    current["stable"] = np.nan
    current["plan"] = None
    with pytest.raises(ValidationError, match="current window: stable, plan"):
        drift_report(reference, current)
    with pytest.raises(ValidationError, match="'stable' has no values in the current window"):
        column_drift(reference["stable"], current["stable"], kind=NUMERIC)


def test_constant_in_both_windows_is_not_drift() -> None:
    ref, cur = pd.Series([7.0] * 3000), pd.Series([7.0] * 2000)
    for kind, test in (
        (NUMERIC, None),
        (NUMERIC, "ks"),
        (CATEGORICAL, None),
        (CATEGORICAL, "chisquare"),
    ):
        result = column_drift(ref, cur, kind=kind, test=test)
        assert not result.drifted, (kind, test)
        assert result.note == "constant in both windows"
        assert np.isfinite(result.score) and np.isfinite(result.psi)


def test_constant_reference_with_a_moved_current_is_drift() -> None:
    ref, cur = pd.Series([7.0] * 3000), pd.Series([7.0] * 1500 + [8.0] * 1500)
    result = column_drift(ref, cur, kind=NUMERIC)
    assert result.drifted and np.isfinite(result.score)
    assert result.note == "constant in the reference window"
    moved = column_drift(pd.Series([0] * 3000), pd.Series([1] * 3000), kind=CATEGORICAL)
    assert moved.drifted and moved.score == pytest.approx(np.sqrt(np.log(2)))


def test_new_categories_are_listed_and_chisquare_copes() -> None:
    ref = pd.Series(["a", "b"] * 300)
    cur = pd.Series(["a", "b"] * 250 + ["c", "d", "e", "f", "g", "h", "i"] * 10)
    result = column_drift(ref, cur, kind=CATEGORICAL, test="chisquare")
    assert result.drifted and result.score == 0.0
    assert "new categories: c, d, e, f, g (+2 more)" in result.note


def test_mixed_types_are_compared_as_strings() -> None:
    ref = pd.Series([1, 2, 3] * 400)
    cur = pd.Series(["1", "2", "3"] * 400, dtype=object)
    result = column_drift(ref, cur, kind=CATEGORICAL)
    assert not result.drifted and "new categories" not in result.note
    mixed = pd.Series([1, "1", 2.5, "x", None] * 300, dtype=object)
    assert not column_drift(mixed, mixed.copy(), kind=CATEGORICAL).drifted


def test_missing_and_infinite_values_are_dropped_and_noted() -> None:
    ref = normal(3, 3000)
    cur = normal(4, 3000)
    ref.iloc[:12] = np.nan
    cur.iloc[:5] = np.inf
    cur.iloc[5:7] = np.nan
    result = column_drift(ref, cur, kind=NUMERIC)
    assert result.reference_rows == 2988 and result.current_rows == 2993
    assert "14 missing values dropped (reference 12, current 2)" in result.note
    assert "5 infinite values dropped (reference 0, current 5)" in result.note
    assert not result.drifted


def test_unknown_names_and_out_of_range_thresholds_list_what_is_valid() -> None:
    reference, current = frames()
    with pytest.raises(ValidationError, match="valid tests: ks, wasserstein, chisquare"):
        drift_report(reference, current, tests={"stable": "t-test"})
    with pytest.raises(ValidationError, match="valid kinds: numeric, categorical"):
        drift_report(reference, current, kinds={"stable": "ordinal"})
    with pytest.raises(ValidationError, match=r"out of range for 'ks'.*between 0 and 1"):
        drift_report(reference, current, tests={"stable": "ks"}, thresholds={"stable": 1.5})
    with pytest.raises(ValidationError, match="out of range"):
        drift_report(reference, current, thresholds={"stable": -0.1})
    with pytest.raises(ValidationError, match="out of range for 'chisquare'"):
        column_drift(
            reference["plan"].head(500), current["plan"].head(500), kind=CATEGORICAL, threshold=2.0
        )
    with pytest.raises(
        ValidationError, match="tests names columns that are not in the report: nope"
    ):
        drift_report(reference, current, tests={"nope": "ks"})
    with pytest.raises(ValidationError, match="share_threshold"):
        drift_report(reference, current, share_threshold=0)


def test_tests_that_need_order_are_refused_for_categories() -> None:
    reference, current = frames()
    with pytest.raises(
        ValidationError, match="'plan' is categorical; use one of chisquare, jensenshannon, psi, z"
    ):
        column_drift(reference["plan"], current["plan"], kind=CATEGORICAL, test="wasserstein")
    with pytest.raises(ValidationError, match=r"'plan' is not numeric.*categorical"):
        column_drift(reference["plan"], current["plan"], kind=NUMERIC)


def test_default_columns_skip_dates() -> None:
    reference, current = frames()
    reference["at"] = pd.Timestamp("2026-01-01")
    current["at"] = pd.Timestamp("2026-02-01")
    assert [c.column for c in drift_report(reference, current).columns] == [
        "stable",
        "moved",
        "plan",
        "hour",
    ]


# --- serialisation and overlay -----------------------------------------------------------------


def test_to_dict_from_dict_round_trip() -> None:
    reference, current = frames()
    report = drift_report(reference, current)
    for result in report.columns:
        assert ColumnDrift.from_dict(result.to_dict()) == result
    assert DriftReport.from_dict(report.to_dict()) == report
    broken = report.columns[0].to_dict()
    del broken["score"]
    with pytest.raises(ValidationError, match="lacks: score"):
        ColumnDrift.from_dict(broken)
    assert list(report.to_frame()["column"]) == ["stable", "moved", "plan", "hour"]


def test_overlay_shares_sum_to_one_on_common_buckets() -> None:
    reference, current = frames()
    numeric = distribution_overlay(reference["moved"], current["moved"], kind=NUMERIC, bins=20)
    assert list(numeric.columns) == ["bucket", "reference_share", "current_share"]
    assert len(numeric) == 20 and numeric["bucket"].is_unique
    assert numeric["reference_share"].sum() == pytest.approx(1.0)
    assert numeric["current_share"].sum() == pytest.approx(1.0)
    # the shift shows: the current mass sits further right
    centre = np.arange(20)
    assert (centre * numeric["current_share"]).sum() > (centre * numeric["reference_share"]).sum()

    ref = pd.Series(["a", "b", None, "b"])
    cur = pd.Series(["b", "c", "c"])
    categorical = distribution_overlay(ref, cur, kind=CATEGORICAL)
    assert list(categorical["bucket"]) == ["a", "b", "c"]
    assert list(categorical["reference_share"]) == pytest.approx([1 / 3, 2 / 3, 0])
    assert list(categorical["current_share"]) == pytest.approx([0, 1 / 3, 2 / 3])

    constant = distribution_overlay(pd.Series([2.0] * 5), pd.Series([2.0] * 3), kind=NUMERIC)
    assert constant["reference_share"].sum() == pytest.approx(1.0)
    assert constant["current_share"].sum() == pytest.approx(1.0)
