"""The demo model: hourly bike rentals (UCI Bike Sharing, Washington D.C., 2011-2012).

A scikit-learn HistGradientBoostingRegressor with a Poisson loss (the target is a count, and its
spread grows with its level) on the year, calendar and weather features; `casual` and
`registered` are left out (they sum to the target).

`yr` is what lets a retrained model learn the growth: the 2011 model only ever saw yr=0, so on
2012 it predicts 2011's demand (MAE 92.0 on July-December 2012, against 32.6 on its own late-2011
validation days), and a monitor sees both the new year value and the error rise. Retrained
through June 2012, the second version halves that error (44.1). Without `yr` retraining would not
help (92.2): the only July-December rows it sees are 2011's and no other feature tells the years
apart. (The year is known when a prediction is made, so it is no leak; it does mean a model must
be retrained to learn each new year's level, which is the demo's point.)

`train_and_register` trains on a date range, validates on the last 20% of the range's days (a
model fitted on the first 80%), refits on the whole range, logs the run to the MLflow experiment
"omni-bike-demand" (params, validation metrics with a learning curve, the training and validation
data sets, the model with a signature and an input example) and registers it as a new version.

Models are saved in MLflow's default sklearn format, skops, and `load_version` loads them with the
allow-list of types written here, not the one stored beside the model (a crafted MLmodel file
could widen that one); anything else is refused rather than unpickled.

The data set's hours are local to Washington; the stream treats them as UTC, which shifts nothing
that matters for a demo and keeps every timestamp in the console's single time zone.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from core.clock import epoch_seconds
from core.errors import ConfigurationError, NotFound, ValidationError
from core.mlops.registry import fetch_artifact, model_artifact_uri, read_mlmodel, resolve_version
from core.mlops.tracking import Tracking, experiment_id

MODEL_NAME = "bike-demand"
EXPERIMENT = "omni-bike-demand"
DATA_FILE = Path(__file__).resolve().parents[2] / "data" / "bike-sharing" / "hour.csv"
DATASET_NAME = "bike-sharing-hourly"
MODEL_DESCRIPTION = (
    "Hourly bike rentals (UCI Bike Sharing, Washington D.C.) from the year, calendar and "
    "weather: HistGradientBoostingRegressor, Poisson loss (core.mlops.bike)."
)

FEATURES: tuple[str, ...] = (
    "season",
    "yr",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
)
CATEGORICAL: tuple[str, ...] = ("season", "weathersit")
TARGET = "cnt"
VALIDATION_FRACTION = 0.2

# fixed boosting rounds without early stopping: early stopping would hold out a random split,
# and a fixed budget keeps training deterministic and about a second long on two cores
HYPERPARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "loss": "poisson",
        "learning_rate": 0.1,
        "max_iter": 200,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 20,
        "l2_regularization": 0.0,
        "early_stopping": False,
    }
)
CURVE_EVERY = 10  # boosting rounds between points of the logged validation curve

# what a fitted HistGradientBoostingRegressor holds besides plain sklearn and numpy types (what
# skops reports for one with named categorical features); nothing else is loaded
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
)

_INTEGER_COLUMNS = (
    "instant",
    "season",
    "yr",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "casual",
    "registered",
    "cnt",
)
_FLOAT_COLUMNS = ("temp", "atemp", "hum", "windspeed")
_RANGES = {"hr": (0, 23), "season": (1, 4), "mnth": (1, 12), "weekday": (0, 6)}
_RANGES |= {"weathersit": (1, 4), "holiday": (0, 1), "workingday": (0, 1), "cnt": (0, 10**6)}
REQUIRED_COLUMNS: tuple[str, ...] = ("dteday", *FEATURES, TARGET)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_MIN_DAYS = 5  # fewer days cannot be split into a fit part and a validation part


@dataclass(frozen=True)
class TrainedVersion:
    name: str
    version: str
    run_id: str
    metrics: dict[str, float]  # val_mae, val_rmse, val_r2 (last 20% of the range's days)
    model_id: str | None = None
    validation_start: date | None = None


# ---------------------------------------------------------------------------------------- data


def load_hours(path: Path | None = None) -> pd.DataFrame:
    """The hourly rentals file, typed and sorted, with `ts` (tz-aware UTC start of the hour) added.

    ValidationError names the missing columns, or the column and line of a bad value."""
    path = Path(path) if path is not None else DATA_FILE
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise NotFound(f"No bike-sharing data file at {path}.") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path.name} is not a readable CSV file: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValidationError(
            f"{path.name} lacks the column(s) {', '.join(missing)}; an hourly bike-sharing file "
            f"needs {', '.join(REQUIRED_COLUMNS)}."
        )
    frame = pd.DataFrame(index=raw.index)
    day = pd.to_datetime(raw["dteday"].str.strip(), format="%Y-%m-%d", errors="coerce")
    _reject(path, "dteday", day.isna(), "is not a date (YYYY-MM-DD)")
    frame["dteday"] = day
    for column in raw.columns:
        if column in _INTEGER_COLUMNS or column in _FLOAT_COLUMNS:
            values = pd.to_numeric(raw[column].str.strip(), errors="coerce")
            _reject(path, column, values.isna() | ~np.isfinite(values), "is not a number")
            if column in _INTEGER_COLUMNS:
                _reject(path, column, values % 1 != 0, "is not a whole number")
                values = values.astype("int64")
            else:
                values = values.astype("float64")
            low, high = _RANGES.get(column, (-math.inf, math.inf))
            _reject(path, column, (values < low) | (values > high), f"is outside {low}..{high}")
            frame[column] = values
    frame["ts"] = (frame["dteday"] + pd.to_timedelta(frame["hr"], unit="h")).dt.tz_localize("UTC")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def _reject(path: Path, column: str, bad: pd.Series, what: str) -> None:
    if bool(bad.any()):
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(
            f"{path.name}: {int(bad.sum())} value(s) of column {column} {what} "
            f"(first on line {first + 2})."
        )


def _need(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{what} needs the column(s) {', '.join(missing)}.")
    if frame.empty:
        raise ValidationError(f"{what} got no rows.")


# ---------------------------------------------------------------------------------------- model


@contextmanager
def _one_thread() -> Iterator[None]:
    """Boosting and prediction on one OpenMP thread. Measured on the two-core host: 0.5-1 s to
    fit 13k hours on one thread, but 8-12 s on two while another process holds a core (OpenMP's
    threads spin waiting for each other). The data are small enough that one thread is enough."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def train_model(frame: pd.DataFrame, *, seed: int = 0, features: Sequence[str] = FEATURES) -> Any:
    """A fitted HistGradientBoostingRegressor on `features` -> `TARGET` (deterministic: same
    frame and seed, same model). `features` other than FEATURES are for experiments only."""
    from sklearn.ensemble import HistGradientBoostingRegressor  # type: ignore[import-untyped]

    features = list(features)
    _need(frame, [*features, TARGET], "Training")
    categorical = [c for c in CATEGORICAL if c in features]
    model = HistGradientBoostingRegressor(
        **HYPERPARAMS, random_state=seed, categorical_features=categorical or None
    )
    with _one_thread():
        model.fit(frame[features], frame[TARGET])
    return model


def model_inputs(model: Any) -> list[str]:
    """The columns `model` predicts from: a fitted estimator's own list, else FEATURES."""
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else list(FEATURES)


def predict(model: Any, frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Predicted rentals per row, clipped at 0 (a count is never negative)."""
    columns = model_inputs(model)
    _need(frame, columns, "Prediction")
    with _one_thread():
        raw = model.predict(frame[columns])
    values = np.asarray(raw, dtype=np.float64).reshape(-1)
    return np.clip(values, 0.0, None)


def _scores(actual: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> dict[str, float]:
    error = predicted - actual
    spread = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(math.sqrt(np.mean(error**2))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
    }


def evaluate(model: Any, frame: pd.DataFrame) -> dict[str, float]:
    """mae, rmse and r2 of `model` on `frame` (which holds TARGET)."""
    _need(frame, [TARGET], "Evaluation")
    actual = frame[TARGET].to_numpy(dtype=np.float64)
    return _scores(actual, predict(model, frame))


def _validation_curve(model: Any, frame: pd.DataFrame) -> list[tuple[int, float]]:
    """(boosting round, validation MAE) every CURVE_EVERY rounds, ending at the last one."""
    actual = frame[TARGET].to_numpy(dtype=np.float64)
    curve: list[tuple[int, float]] = []
    rounds = int(model.n_iter_)
    with _one_thread():
        for step, staged in enumerate(model.staged_predict(frame[model_inputs(model)]), start=1):
            if step % CURVE_EVERY == 0 or step == rounds:
                curve.append((step, float(np.mean(np.abs(np.clip(staged, 0.0, None) - actual)))))
    return curve


def production_stream(model: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What production would have logged hour by hour: ts, FEATURES (then any other input the
    model uses), prediction (float, clipped at 0) and actual (= TARGET)."""
    inputs = model_inputs(model)
    columns = ["ts", *FEATURES, *(c for c in inputs if c not in FEATURES)]
    _need(frame, [*columns, TARGET], "The production stream")
    ordered = frame.sort_values("ts", kind="stable")
    stream = ordered[columns].reset_index(drop=True)
    stream["prediction"] = predict(model, ordered)
    stream["actual"] = ordered[TARGET].to_numpy(dtype=np.float64)
    return stream


# --------------------------------------------------------------------------------------- MLflow


def _pip_requirements() -> list[str]:
    """Pinned to what trained the model; given explicitly, since inferring them costs seconds."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("scikit-learn", "skops", "pandas", "numpy")]


def _split(window: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    days = sorted(window["dteday"].unique())
    first_validation = pd.Timestamp(days[int(len(days) * (1 - VALIDATION_FRACTION))])
    fit = window[window["dteday"] < first_validation]
    return fit, window[window["dteday"] >= first_validation], first_validation.date()


_FITS: dict[tuple[Any, ...], tuple[Any, dict[str, float], list[tuple[int, float]]]] = {}


def _fit(
    source: str,
    spec: tuple[date, date, int, tuple[str, ...]],
    fit_part: pd.DataFrame,
    validation: pd.DataFrame,
    window: pd.DataFrame,
) -> tuple[Any, dict[str, float], list[tuple[int, float]]]:
    """The validated fit: a model on the first 80% scored on the rest, then the model refitted
    on the whole range. Training is deterministic, so a process that trains the same range of
    the same file again (the demo seeded into a second database) reuses the fit."""
    path = Path(source)
    key = (source, path.stat().st_mtime_ns if path.exists() else 0, *spec)
    if key not in _FITS:
        _, _, seed, features = spec
        holdout_model = train_model(fit_part, seed=seed, features=features)
        scores = evaluate(holdout_model, validation)
        curve = _validation_curve(holdout_model, validation)
        _FITS[key] = (train_model(window, seed=seed, features=features), scores, curve)
    return _FITS[key]


def train_and_register(
    tracking: Tracking,
    *,
    train_start: date,
    train_end: date,
    description: str,
    name: str = MODEL_NAME,
    seed: int = 0,
    tags: Mapping[str, str] | None = None,
    features: Sequence[str] = FEATURES,
    path: Path | None = None,
) -> TrainedVersion:
    """Train on the days train_start..train_end (inclusive), log the run and register a new
    version of `name` carrying `description` and `tags`."""
    from mlflow.exceptions import MlflowException

    if not _NAME.match(name):
        raise ValidationError(
            f"Model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, "
            "starting with a letter or digit)."
        )
    if train_start > train_end:
        raise ValidationError(f"The training range {train_start}..{train_end} is reversed.")
    frame = load_hours(path)
    in_range = (frame["dteday"] >= pd.Timestamp(train_start)) & (
        frame["dteday"] <= pd.Timestamp(train_end)
    )
    window = frame[in_range]
    if window["dteday"].nunique() < _MIN_DAYS:
        first, last = frame["dteday"].min().date(), frame["dteday"].max().date()
        raise ValidationError(
            f"The data hold fewer than {_MIN_DAYS} days in {train_start}..{train_end}; "
            f"they cover {first}..{last}."
        )
    fit_part, validation, validation_start = _split(window)
    started = time.perf_counter()
    model, scores, curve = _fit(
        str(path or DATA_FILE),
        (train_start, train_end, seed, tuple(features)),
        fit_part,
        validation,
        window,
    )
    seconds = time.perf_counter() - started

    params = {
        **HYPERPARAMS,
        "model": "sklearn HistGradientBoostingRegressor",
        "seed": seed,
        "features": ",".join(features),
        "categorical_features": ",".join(c for c in CATEGORICAL if c in features),
        "target": TARGET,
        "train_start": train_start.isoformat(),
        "train_end": train_end.isoformat(),
        "validation": f"last {VALIDATION_FRACTION:.0%} of the range's days by time, from "
        f"{validation_start}; fitted on the days before, then refitted on the whole range",
        "validation_start": validation_start.isoformat(),
        "train_rows": len(window),
        "validation_rows": len(validation),
    }
    metrics = {f"val_{key}": value for key, value in scores.items()}
    try:
        run_id, model_id = _log_run(
            tracking, name, model, window, validation, params, metrics, curve, seconds, path
        )
        version = _register(tracking, name, run_id, model_id, description, params, tags)
    except MlflowException as exc:
        raise ConfigurationError(f"MLflow failed while logging {name!r}: {exc.message}") from exc
    return TrainedVersion(
        name=name,
        version=version,
        run_id=run_id,
        metrics=metrics,
        model_id=model_id,
        validation_start=validation_start,
    )


def _log_run(
    tracking: Tracking,
    name: str,
    model: Any,
    window: pd.DataFrame,
    validation: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    curve: Sequence[tuple[int, float]],
    seconds: float,
    path: Path | None,
) -> tuple[str, str]:
    """The run, its inputs and the logged model: (run id, LoggedModel id)."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Metric
    from mlflow.models import infer_signature

    # the fluent API (needed to tie the logged model to the run) reads the global URIs: make
    # sure they are this store's, whatever another caller set since configure_mlflow
    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_registry_uri(tracking.uri)
    inputs = model_inputs(model)
    columns = ["dteday", *inputs, TARGET]
    source = str((Path(path) if path is not None else DATA_FILE).resolve())
    first, last = params["train_start"], params["train_end"]
    with (
        mlflow.start_run(
            experiment_id=experiment_id(tracking, EXPERIMENT),
            run_name=f"{name} {first}..{last}",
            tags={"omni.task": "bike-demand"},
        ) as run,
        warnings.catch_warnings(),
    ):
        # the data were checked to hold no missing value, so mlflow's hint that integer columns
        # cannot hold one is noise; and 3.17 registers its local-file dataset source twice, then
        # warns that a path "can be interpreted in multiple ways" (both are the same class)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        # and its digest and input-example code uses pandas idioms pandas 3 deprecates
        warnings.filterwarnings("ignore", category=pd.errors.Pandas4Warning, module=r"mlflow\.")
        run_id = str(run.info.run_id)
        mlflow.log_params(dict(params))
        now = int(epoch_seconds() * 1000)
        last_round = curve[-1][0] if curve else 0
        logged = [Metric("val_mae", value, now, step) for step, value in curve[:-1]]
        logged += [Metric(key, value, now, last_round) for key, value in metrics.items()]
        logged.append(Metric("train_seconds", seconds, now, 0))
        tracking.client.log_batch(run_id, metrics=logged)
        for part, context, start in (
            (window, "training", first),
            (validation, "validation", params["validation_start"]),
        ):
            dataset = from_pandas(
                part[columns].reset_index(drop=True),
                source=source,
                name=f"{DATASET_NAME} {start}..{last}",
                targets=TARGET,
            )
            mlflow.log_input(dataset, context=context)
        signature = infer_signature(
            window[inputs], pd.Series(predict(model, window), name="prediction")
        )
        with _one_thread():  # mlflow checks the input example by predicting it
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                input_example=window[inputs].head(5).reset_index(drop=True),
                pip_requirements=_pip_requirements(),
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
            )
    return run_id, str(info.model_id)


def _register(
    tracking: Tracking,
    name: str,
    run_id: str,
    model_id: str,
    description: str,
    params: Mapping[str, Any],
    tags: Mapping[str, str] | None,
) -> str:
    from mlflow.exceptions import MlflowException

    client = tracking.client
    try:
        client.create_registered_model(name, description=MODEL_DESCRIPTION)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version_tags = {"train_start": params["train_start"], "train_end": params["train_end"]}
    version_tags |= {str(k): str(v) for k, v in (tags or {}).items()}
    mv = client.create_model_version(
        name,
        source=f"models:/{model_id}",
        run_id=run_id,
        tags=version_tags,
        description=description,
        model_id=model_id,
    )
    return str(mv.version)


def load_version(tracking: Tracking, name: str, ref: str | int) -> Any:
    """The model of version `ref` (a number, or an alias such as "champion") of `name`: an
    estimator with predict(DataFrame). NotFound lists the valid versions and aliases."""
    import skops.io  # type: ignore[import-untyped]
    from skops.io.exceptions import UntrustedTypesFoundException  # type: ignore[import-untyped]

    version = resolve_version(tracking, name, ref)
    flavor = ((read_mlmodel(tracking, name, version) or {}).get("flavors") or {}).get("sklearn")
    if not isinstance(flavor, dict) or flavor.get("serialization_format") != "skops":
        raise ValidationError(
            f"{name} version {version} is not a scikit-learn model saved in the skops format; "
            "the console loads no other kind (a pickled model can run any code when loaded)."
        )
    data_file = str(flavor.get("pickled_model") or "model.skops")
    if "/" in data_file or "\\" in data_file or data_file.startswith("."):
        raise ValidationError(f"{name} version {version} names an odd model file {data_file!r}.")
    uri = model_artifact_uri(tracking, name, version)
    with tempfile.TemporaryDirectory(prefix="omni-model-") as tmp:
        local = fetch_artifact(tracking, f"{uri}/{data_file}", Path(tmp))
        if local is None:
            raise NotFound(f"The model file of {name} version {version} is missing ({uri}).")
        try:
            return skops.io.load(local, trusted=list(SKOPS_TRUSTED_TYPES))
        except UntrustedTypesFoundException as exc:
            raise ValidationError(
                f"{name} version {version} holds types the console does not trust: {exc}"
            ) from exc
