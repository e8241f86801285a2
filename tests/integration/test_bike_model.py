"""The demo bike-demand model for real: the bundled UCI data, scikit-learn training, and versions
logged and registered in a real MLflow SQLite store (shared, see mlops_fixtures)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core.errors import NotFound, ValidationError
from core.mlops.bike import (
    CATEGORICAL,
    DATA_FILE,
    FEATURES,
    TARGET,
    evaluate,
    load_hours,
    load_version,
    production_stream,
    train_and_register,
    train_model,
)
from tests.integration import mlops_fixtures
from tests.integration.mlops_fixtures import BIKE, ODD_NAMES, BikeStore

bike_store = mlops_fixtures.bike_store  # the shared session store, used here by name

# mlflow 3.17's SQL store still uses a loader strategy that SQLAlchemy 2.1 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _between(hours: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    return hours[(hours["dteday"] >= start) & (hours["dteday"] <= end)]


def test_features_leave_out_the_leaks() -> None:
    assert not {"casual", "registered", "cnt", "instant", "dteday"} & set(FEATURES)
    assert "yr" in FEATURES  # the year is known at prediction time; it carries the growth
    assert set(CATEGORICAL) == {"season", "weathersit"} <= set(FEATURES)
    assert TARGET == "cnt"


def test_hours_are_typed_with_a_utc_timestamp() -> None:
    hours = load_hours()
    assert len(hours) == 17379
    assert str(hours["ts"].dt.tz) == "UTC" and hours["ts"].is_monotonic_increasing
    assert hours["ts"].iloc[0] == pd.Timestamp("2011-01-01 00:00", tz="UTC")
    assert hours["ts"].iloc[-1] == pd.Timestamp("2012-12-31 23:00", tz="UTC")
    expected = (hours["dteday"] + pd.to_timedelta(hours["hr"], unit="h")).dt.tz_localize("UTC")
    assert (hours["ts"] == expected).all()
    assert all(hours[c].dtype == np.int64 for c in ("season", "hr", "weathersit", "cnt"))
    assert hours["temp"].dtype == np.float64


def test_a_file_lacking_columns_is_refused(tmp_path: Path) -> None:
    frame = pd.read_csv(DATA_FILE, nrows=50).drop(columns=["hum", "windspeed"])
    frame.to_csv(tmp_path / "hours.csv", index=False)
    with pytest.raises(ValidationError, match=r"lacks the column.*hum, windspeed"):
        load_hours(tmp_path / "hours.csv")


def test_bad_values_and_missing_files_are_named(tmp_path: Path) -> None:
    lines = DATA_FILE.read_text().splitlines()[:10]
    lines[4] = lines[4].replace(",0.24,", ",warm,", 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines))
    with pytest.raises(ValidationError, match=r"temp is not a number \(first on line 5\)"):
        load_hours(tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValidationError, match="not a readable CSV"):
        load_hours(tmp_path / "empty.csv")
    with pytest.raises(NotFound):
        load_hours(tmp_path / "absent.csv")


def test_training_is_deterministic_and_declares_categories(bike_store: BikeStore) -> None:
    sample = _between(bike_store.hours, "2011-03-01", "2011-04-30")
    first, second = train_model(sample, seed=3), train_model(sample, seed=3)
    np.testing.assert_array_equal(
        first.predict(sample[list(FEATURES)]), second.predict(sample[list(FEATURES)])
    )
    assert list(first.feature_names_in_) == list(FEATURES)
    categorical = dict(zip(FEATURES, first.is_categorical_, strict=True))
    assert [c for c, flag in categorical.items() if flag] == list(CATEGORICAL)


def test_v1_loses_accuracy_on_2012(bike_store: BikeStore) -> None:
    v1 = load_version(bike_store.tracking, BIKE, bike_store.v1.version)
    on_2012 = evaluate(v1, _between(bike_store.hours, "2012-01-01", "2012-12-31"))
    validation = bike_store.v1.metrics["val_mae"]
    assert 20 < validation < 45
    assert on_2012["mae"] > 2 * validation  # the business grew; the model cannot know it


def test_retraining_on_later_data_learns_the_growth(bike_store: BikeStore) -> None:
    """v2 saw 2012 H1 with yr=1: on 2012 H2 it roughly halves v1's error. Without the year,
    its only July-December rows would be 2011's and retraining would not help."""
    tracking, hours = bike_store.tracking, bike_store.hours
    h2 = _between(hours, "2012-07-01", "2012-12-31")
    v1 = evaluate(load_version(tracking, BIKE, "champion"), h2)["mae"]
    v2 = evaluate(load_version(tracking, BIKE, "challenger"), h2)["mae"]
    assert v2 < 0.6 * v1

    no_trend = [f for f in FEATURES if f != "yr"]
    first = train_model(_between(hours, "2011-01-01", "2011-12-31"), features=no_trend)
    second = train_model(_between(hours, "2011-01-01", "2012-06-30"), features=no_trend)
    first_mae, second_mae = evaluate(first, h2)["mae"], evaluate(second, h2)["mae"]
    assert abs(second_mae - first_mae) < 0.05 * first_mae


def test_versions_load_by_number_and_alias(bike_store: BikeStore) -> None:
    sample = _between(bike_store.hours, "2012-08-01", "2012-08-02")
    by_number = load_version(bike_store.tracking, BIKE, 1)
    by_alias = load_version(bike_store.tracking, BIKE, "champion")
    challenger = load_version(bike_store.tracking, BIKE, "challenger")
    np.testing.assert_array_equal(
        by_number.predict(sample[list(FEATURES)]), by_alias.predict(sample[list(FEATURES)])
    )
    assert not np.array_equal(
        by_number.predict(sample[list(FEATURES)]), challenger.predict(sample[list(FEATURES)])
    )


def test_unknown_versions_and_aliases_list_the_valid_ones(bike_store: BikeStore) -> None:
    tracking = bike_store.tracking
    with pytest.raises(
        NotFound, match=r"Versions: 1, 2; aliases: challenger \(v2\), champion \(v1\)"
    ):
        load_version(tracking, BIKE, "7")
    with pytest.raises(NotFound, match="no version or alias 'production'"):
        load_version(tracking, BIKE, "production")
    with pytest.raises(NotFound, match=f"Registered models.*{BIKE}"):
        load_version(tracking, "no-such-model", "1")


def test_only_skops_sklearn_models_are_loaded(bike_store: BikeStore) -> None:
    with pytest.raises(ValidationError, match="not a scikit-learn model saved in the skops"):
        load_version(bike_store.tracking, ODD_NAMES[0], "1")


def test_production_stream(bike_store: BikeStore) -> None:
    model = load_version(bike_store.tracking, BIKE, "champion")
    week = _between(bike_store.hours, "2012-07-01", "2012-07-07")
    stream = production_stream(model, week.sample(frac=1, random_state=0))
    assert list(stream.columns) == ["ts", *FEATURES, "prediction", "actual"]
    assert len(stream) == len(week) == 7 * 24 and stream["ts"].is_monotonic_increasing
    assert stream["prediction"].dtype == np.float64 and (stream["prediction"] >= 0).all()
    assert stream["actual"].tolist() == week[TARGET].astype(float).tolist()

    class Pessimist:  # a model whose raw output can go below zero
        def predict(self, frame: pd.DataFrame) -> Any:
            return np.full(len(frame), -3.0)

    assert (production_stream(Pessimist(), week)["prediction"] == 0.0).all()
    with pytest.raises(ValidationError, match="ts"):
        production_stream(model, week.drop(columns=["ts"]))


def test_bad_training_requests_are_refused(bike_store: BikeStore) -> None:
    tracking = bike_store.tracking
    with pytest.raises(ValidationError, match="reversed"):
        train_and_register(
            tracking, train_start=date(2012, 1, 1), train_end=date(2011, 1, 1), description="x"
        )
    with pytest.raises(ValidationError, match=r"cover 2011-01-01\.\.2012-12-31"):
        train_and_register(
            tracking, train_start=date(2014, 1, 1), train_end=date(2014, 6, 1), description="x"
        )
    with pytest.raises(ValidationError, match="Model name"):
        train_and_register(
            tracking,
            name="bad'name",
            train_start=date(2011, 1, 1),
            train_end=date(2011, 6, 1),
            description="x",
        )
