"""Moving a registered model's aliases (promote, roll back, remove), with the history MLflow
does not keep.

MLflow's stages are deprecated; aliases ("champion", "challenger") are how serving code finds a
version (`models:/bike-demand@champion`). MLflow only knows where an alias points now, so each
move is also written to `mlops_alias_events` with who, why and from which version, in the same
transaction as its audit entry. The MLflow call happens inside that transaction, after the rows are
flushed: if MLflow refuses, nothing is recorded; if the commit fails after MLflow moved the alias,
the alias is put back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work, utcnow
from core.errors import Conflict, NotFound, ValidationError
from core.mlops.models import AliasEvent
from core.mlops.tracking import Tracking, configure_mlflow
from core.text import clean_text

CHAMPION, CHALLENGER = "champion", "challenger"
SUGGESTED_ALIASES = (CHAMPION, CHALLENGER)
# MLflow reserves "latest" and names like "v3" (they would shadow version references)
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_RESERVED = re.compile(r"^(latest|v\d+)$")
MIN_REASON = 10
_NAME = re.compile(r"^[\w .-]{1,200}$")  # names safe inside MLflow's quoted filter syntax


@dataclass(frozen=True)
class AliasChange:
    model_name: str
    alias: str
    version: str | None
    previous_version: str | None
    action: str
    reason: str
    actor: str
    ts: datetime


def _change(row: AliasEvent) -> AliasChange:
    return AliasChange(
        row.model_name,
        row.alias,
        row.version,
        row.previous_version,
        row.action,
        row.reason,
        row.actor,
        row.ts,
    )


def check_alias(alias: str) -> str:
    value = alias.strip().lower()
    if not _ALIAS.match(value) or _RESERVED.match(value):
        raise ValidationError(
            f"Alias {alias[:64]!r} is not usable: use lower-case letters, digits, '-' or '_', "
            f"starting with a letter (e.g. {', '.join(SUGGESTED_ALIASES)}); 'latest' and 'v<N>' "
            "are reserved by MLflow."
        )
    return value


def _reason(reason: str) -> str:
    text = clean_text(reason, 500)
    if len(text) < MIN_REASON:
        raise ValidationError(
            f"Give a reason of at least {MIN_REASON} characters: it is kept in the alias history "
            "and the audit log (e.g. 'v2 beats v1 on 2012 H2 MAE').",
        )
    return text


def current_aliases(tracking: Tracking, name: str) -> dict[str, str]:
    """alias -> version of a registered model (NotFound listing the known models)."""
    model = _registered_model(tracking, name)
    return {str(k): str(v) for k, v in (model.aliases or {}).items()}


def _registered_model(tracking: Tracking, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return tracking.client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = [m.name for m in tracking.client.search_registered_models(max_results=10)]
        raise NotFound(
            f"No registered model {name[:200]!r}. Known models: {', '.join(known) or 'none'}."
        ) from None


def _check_version(tracking: Tracking, name: str, version: str) -> str:
    from mlflow.exceptions import MlflowException

    value = str(version).strip()
    if not value.isdigit():
        raise ValidationError(f"Version {value[:32]!r} is not a version number.")
    try:
        tracking.client.get_model_version(name, value)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        found = (
            tracking.client.search_model_versions(f"name = '{name}'") if _NAME.match(name) else []
        )
        versions = sorted((str(v.version) for v in found), key=int)
        raise NotFound(
            f"{name} has no version {value}. Versions: {', '.join(versions) or 'none'}."
        ) from None
    return value


def set_alias(
    actor: Actor,
    name: str,
    alias: str,
    version: str,
    reason: str,
    *,
    tracking: Tracking | None = None,
) -> AliasChange:
    """Point `alias` of model `name` at `version` (promote, or roll back to an older version)."""
    require(actor, Permission.MLOPS_PROMOTE, action="mlops.alias.set", target=f"{name}@{alias}")
    alias = check_alias(alias)
    reason = _reason(reason)
    tracking = tracking or configure_mlflow()
    previous = current_aliases(tracking, name).get(alias)
    version = _check_version(tracking, name, version)
    if previous == version:
        raise Conflict(f"{name}@{alias} already points at version {version}.")
    action = "rollback" if previous is not None and int(version) < int(previous) else "promote"
    return _move(
        actor,
        tracking,
        AliasEvent(
            model_name=name,
            alias=alias,
            version=version,
            previous_version=previous,
            action=action,
            reason=reason,
            actor=actor.username,
            ts=utcnow(),
        ),
        apply=lambda: tracking.client.set_registered_model_alias(name, alias, version),
    )


def roll_back(
    actor: Actor, name: str, alias: str, reason: str, *, tracking: Tracking | None = None
) -> AliasChange:
    """Point `alias` back at the version it held before its current one (from the history)."""
    require(actor, Permission.MLOPS_PROMOTE, action="mlops.alias.rollback", target=name)
    alias = check_alias(alias)
    tracking = tracking or configure_mlflow()
    current = current_aliases(tracking, name).get(alias)
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AliasEvent)
            .where(AliasEvent.model_name == name, AliasEvent.alias == alias)
            .order_by(AliasEvent.ts.desc(), AliasEvent.id.desc())
        ).all()
    earlier = next(
        (r.previous_version for r in rows if r.version == current and r.previous_version), None
    )
    if earlier is None:
        raise Conflict(
            f"{name}@{alias} has no earlier version in its history to roll back to; "
            "choose a version and promote it instead."
        )
    change = set_alias(actor, name, alias, earlier, reason, tracking=tracking)
    return change


def remove_alias(
    actor: Actor, name: str, alias: str, reason: str, *, tracking: Tracking | None = None
) -> AliasChange:
    require(actor, Permission.MLOPS_PROMOTE, action="mlops.alias.remove", target=f"{name}@{alias}")
    alias = check_alias(alias)
    reason = _reason(reason)
    tracking = tracking or configure_mlflow()
    previous = current_aliases(tracking, name).get(alias)
    if previous is None:
        raise NotFound(f"{name} has no alias {alias!r}.")
    return _move(
        actor,
        tracking,
        AliasEvent(
            model_name=name,
            alias=alias,
            version=None,
            previous_version=previous,
            action="remove",
            reason=reason,
            actor=actor.username,
            ts=utcnow(),
        ),
        apply=lambda: tracking.client.delete_registered_model_alias(name, alias),
    )


def _move(
    actor: Actor, tracking: Tracking, event: AliasEvent, apply: Callable[[], None]
) -> AliasChange:
    moved = False
    try:
        with unit_of_work() as session:
            session.add(event)
            record(
                session,
                actor,
                f"mlops.alias.{event.action}",
                f"{event.model_name}@{event.alias}",
                {
                    "version": event.version,
                    "previous_version": event.previous_version,
                    "reason": event.reason,
                },
            )
            session.flush()
            apply()
            moved = True
            change = _change(event)
    except BaseException:
        if moved:  # the commit failed after MLflow moved the alias: put it back
            _restore(tracking, event)
        raise
    return change


def _restore(tracking: Tracking, event: AliasEvent) -> None:
    if event.previous_version is None:
        tracking.client.delete_registered_model_alias(event.model_name, event.alias)
    else:
        tracking.client.set_registered_model_alias(
            event.model_name, event.alias, event.previous_version
        )


def alias_history(actor: Actor, name: str, alias: str | None = None) -> list[AliasChange]:
    """Every recorded move of the model's aliases, newest first."""
    require(actor, Permission.MLOPS_READ, action="mlops.alias.history", target=name)
    with unit_of_work(read_only=True) as session:
        query = select(AliasEvent).where(AliasEvent.model_name == name)
        if alias:
            query = query.where(AliasEvent.alias == alias)
        rows = session.scalars(query.order_by(AliasEvent.ts.desc(), AliasEvent.id.desc())).all()
        return [_change(r) for r in rows]
