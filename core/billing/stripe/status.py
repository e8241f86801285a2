"""`sync_status`: everything a page shows about the Stripe sync, read from the ledger and
`SyncState` only (no call to Stripe, so the page opens instantly and works with the sync off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.catalog import METERED
from core.billing.models import (
    Coupon,
    Customer,
    Invoice,
    Price,
    Product,
    StripeEvent,
    Subscription,
)
from core.billing.stripe.client import (
    SYNC_OFF,
    WEBHOOKS_OFF,
    key_mode,
    sync_enabled,
    webhook_secret,
)
from core.billing.stripe.push import PUSHED_INVOICES, PUSHED_SUBSCRIPTIONS
from core.billing.stripe.state import CURSOR, LAST_ERROR, LAST_PULL, LAST_PUSH, get_json, meters
from core.config import get_settings
from core.db import unit_of_work


@dataclass(frozen=True)
class KindCount:
    kind: str
    synced: int
    pending: int  # would be created by the next push


@dataclass(frozen=True)
class SyncStatus:
    enabled: bool
    mode: str  # "test", "live", "unknown" (a key of another shape) or "off"
    message: str  # why the sync is off, or ""
    webhooks_enabled: bool
    webhooks_message: str
    counts: list[KindCount]
    last_push_at: datetime | None
    last_push: dict[str, Any] = field(default_factory=dict)  # created per kind, skipped, warnings
    events_cursor: str | None = None
    events_cursor_created: datetime | None = None
    last_pull_at: datetime | None = None
    last_pull: dict[str, Any] = field(default_factory=dict)
    events_by_via: dict[str, int] = field(default_factory=dict)  # webhook / poll
    events_by_outcome: dict[str, int] = field(default_factory=dict)  # stored outcome text
    last_error: str | None = None
    last_error_operation: str | None = None
    last_error_at: datetime | None = None

    @property
    def pending_total(self) -> int:
        return sum(c.pending for c in self.counts)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _count(session: Session, model: Any, *where: ColumnElement[bool]) -> KindCount:
    synced, pending = session.execute(
        select(
            func.count(model.stripe_id),
            func.count(model.id) - func.count(model.stripe_id),
        ).where(*where)
    ).one()
    return KindCount(model.__tablename__.removeprefix("billing_"), int(synced), int(pending))


def _meter_count(session: Session) -> KindCount:
    metrics = set(
        session.scalars(
            select(Price.metric).where(Price.scheme.in_(METERED), Price.metric.is_not(None))
        )
    )
    done = set(meters(session))
    return KindCount("meters", len(done), len(metrics - done))


def sync_status(actor: Actor) -> SyncStatus:
    require(actor, Permission.BILLING_READ, action="billing.stripe.status")
    settings = get_settings()
    key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    webhooks_on = webhook_secret() is not None
    with unit_of_work(read_only=True) as session:
        counts = [
            _count(session, Product),
            _meter_count(session),
            _count(session, Price),
            _count(session, Customer),
            _count(session, Coupon),
            _count(
                session,
                Subscription,
                Subscription.status.in_(PUSHED_SUBSCRIPTIONS) | Subscription.stripe_id.is_not(None),
            ),
            _count(
                session,
                Invoice,
                Invoice.status.in_(PUSHED_INVOICES) | Invoice.stripe_id.is_not(None),
            ),
        ]
        push = get_json(session, LAST_PUSH) or {}
        pull = get_json(session, LAST_PULL) or {}
        cursor = get_json(session, CURSOR) or {}
        error = get_json(session, LAST_ERROR) or {}
        by_via = {
            str(via): int(n)
            for via, n in session.execute(
                select(StripeEvent.via, func.count()).group_by(StripeEvent.via)
            )
        }
        by_outcome = {
            str(outcome): int(n)
            for outcome, n in session.execute(
                select(StripeEvent.outcome, func.count())
                .group_by(StripeEvent.outcome)
                .order_by(func.count().desc())
                .limit(20)
            )
        }
    enabled = sync_enabled()
    return SyncStatus(
        enabled=enabled,
        mode=key_mode(key.strip() if key else None),
        message="" if enabled else SYNC_OFF,
        webhooks_enabled=webhooks_on,
        webhooks_message="" if webhooks_on else WEBHOOKS_OFF,
        counts=counts,
        last_push_at=_when(push.get("at")),
        last_push={k: v for k, v in push.items() if k != "at"},
        events_cursor=cursor.get("id"),
        events_cursor_created=_when(cursor.get("created")),
        last_pull_at=_when(pull.get("at")),
        last_pull={k: v for k, v in pull.items() if k != "at"},
        events_by_via=by_via,
        events_by_outcome=by_outcome,
        last_error=error.get("message"),
        last_error_operation=error.get("operation"),
        last_error_at=_when(error.get("at")),
    )


@dataclass(frozen=True)
class EventRow:
    id: str
    type: str
    via: str
    outcome: str
    created: datetime
    received_at: datetime


def recent_events(actor: Actor, limit: int = 50) -> list[EventRow]:
    """The Stripe events applied most recently, newest first."""
    require(actor, Permission.BILLING_READ, action="billing.stripe.status")
    with unit_of_work(read_only=True) as session:
        rows = session.scalars(
            select(StripeEvent).order_by(StripeEvent.received_at.desc()).limit(limit)
        )
        return [EventRow(e.id, e.type, e.via, e.outcome, e.created, e.received_at) for e in rows]
