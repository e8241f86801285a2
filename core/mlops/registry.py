"""Read-only views of the MLflow model registry, for the console's Models page.

Everything returned is a plain frozen dataclass: pages never see an mlflow object, so they neither
depend on mlflow's entity classes (which change between releases) nor can mutate the registry
through one. Permission checks are the caller's (the service layer); these functions take the
configured `Tracking` only.

Signatures are read from the logged model's `MLmodel` file (a few hundred bytes), never by loading
the model: MLflow 3 registers a version from a LoggedModel (`source` is `models:/m-<id>`), and
`get_model_version_download_uri` resolves that, or an older `runs:/` source, to the artifact
directory that holds the file. A version registered from a bare directory (no `MLmodel`, as
`omni rag tune` registers) or logged without a signature reports `has_signature=False`.

Registered-model names may hold quotes and other odd characters (MLflow forbids only '/' and ':').
MLflow's filter syntax has no escape for a quote inside a quoted value, so a name is quoted with
whichever quote it lacks; a name holding both kinds is matched client-side instead.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, NotFound, ValidationError
from core.mlops.tracking import Tracking, local_path

_SHOWN_NAMES = 10  # existing names listed in a NotFound message
_NUMBER = re.compile(r"^[0-9]{1,9}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]+)$")


@dataclass(frozen=True)
class ModelSummary:
    name: str
    description: str
    latest_version: str | None
    aliases: dict[str, str]  # alias -> version
    versions: int
    updated_at: datetime | None
    tags: dict[str, str]


@dataclass(frozen=True)
class VersionSummary:
    name: str
    version: str
    aliases: tuple[str, ...]
    created_at: datetime
    run_id: str | None
    status: str
    description: str
    source: str
    tags: dict[str, str]
    has_signature: bool
    signature_inputs: tuple[tuple[str, str], ...]  # (column name, type)
    signature_outputs: tuple[tuple[str, str], ...]
    model_id: str | None = None  # the MLflow 3 LoggedModel behind the version, when there is one


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    digest: str
    context: str | None  # "training", "validation", ... (the mlflow.data.context input tag)
    source_type: str
    columns: tuple[str, ...]
    rows: int | None  # from the dataset's profile, when it has one
    source: str = ""


@dataclass(frozen=True)
class RunDetails:
    run_id: str
    experiment: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    params: dict[str, str]
    metrics: dict[str, float]
    datasets: tuple[DatasetInfo, ...]
    tags: dict[str, str]
    run_name: str = ""


# ------------------------------------------------------------------------------------ helpers


@contextmanager
def _mlflow_errors(action: str) -> Iterator[None]:
    """Any other MLflow failure becomes a ConfigurationError a person can act on."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise ConfigurationError(f"MLflow could not {action}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _is_missing(exc: BaseException) -> bool:
    return str(getattr(exc, "error_code", "")) in _MISSING


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _quoted(name: str) -> str | None:
    """`name` as a filter-string literal, or None when no quoting can hold it."""
    for quote in ("'", '"'):
        if quote not in name:
            return f"{quote}{name}{quote}"
    return None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 500:
        raise ValidationError("A registered model name must be a non-empty string.")
    return name


def _search_versions(client: Any, name: str) -> list[Any]:
    """Every version of `name` (all pages), filter-safe for any name."""
    literal = _quoted(name)
    found: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_model_versions(
            f"name = {literal}" if literal else None, max_results=1000, page_token=token
        )
        found.extend(v for v in page if literal or v.name == name)
        token = page.token
        if not token:
            return found


def _existing_names(client: Any) -> list[str]:
    return [m.name for m in client.search_registered_models(max_results=_SHOWN_NAMES)]


def _registered_model(tracking: Tracking, name: str) -> Any:
    """The mlflow RegisteredModel, or NotFound naming some that exist."""
    from mlflow.exceptions import MlflowException

    name = _check_name(name)
    client = tracking.client
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise ConfigurationError(
                f"MLflow could not look up model {name!r}: {_first_line(exc)}"
            ) from exc
    with _mlflow_errors("list the registered models"):
        names = _existing_names(client)
    known = ", ".join(names) if names else "none yet"
    more = " (first 10)" if len(names) == _SHOWN_NAMES else ""
    raise NotFound(f"No registered model named {name!r}. Registered models{more}: {known}.")


def _alias_map(model: Any) -> dict[str, str]:
    return {str(alias): str(version) for alias, version in (model.aliases or {}).items()}


def _version_numbers(client: Any, name: str) -> list[str]:
    return [str(v) for v in sorted(int(mv.version) for mv in _search_versions(client, name))]


def _unknown_ref(client: Any, model: Any, ref: str) -> NotFound:
    versions = ", ".join(_version_numbers(client, model.name)) or "none"
    aliases = ", ".join(f"{a} (v{v})" for a, v in sorted(_alias_map(model).items())) or "none"
    return NotFound(
        f"Model {model.name!r} has no version or alias {ref!r}. Versions: {versions}; "
        f"aliases: {aliases}."
    )


def resolve_version(tracking: Tracking, name: str, ref: str | int) -> str:
    """The version number that `ref` (a version number, or an alias such as "champion") names.
    NotFound lists the model's versions and aliases when it names none."""
    return _resolve(tracking, _registered_model(tracking, name), ref)


def _resolve(tracking: Tracking, model: Any, ref: str | int) -> str:
    client = tracking.client
    name = str(model.name)
    text = str(ref).strip()
    if not text:
        raise ValidationError("Give a version number or an alias (e.g. 'champion').")
    with _mlflow_errors(f"list the versions of {name!r}"):
        if _NUMBER.match(text):
            if str(int(text)) in _version_numbers(client, name):
                return str(int(text))
        elif text in (aliases := _alias_map(model)):
            return aliases[text]
        raise _unknown_ref(client, model, text)


def model_artifact_uri(tracking: Tracking, name: str, version: str) -> str:
    """Where the files of a registered version live (its MLmodel, its model data)."""
    with _mlflow_errors(f"locate the files of {name!r} version {version}"):
        return str(tracking.client.get_model_version_download_uri(name, version)).rstrip("/")


def fetch_artifact(tracking: Tracking, uri: str, dst: Path) -> Path | None:
    """A local path to the file at `uri`: in place when the artifact store is local, else
    downloaded under `dst`. None when there is no such file."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    local = local_path(uri)
    if local is not None:
        return local if local.is_file() else None
    try:
        return Path(
            download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=tracking.uri)
        )
    except (MlflowException, OSError):
        return None


def read_mlmodel(tracking: Tracking, name: str, version: str) -> dict[str, Any] | None:
    """The parsed MLmodel metadata of a registered version, None when it has none."""
    import yaml

    uri = model_artifact_uri(tracking, name, version)
    with tempfile.TemporaryDirectory(prefix="omni-mlmodel-") as tmp:
        path = fetch_artifact(tracking, f"{uri}/MLmodel", Path(tmp))
        if path is None:
            return None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
    return data if isinstance(data, dict) else None


def _spec_columns(raw: object) -> tuple[tuple[str, str], ...]:
    """(name, type) of each entry of a signature's inputs or outputs (a JSON string in MLmodel):
    column specs by name, tensors as "tensor<dtype>[shape]" with an empty name."""
    try:
        entries = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return ()
    if not isinstance(entries, list):
        return ()
    columns: list[tuple[str, str]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kind = str(entry.get("type", ""))
        if kind == "tensor":
            spec = entry.get("tensor-spec") or {}
            kind = f"tensor<{spec.get('dtype', '?')}>{list(spec.get('shape') or [])}"
        elif kind == "array" and isinstance(entry.get("items"), dict):
            kind = f"array<{entry['items'].get('type', '?')}>"
        columns.append((str(entry.get("name") or ""), kind))
    return tuple(columns)


def _signature(mlmodel: dict[str, Any] | None) -> tuple[bool, tuple[tuple[str, str], ...], Any]:
    signature = (mlmodel or {}).get("signature")
    if not isinstance(signature, dict) or not signature.get("inputs"):
        return False, (), ()
    return True, _spec_columns(signature.get("inputs")), _spec_columns(signature.get("outputs"))


def _model_id(mv: Any) -> str | None:
    """The LoggedModel id: 3.17's store leaves `model_id` empty on versions it returns, but a
    version registered from a LoggedModel has the source `models:/m-<id>`."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    match = _LOGGED_MODEL_SOURCE.match(str(mv.source or ""))
    return match[1] if match else None


def _version_summary(tracking: Tracking, mv: Any, aliases: dict[str, str]) -> VersionSummary:
    version = str(mv.version)
    has_signature, inputs, outputs = _signature(read_mlmodel(tracking, str(mv.name), version))
    return VersionSummary(
        name=str(mv.name),
        version=version,
        aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
        created_at=_when(mv.creation_timestamp) or datetime.fromtimestamp(0, tz=UTC),
        run_id=str(mv.run_id) if mv.run_id else None,
        status=str(mv.status or ""),
        description=str(mv.description or ""),
        source=str(mv.source or ""),
        tags={str(k): str(v) for k, v in (mv.tags or {}).items()},
        has_signature=has_signature,
        signature_inputs=inputs,
        signature_outputs=outputs,
        model_id=_model_id(mv),
    )


# --------------------------------------------------------------------------------- public API


def list_models(tracking: Tracking) -> list[ModelSummary]:
    """Every registered model, by name."""
    client = tracking.client
    summaries: list[ModelSummary] = []
    token: str | None = None
    with _mlflow_errors("list the registered models"):
        while True:
            page = client.search_registered_models(max_results=100, page_token=token)
            for model in page:
                numbers = _version_numbers(client, str(model.name))
                summaries.append(
                    ModelSummary(
                        name=str(model.name),
                        description=str(model.description or ""),
                        latest_version=numbers[-1] if numbers else None,
                        aliases=_alias_map(model),
                        versions=len(numbers),
                        updated_at=_when(model.last_updated_timestamp),
                        tags={str(k): str(v) for k, v in (model.tags or {}).items()},
                    )
                )
            token = page.token
            if not token:
                break
    return sorted(summaries, key=lambda s: s.name)


def list_versions(tracking: Tracking, name: str) -> list[VersionSummary]:
    """The versions of model `name`, newest first. NotFound when there is no such model."""
    model = _registered_model(tracking, name)
    aliases = _alias_map(model)
    with _mlflow_errors(f"list the versions of {name!r}"):
        versions = _search_versions(tracking.client, name)
        versions.sort(key=lambda mv: int(mv.version), reverse=True)
        return [_version_summary(tracking, mv, aliases) for mv in versions]


def get_version(tracking: Tracking, name: str, version: str | int) -> VersionSummary:
    """One version of model `name` (a version number or an alias)."""
    model = _registered_model(tracking, name)
    number = _resolve(tracking, model, version)
    with _mlflow_errors(f"read {name!r} version {number}"):
        mv = tracking.client.get_model_version(name, number)
        return _version_summary(tracking, mv, _alias_map(model))


def model_signature_columns(tracking: Tracking, name: str, version: str | int) -> list[str] | None:
    """Input column names of the version's logged signature; None when it was logged without one
    (or is no MLflow model at all), so monitors cannot know its features."""
    number = resolve_version(tracking, name, version)
    has_signature, inputs, _ = _signature(read_mlmodel(tracking, name, number))
    if not has_signature:
        return None
    return [column for column, _ in inputs if column]


def _get_run(tracking: Tracking, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValidationError(f"{run_id!r} is not an MLflow run id.")
    try:
        return tracking.client.get_run(run_id)
    except MlflowException as exc:
        if _is_missing(exc):
            raise NotFound(f"No MLflow run {run_id!r}.") from exc
        raise ConfigurationError(
            f"MLflow could not read run {run_id!r}: {_first_line(exc)}"
        ) from exc


def _dataset_info(dataset_input: Any) -> DatasetInfo:
    dataset = dataset_input.dataset
    context = next(
        (t.value for t in dataset_input.tags or [] if t.key == "mlflow.data.context"), None
    )
    columns: tuple[str, ...] = ()
    rows: int | None = None
    try:
        schema = json.loads(dataset.schema) if dataset.schema else {}
        specs = schema.get("mlflow_colspec") or schema.get("mlflow_tensorspec") or []
        columns = tuple(str(s.get("name", "")) for s in specs if isinstance(s, dict))
    except (json.JSONDecodeError, AttributeError):
        pass  # a schema in another format: no columns to show rather than a failed page
    try:
        profile = json.loads(dataset.profile) if dataset.profile else {}
        if isinstance(profile.get("num_rows"), int):
            rows = profile["num_rows"]
    except (json.JSONDecodeError, AttributeError):
        pass
    return DatasetInfo(
        name=str(dataset.name),
        digest=str(dataset.digest),
        context=str(context) if context is not None else None,
        source_type=str(dataset.source_type or ""),
        columns=columns,
        rows=rows,
        source=str(dataset.source or ""),
    )


def run_details(tracking: Tracking, run_id: str) -> RunDetails:
    """The run behind a version: params, final metrics, input datasets, tags."""
    run = _get_run(tracking, run_id)
    with _mlflow_errors(f"read the experiment of run {run_id!r}"):
        experiment = tracking.client.get_experiment(run.info.experiment_id)
    inputs = run.inputs.dataset_inputs if run.inputs is not None else []
    return RunDetails(
        run_id=str(run.info.run_id),
        experiment=str(experiment.name) if experiment is not None else "",
        status=str(run.info.status),
        start_time=_when(run.info.start_time),
        end_time=_when(run.info.end_time),
        params={str(k): str(v) for k, v in run.data.params.items()},
        metrics={str(k): float(v) for k, v in run.data.metrics.items()},
        datasets=tuple(_dataset_info(d) for d in inputs),
        tags={str(k): str(v) for k, v in run.data.tags.items()},
        run_name=str(run.info.run_name or ""),
    )


def metric_history(tracking: Tracking, run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of metric `key`, by step. NotFound when the run never
    logged it (the message lists the metrics it has)."""
    run = _get_run(tracking, run_id)
    if key not in run.data.metrics:
        known = ", ".join(sorted(run.data.metrics)) or "none"
        raise NotFound(f"Run {run_id!r} logged no metric {key!r}. Its metrics: {known}.")
    with _mlflow_errors(f"read metric {key!r} of run {run_id!r}"):
        history = tracking.client.get_metric_history(run_id, key)
    ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
    return [(int(m.step), float(m.value)) for m in ordered]
