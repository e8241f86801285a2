"""The sync's bookkeeping in `SyncState`, a small key/value table:

namespace      this database's random id, part of every idempotency key
events_cursor  {"id", "created"} of the newest Stripe event pulled
last_push      {"at", "created": {kind: n}, "skipped", "warnings"}
last_pull      {"at", "fetched", "applied", ...}
last_error     {"at", "operation", "message"}; cleared by the next success of that operation
meter:<metric> the Stripe Billing Meter id of a usage metric
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.billing.models import SyncState
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import stored_error_text

CURSOR = "events_cursor"
LAST_PUSH = "last_push"
LAST_PULL = "last_pull"
LAST_ERROR = "last_error"
NAMESPACE = "namespace"
METER_PREFIX = "meter:"


def get_text(session: Session, key: str) -> str | None:
    return session.scalar(select(SyncState.value).where(SyncState.key == key))


def put_text(session: Session, key: str, value: str) -> None:
    row = session.get(SyncState, key)
    if row is None:
        session.add(SyncState(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()
    session.flush()


def get_json(session: Session, key: str) -> dict[str, Any] | None:
    text = get_text(session, key)
    if not text:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def put_json(session: Session, key: str, value: dict[str, Any]) -> None:
    put_text(session, key, json.dumps(value, sort_keys=True, default=str))


def meters(session: Session) -> dict[str, str]:
    """{metric: meter id} of the meters created so far."""
    rows = session.execute(
        select(SyncState.key, SyncState.value).where(SyncState.key.startswith(METER_PREFIX))
    ).all()
    return {key.removeprefix(METER_PREFIX): value for key, value in rows}


def namespace() -> str:
    """This database's idempotency namespace, created on first use (a race keeps the first)."""
    with unit_of_work(read_only=True) as session:
        found = get_text(session, NAMESPACE)
    if found:
        return found
    try:
        with unit_of_work() as session:
            session.add(SyncState(key=NAMESPACE, value=secrets.token_hex(4), updated_at=utcnow()))
    except IntegrityError:
        pass
    with unit_of_work(read_only=True) as session:
        created = get_text(session, NAMESPACE)
    assert created is not None
    return created


def save_error(operation: str, exc: BaseException, at: datetime | None = None) -> None:
    """Remember the failure of `operation` for the status page (its own transaction)."""
    with unit_of_work() as session:
        put_json(
            session,
            LAST_ERROR,
            {
                "at": (at or utcnow()).isoformat(),
                "operation": operation,
                "message": stored_error_text(exc, 500),
            },
        )


def clear_error(session: Session, operation: str) -> None:
    error = get_json(session, LAST_ERROR)
    if error and error.get("operation") == operation:
        row = session.get(SyncState, LAST_ERROR)
        if row is not None:
            session.delete(row)
            session.flush()
