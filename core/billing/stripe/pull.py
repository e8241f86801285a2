"""`pull_events`: read Stripe's Events API from the stored cursor and apply each event, oldest
first, each in a transaction of its own that also moves the cursor on. A pull cut off half-way
(network, rate limit, crash) keeps what it applied and the next one resumes after it; events that
also came by webhook are found in `StripeEvent` and skipped.

The webhook is the fast path; the pull is the safety net for deliveries Stripe gave up on (and
the only path where the console cannot receive webhooks). Stripe keeps events for 30 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from core.audit.service import record, record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.billing.stripe.client import StripeGateway
from core.billing.stripe.events import Kind, apply_event, ts
from core.billing.stripe.state import (
    CURSOR,
    LAST_PULL,
    clear_error,
    get_json,
    put_json,
    save_error,
)
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import stored_error_text


@dataclass
class PullReport:
    fetched: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # by outcome kind
    cursor: str | None = None

    def add(self, kind: Kind) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    @property
    def applied(self) -> int:
        return self.counts.get("applied", 0)

    @property
    def duplicates(self) -> int:
        return self.counts.get("duplicate", 0)

    def summary(self) -> dict[str, Any]:
        return {"fetched": self.fetched, **self.counts, "cursor": self.cursor}

    def describe(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"Read {self.fetched} Stripe event(s)" + (f": {kinds}." if kinds else ".")


def _cursor_value(event: dict[str, Any]) -> dict[str, Any]:
    created = ts(event.get("created"))
    return {"id": event["id"], "created": created.isoformat() if created else None}


def pull_events(actor: Actor, *, page_size: int = 100) -> PullReport:
    """Apply every Stripe event newer than the cursor; audited with the counts."""
    require(actor, Permission.BILLING_SYNC, action="billing.stripe.pull")
    gateway = StripeGateway.from_settings()
    with unit_of_work(read_only=True) as session:
        stored = get_json(session, CURSOR)
    report = PullReport(cursor=stored.get("id") if stored else None)
    try:
        for event in gateway.events_after(report.cursor, page_size):
            report.fetched += 1
            try:
                with unit_of_work() as session:
                    applied = apply_event(session, event, "poll", actor)
                    put_json(session, CURSOR, _cursor_value(event))
                report.add(applied.kind)
            except IntegrityError:  # the webhook stored the same event a moment ago
                with unit_of_work() as session:
                    put_json(session, CURSOR, _cursor_value(event))
                report.add("duplicate")
            report.cursor = event["id"]
    except Exception as exc:
        save_error("pull", exc)
        record_now(
            actor,
            "billing.stripe.pull",
            "stripe",
            {**report.summary(), "error": stored_error_text(exc, 300)},
            outcome="failed",
        )
        raise
    with unit_of_work() as session:
        put_json(session, LAST_PULL, {"at": utcnow().isoformat(), **report.summary()})
        clear_error(session, "pull")
        record(session, actor, "billing.stripe.pull", "stripe", report.summary())
    return report
