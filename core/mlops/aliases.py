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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import ConfigurationError, Conflict, NotFound, ValidationError
from core.mlops.models import AliasEvent
from core.mlops.tracking import Tracking, configure_mlflow
from core.text import clean_text

CHAMPION, CHALLENGER = "champion", "challenger"
SUGGESTED_ALIASES = (CHAMPION, CHALLENGER)
# MLflow reserves "latest" and names like "v3" (they would shadow version references)
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_RESERVED = re.compile(r"^(latest|v\d+)$")
MIN_REASON = 10


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
    from core.mlops import registry

    return registry._alias_map(registry._registered_model(tracking, name))


def _check_version(tracking: Tracking, name: str, version: str) -> str:
    from core.mlops import registry

    value = str(version).strip()
    if not value.isdigit():
        raise ValidationError(f"Version {value[:32]!r} is not a version number.")
    return registry.resolve_version(tracking, name, value)


def set_alias(
    actor: Actor,
    name: str,
    alias: str,
    version: str,
    reason: str,
    *,
    tracking: Tracking | None = None,
) -> AliasChange:
    """Point `alias` of model `name` at `version`: a promotion (of any version, older ones
    included); `roll_back` walks back along the alias's history instead."""
    require(actor, Permission.MLOPS_PROMOTE, action="mlops.alias.set", target=f"{name}@{alias}")
    alias = check_alias(alias)
    reason = _reason(reason)
    tracking = tracking or configure_mlflow()
    previous = current_aliases(tracking, name).get(alias)
    version = _check_version(tracking, name, version)
    if previous == version:
        raise Conflict(f"{name}@{alias} already points at version {version}.")
    return _record_move(actor, tracking, name, alias, version, previous, "promote", reason)


def _record_move(
    actor: Actor,
    tracking: Tracking,
    name: str,
    alias: str,
    version: str | None,
    previous: str | None,
    action: str,
    reason: str,
) -> AliasChange:
    """Record the move and apply it in MLflow (`version` None removes the alias)."""

    def apply() -> None:
        if version is None:
            tracking.client.delete_registered_model_alias(name, alias)
        else:
            tracking.client.set_registered_model_alias(name, alias, version)

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
        apply=apply,
    )


def roll_back(
    actor: Actor, name: str, alias: str, reason: str, *, tracking: Tracking | None = None
) -> AliasChange:
    """Point `alias` back at the version it held before its current one. The history is read as
    a stack: a promotion pushes a version, a rollback pops one, a removal clears it, so repeated
    rollbacks walk back v3 -> v2 -> v1 instead of flipping between two versions."""
    require(actor, Permission.MLOPS_PROMOTE, action="mlops.alias.rollback", target=name)
    alias = check_alias(alias)
    reason = _reason(reason)
    tracking = tracking or configure_mlflow()
    current = current_aliases(tracking, name).get(alias)
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(AliasEvent)
            .where(AliasEvent.model_name == name, AliasEvent.alias == alias)
            .order_by(AliasEvent.ts, AliasEvent.id)
        ).all()
    stack = held_versions(rows)
    if current is None or not stack or stack[-1] != current or len(stack) < 2:
        raise Conflict(
            f"{name}@{alias} has no earlier version in its history to roll back to; "
            "choose a version and promote it instead."
        )
    earlier = stack[-2]
    _check_version(tracking, name, earlier)
    return _record_move(actor, tracking, name, alias, earlier, current, "rollback", reason)


def held_versions(events: Sequence[AliasEvent]) -> list[str]:
    """The versions an alias held, oldest first, as its history leaves them (see roll_back)."""
    stack: list[str] = []
    for event in events:
        if event.action == "remove" or event.version is None:
            stack.clear()
        elif event.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != event.version:  # history older than the stack
                stack.append(event.version)
        else:
            stack.append(event.version)
    return stack


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
    return _record_move(actor, tracking, name, alias, None, previous, "remove", reason)


def _move(
    actor: Actor, tracking: Tracking, event: AliasEvent, apply: Callable[[], None]
) -> AliasChange:
    from core.mlops.registry import _mlflow_errors

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
            with _mlflow_errors(f"move {event.model_name}@{event.alias}"):
                apply()
            moved = True
            change = _change(event)
    except BaseException:
        if moved:  # the commit failed after MLflow moved the alias: put it back
            _restore(tracking, event)
        raise
    return change


def _restore(tracking: Tracking, event: AliasEvent) -> None:
    """Put the alias back after a failed commit. Should MLflow refuse that too, say so: the
    alias then points where no history row says it does, and someone must set it by hand."""
    try:
        if event.previous_version is None:
            tracking.client.delete_registered_model_alias(event.model_name, event.alias)
        else:
            tracking.client.set_registered_model_alias(
                event.model_name, event.alias, event.previous_version
            )
    except Exception as exc:
        raise ConfigurationError(
            f"{event.model_name}@{event.alias} was moved to v{event.version} in MLflow but the "
            f"move could not be recorded, nor undone ({str(exc)[:200]}): set it back to "
            f"{'nothing' if event.previous_version is None else 'v' + event.previous_version} "
            "by hand."
        ) from exc


def alias_history(actor: Actor, name: str, alias: str | None = None) -> list[AliasChange]:
    """Every recorded move of the model's aliases, newest first."""
    require(actor, Permission.MLOPS_READ, action="mlops.alias.history", target=name)
    with unit_of_work(read_only=True) as session:
        query = select(AliasEvent).where(AliasEvent.model_name == name)
        if alias:
            query = query.where(AliasEvent.alias == alias)
        rows = session.scalars(query.order_by(AliasEvent.ts.desc(), AliasEvent.id.desc())).all()
        return [_change(r) for r in rows]
