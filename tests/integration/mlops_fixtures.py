"""One real MLflow store (SQLite under a temporary OMNI_HOME) with the bike-demand model trained and
registered twice, shared by the bike model and model registry tests. Creating the store and
training cost 10-20 s on two cores, so it is built once per run and the tests only read it.

Test modules import `bike_store` (the session fixture) from here:
`from tests.integration import mlops_fixtures` and `bike_store = mlops_fixtures.bike_store`.

Besides v1 (2011, alias champion) and v2 (2011-01-01..2012-06-30, alias challenger), the store
holds a model logged without a signature, and models with quotes in their names registered from
a bare directory (no MLmodel at all), as `omni rag tune` registers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from core.config import reload_settings
from core.mlops.bike import (
    SKOPS_TRUSTED_TYPES,
    TrainedVersion,
    load_hours,
    train_and_register,
    train_model,
)
from core.mlops.tracking import Tracking, configure_mlflow, experiment_id
from tests.conftest import use_home

BIKE = "bike-demand-test"
UNSIGNED = "bike-demand-unsigned"
# MLflow forbids only '/' and ':' in names; the filter syntax has no escape for quotes
ODD_NAMES = ("ann's model", 'the "best" model', "both ' and \" quotes")


@dataclass(frozen=True)
class BikeStore:
    home: Path
    tracking: Tracking
    v1: TrainedVersion
    v2: TrainedVersion
    hours: pd.DataFrame


def _log_unsigned(tracking: Tracking, hours: pd.DataFrame) -> None:
    """A small model logged with no signature and no input example, registered as version 1."""
    import mlflow

    model = train_model(hours[hours["dteday"] < "2011-02-01"])
    with mlflow.start_run(experiment_id=experiment_id(tracking, "omni-bike-demand")) as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            pip_requirements=["scikit-learn"],
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        )
    client = tracking.client
    client.create_registered_model(UNSIGNED)
    client.create_model_version(
        UNSIGNED, source=info.model_uri, run_id=run.info.run_id, model_id=info.model_id
    )


def _register_bare(tracking: Tracking, home: Path) -> None:
    folder = home / "bare-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 16)
    for name in ODD_NAMES:
        tracking.client.create_registered_model(name, description=f"odd name {name}")
        tracking.client.create_model_version(name, source=folder.as_uri())


_BUILT: dict[str, BikeStore] = {}


@pytest.fixture(scope="session")
def bike_store(tmp_path_factory: pytest.TempPathFactory) -> BikeStore:
    """The store, built on first use. Each test module binds this function under its own name,
    which pytest registers as a separate fixture per module: the store is kept here so that
    every module gets the same one."""
    if "store" not in _BUILT:
        _BUILT["store"] = _build(tmp_path_factory)
    return _BUILT["store"]


def _build(tmp_path_factory: pytest.TempPathFactory) -> BikeStore:
    home = tmp_path_factory.mktemp("bike-mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OMNI_MLFLOW_URI", raising=False)
        use_home(mp, home)
        tracking = configure_mlflow()
        hours = load_hours()
        v1 = train_and_register(
            tracking,
            name=BIKE,
            train_start=date(2011, 1, 1),
            train_end=date(2011, 12, 31),
            description="trained on 2011",
            tags={"owner": "ml-team"},
        )
        v2 = train_and_register(
            tracking,
            name=BIKE,
            train_start=date(2011, 1, 1),
            train_end=date(2012, 6, 30),
            description="retrained through June 2012",
        )
        tracking.client.set_registered_model_alias(BIKE, "champion", v1.version)
        tracking.client.set_registered_model_alias(BIKE, "challenger", v2.version)
        _log_unsigned(tracking, hours)
        _register_bare(tracking, home)
    reload_settings()
    return BikeStore(home=home, tracking=tracking, v1=v1, v2=v2, hours=hours)
