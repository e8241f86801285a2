"""The registry as the console shows it: `core.mlops.registry` behind the read permission, with
the tracking store configured once per process (a store that cannot be reached raises
`ConfigurationError` naming `OMNI_MLFLOW_URI`)."""

from __future__ import annotations

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.mlops import registry
from core.mlops.tracking import Tracking, configure_mlflow


def models(actor: Actor, tracking: Tracking | None = None) -> list[registry.ModelSummary]:
    require(actor, Permission.MLOPS_READ, action="mlops.models.list")
    return registry.list_models(tracking or configure_mlflow())


def versions(
    actor: Actor, name: str, tracking: Tracking | None = None
) -> list[registry.VersionSummary]:
    require(actor, Permission.MLOPS_READ, action="mlops.models.versions", target=name)
    return registry.list_versions(tracking or configure_mlflow(), name)


def run(actor: Actor, run_id: str, tracking: Tracking | None = None) -> registry.RunDetails:
    require(actor, Permission.MLOPS_READ, action="mlops.models.run", target=run_id)
    return registry.run_details(tracking or configure_mlflow(), run_id)


def metric_history(
    actor: Actor, run_id: str, key: str, tracking: Tracking | None = None
) -> list[tuple[int, float]]:
    require(actor, Permission.MLOPS_READ, action="mlops.models.metric", target=run_id)
    return registry.metric_history(tracking or configure_mlflow(), run_id, key)
