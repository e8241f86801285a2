"""The permission check every service call makes before it does anything."""

from __future__ import annotations

from core.audit.service import record_now
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import PermissionDenied


def require(actor: Actor, permission: Permission, *, action: str, target: str = "") -> None:
    """Raise `PermissionDenied` (and audit the attempt) unless `actor` holds `permission`.

    Call it before opening the unit of work: the denial is committed on its own, the call writes
    nothing else.
    """
    if has_permission(actor.role, permission):
        return
    record_now(actor, action, target, {"missing_permission": permission.value}, outcome="denied")
    raise PermissionDenied(
        f"Your role ({actor.role.label}) may not do this: it needs the permission "
        f"'{permission.value}'. Ask an admin if you need it."
    )
