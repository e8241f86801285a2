"""The read side of the model registry against a real MLflow SQLite store: the bike-demand model
trained and registered twice, a version logged without a signature, and models with quotes in
their names (see mlops_fixtures)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mlflow
import pytest

from core.errors import NotFound, ValidationError
from core.mlops.bike import FEATURES, MODEL_DESCRIPTION, TARGET
from core.mlops.registry import (
    ModelSummary,
    get_version,
    list_models,
    list_versions,
    metric_history,
    model_signature_columns,
    run_details,
)
from tests.integration import mlops_fixtures
from tests.integration.mlops_fixtures import BIKE, ODD_NAMES, UNSIGNED, BikeStore

bike_store = mlops_fixtures.bike_store  # the shared session store, used here by name

pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _by_name(store: BikeStore) -> dict[str, ModelSummary]:
    return {m.name: m for m in list_models(store.tracking)}


def test_models_are_listed_with_versions_and_aliases(bike_store: BikeStore) -> None:
    models = _by_name(bike_store)
    assert {BIKE, UNSIGNED, *ODD_NAMES} <= set(models)
    assert list(models) == sorted(models)
    bike = models[BIKE]
    assert (bike.versions, bike.latest_version) == (2, "2")
    assert bike.aliases == {"champion": "1", "challenger": "2"}
    assert bike.description == MODEL_DESCRIPTION
    assert bike.updated_at is not None and bike.updated_at.tzinfo is UTC
    assert models[UNSIGNED].aliases == {} and models[UNSIGNED].latest_version == "1"


def test_versions_newest_first_with_signature(bike_store: BikeStore) -> None:
    newest, oldest = list_versions(bike_store.tracking, BIKE)
    assert (newest.version, oldest.version) == ("2", "1")
    assert (newest.aliases, oldest.aliases) == (("challenger",), ("champion",))
    assert oldest.run_id == bike_store.v1.run_id and newest.run_id == bike_store.v2.run_id
    assert oldest.description == "trained on 2011"
    assert oldest.tags == {
        "owner": "ml-team",
        "train_start": "2011-01-01",
        "train_end": "2011-12-31",
    }
    assert oldest.status == "READY" and oldest.created_at.tzinfo is UTC
    # MLflow stamps versions with its own clock (the system's, not the console's): a version
    # is registered after its run started, both read from milliseconds as UTC
    run_started = bike_store.tracking.client.get_run(bike_store.v1.run_id).info.start_time
    assert datetime.fromtimestamp(run_started / 1000, UTC) <= oldest.created_at
    assert oldest.created_at <= newest.created_at
    assert oldest.source == f"models:/{bike_store.v1.model_id}"
    assert oldest.model_id == bike_store.v1.model_id
    assert oldest.has_signature
    inputs = dict(oldest.signature_inputs)
    assert list(inputs) == list(FEATURES)
    assert inputs["hr"] == "long" and inputs["temp"] == "double"
    assert oldest.signature_outputs == (("prediction", "double"),)


def test_one_version_by_number_or_alias(bike_store: BikeStore) -> None:
    tracking = bike_store.tracking
    assert get_version(tracking, BIKE, "champion") == get_version(tracking, BIKE, 1)
    assert get_version(tracking, BIKE, "challenger").version == "2"


def test_run_details_hold_params_metrics_and_datasets(bike_store: BikeStore) -> None:
    v1 = bike_store.v1
    run = run_details(bike_store.tracking, v1.run_id)
    assert (run.run_id, run.experiment, run.status) == (v1.run_id, "omni-bike-demand", "FINISHED")
    assert run.start_time is not None and run.end_time is not None
    assert run.start_time <= run.end_time
    assert run.params["train_start"] == "2011-01-01" and run.params["train_end"] == "2011-12-31"
    assert run.params["features"] == ",".join(FEATURES)
    assert run.params["loss"] == "poisson" and run.params["max_iter"] == "200"
    assert "last 20%" in run.params["validation"]
    assert run.params["validation_start"] == "2011-10-20"
    for key in ("val_mae", "val_rmse", "val_r2"):
        assert run.metrics[key] == pytest.approx(v1.metrics[key])
    datasets = {d.context: d for d in run.datasets}
    assert set(datasets) == {"training", "validation"}
    training, validation = datasets["training"], datasets["validation"]
    assert training.rows == int(run.params["train_rows"]) == 8645  # 2011 lacks a few hours
    assert validation.rows == int(run.params["validation_rows"])
    assert training.columns == ("dteday", *FEATURES, TARGET)
    assert training.source_type == "local" and "hour.csv" in training.source
    assert training.digest and training.digest != validation.digest
    assert run.run_name == f"{BIKE} 2011-01-01..2011-12-31"


def test_metric_history_is_the_validation_curve(bike_store: BikeStore) -> None:
    tracking, run_id = bike_store.tracking, bike_store.v1.run_id
    curve = metric_history(tracking, run_id, "val_mae")
    steps = [step for step, _ in curve]
    assert steps == list(range(10, 201, 10))
    assert curve[-1][1] == pytest.approx(bike_store.v1.metrics["val_mae"])
    assert curve[0][1] > curve[-1][1]  # boosting lowers the error
    with pytest.raises(NotFound, match="Its metrics: train_seconds, val_mae, val_r2, val_rmse"):
        metric_history(tracking, run_id, "loss")
    with pytest.raises(NotFound, match="No MLflow run"):
        metric_history(tracking, "0" * 32, "val_mae")
    with pytest.raises(ValidationError, match="not an MLflow run id"):
        run_details(tracking, "x' OR 1=1")


def test_signature_columns_or_none(bike_store: BikeStore) -> None:
    tracking = bike_store.tracking
    assert model_signature_columns(tracking, BIKE, "champion") == list(FEATURES)
    assert model_signature_columns(tracking, UNSIGNED, "1") is None
    unsigned = get_version(tracking, UNSIGNED, "1")
    assert not unsigned.has_signature
    assert unsigned.signature_inputs == unsigned.signature_outputs == ()
    bare = get_version(tracking, ODD_NAMES[0], "1")  # registered from a directory, no MLmodel
    assert not bare.has_signature
    assert model_signature_columns(tracking, ODD_NAMES[0], "1") is None


def test_unknown_names_versions_and_aliases(bike_store: BikeStore) -> None:
    tracking = bike_store.tracking
    with pytest.raises(NotFound, match=f"No registered model named 'nope'.*{BIKE}"):
        list_versions(tracking, "nope")
    with pytest.raises(NotFound, match=r"no version or alias '9'\. Versions: 1, 2"):
        get_version(tracking, BIKE, 9)
    with pytest.raises(NotFound, match=r"aliases: challenger \(v2\), champion \(v1\)"):
        model_signature_columns(tracking, BIKE, "production")
    with pytest.raises(ValidationError):
        list_versions(tracking, "")


@pytest.mark.parametrize("name", ODD_NAMES)
def test_quotes_in_names_do_not_break_the_filters(bike_store: BikeStore, name: str) -> None:
    (version,) = list_versions(bike_store.tracking, name)
    assert (version.name, version.version) == (name, "1")
    assert version.source.startswith("file://")


def test_an_injected_filter_matches_nothing(bike_store: BikeStore) -> None:
    for name in ("x' OR name LIKE '%", 'x" OR name LIKE "%'):
        with pytest.raises(NotFound, match="No registered model named"):
            list_versions(bike_store.tracking, name)


def test_reads_use_the_tracking_not_mlflows_global_uri(
    bike_store: BikeStore, tmp_path: Path
) -> None:
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/elsewhere.db")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path}/elsewhere.db")
    try:
        assert get_version(bike_store.tracking, BIKE, "champion").has_signature
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
