"""Where MLflow lives for this installation, and a checked connection to it.

The tracking URI comes from settings (`OMNI_MLFLOW_URI`); unset, it is the embedded default
`sqlite:///$OMNI_HOME/mlflow.db` with artifacts under `$OMNI_HOME/mlartifacts`. The same URI
serves as the model registry. `configure_mlflow` points mlflow at that URI and checks that the
store answers, with a short timeout and no retries, so an unreachable store fails in seconds with
`ConfigurationError` instead of after minutes of retries (or after a long training).

mlflow is imported lazily: it is heavy, and most of the console never needs it. Its telemetry is
switched off (nothing may reach the network unless a user configured it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from core.config import Settings, get_settings
from core.errors import ConfigurationError

EXPERIMENT = "omni-embeddings"
# database schemes that mlflow drives through SQLAlchemy (checked here with a plain connection,
# since mlflow itself retries a refused connection for about 100 seconds)
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_PROBE_TIMEOUT_S = 10


def tracking_uri(settings: Settings | None = None) -> str:
    """The MLflow tracking (and registry) URI of this installation."""
    return (settings or get_settings()).effective_mlflow_uri


def artifact_root(settings: Settings | None = None) -> str | None:
    """Artifact location for new experiments: `$OMNI_HOME/mlartifacts` when mlflow writes to a
    database itself (the embedded SQLite default, or a database URL), None for a tracking server
    (it decides where artifacts go)."""
    settings = settings or get_settings()
    if _scheme(tracking_uri(settings)) in _SQL_SCHEMES:
        return (settings.home / "mlartifacts").resolve().as_uri()
    return None


def _scheme(uri: str) -> str:
    return urlparse(uri).scheme.split("+", 1)[0].lower()


def _probe_sql(uri: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    else:
        connect_args["connect_timeout"] = _PROBE_TIMEOUT_S
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@contextmanager
def _quick_http() -> Iterator[None]:
    """No retries and a short timeout for the reachability check only."""
    saved = {k: os.environ.get(k) for k in _HTTP_PROBE_ENV}
    os.environ.update(_HTTP_PROBE_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_HTTP_PROBE_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(_PROBE_TIMEOUT_S),
}


@dataclass(frozen=True)
class Tracking:
    """A configured, reachable MLflow store."""

    uri: str
    client: Any  # mlflow.MlflowClient
    artifact_location: str | None  # for new experiments; None: the server's default
    home: Path


def configure_mlflow(settings: Settings | None = None) -> Tracking:
    """Point mlflow (tracking and registry) at this installation's store and check it answers.

    Raises `ConfigurationError` naming the URI (password masked) when it cannot be reached or is
    not a store mlflow understands."""
    from core.config import mask_url

    settings = settings or get_settings()
    uri = tracking_uri(settings)
    shown = mask_url(uri)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError("MLflow is not installed: run `make setup`.") from exc

    if not settings.mlflow_uri:
        settings.ensure_home()
    try:
        if _scheme(uri) in _SQL_SCHEMES:
            _probe_sql(uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        with _quick_http():
            client.search_experiments(max_results=1)
    except (MlflowException, OSError, ImportError) as exc:
        raise ConfigurationError(
            f"The MLflow store {shown} cannot be reached or used (OMNI_MLFLOW_URI): "
            f"{_first_line(exc)}"
        ) from exc
    except Exception as exc:  # SQLAlchemy and driver errors: no common base worth naming
        if type(exc).__module__.split(".", 1)[0] not in ("sqlalchemy", "psycopg", "requests"):
            raise
        raise ConfigurationError(
            f"The MLflow store {shown} cannot be reached or used (OMNI_MLFLOW_URI): "
            f"{_first_line(exc)}"
        ) from exc
    return Tracking(
        uri=uri, client=client, artifact_location=artifact_root(settings), home=settings.home
    )


def experiment_id(tracking: Tracking, name: str = EXPERIMENT) -> str:
    """The id of experiment `name`, created on first use (in a database store its artifacts go
    under `$OMNI_HOME/mlartifacts/<name>/`, not a `mlruns/` beside wherever the process started)."""
    from mlflow.exceptions import MlflowException

    existing = tracking.client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    root = tracking.artifact_location
    try:
        return str(
            tracking.client.create_experiment(
                name, artifact_location=f"{root}/{name}" if root else None
            )
        )
    except MlflowException as exc:  # created meanwhile by another process
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return str(tracking.client.get_experiment_by_name(name).experiment_id)


def local_path(uri: str) -> Path | None:
    """The local directory or file an artifact URI names (file: URIs and plain paths, Windows
    drive letters included), or None for a remote store."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
