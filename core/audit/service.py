"""Writing, reading, exporting and verifying the audit log.

`record` is called inside the caller's unit of work, so the entry commits or rolls back together
with the change it describes. Denials are recorded by `core.auth.guard` in a unit of their own,
because the denied call itself writes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.chain import canonical_summary, entry_canonical, link_hash
from core.audit.models import AuditEntry, AuditHead
from core.auth.actor import Actor
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import IntegrityError
from core.text import clean_text, search_term

OUTCOMES = ("ok", "denied", "failed")
_MAX = {"actor": 128, "action": 64, "target": 256}


def _clip(value: str, field: str) -> str:
    limit = _MAX[field]
    value = clean_text(value, 100_000)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def record(
    session: Session,
    actor: Actor | str,
    action: str,
    target: str = "",
    summary: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
) -> AuditEntry:
    """Append one entry to the chain within `session`'s transaction."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if isinstance(actor, Actor):
        actor_name, actor_role = actor.username, actor.role.value
    else:
        actor_name, actor_role = actor, "anonymous"
    # FOR UPDATE serialises appenders on PostgreSQL; SQLite writers already hold the write lock.
    head = session.get(AuditHead, 1, with_for_update=True)
    if head is None:  # created by the first migration; gone means tampering or no schema
        raise IntegrityError(
            "The audit log's head row is missing: run `omni db upgrade` on a new database, "
            "or `omni audit verify` to investigate."
        )
    entry = AuditEntry(
        seq=head.seq + 1,
        ts=utcnow(),
        actor=_clip(actor_name, "actor"),
        actor_role=actor_role,
        action=_clip(action, "action"),
        target=_clip(target, "target"),
        outcome=outcome,
        summary=canonical_summary(summary or {}),
        prev_hash=head.hash,
    )
    digest = link_hash(head.hash, entry_canonical(entry))
    entry.hash = digest
    session.add(entry)
    head.seq, head.hash = entry.seq, digest
    session.flush()
    return entry


def record_now(
    actor: Actor | str,
    action: str,
    target: str = "",
    summary: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
) -> None:
    """Record in a unit of work of its own (for events whose main transaction writes nothing)."""
    with unit_of_work() as session:
        record(session, actor, action, target, summary, outcome=outcome)


@dataclass(frozen=True)
class AuditFilter:
    actors: Sequence[str] = ()
    actions: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""  # matched literally inside target or summary; never interpreted as SQL/LIKE
    limit: int = 1000


def query(session: Session, flt: AuditFilter) -> list[AuditEntry]:
    stmt = select(AuditEntry)
    if flt.actors:
        stmt = stmt.where(AuditEntry.actor.in_(list(flt.actors)))
    if flt.actions:
        stmt = stmt.where(AuditEntry.action.in_(list(flt.actions)))
    if flt.outcomes:
        stmt = stmt.where(AuditEntry.outcome.in_(list(flt.outcomes)))
    if flt.since:
        stmt = stmt.where(AuditEntry.ts >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEntry.ts < flt.until)
    needle = search_term(flt.text, 200)
    if needle:
        stmt = stmt.where(
            AuditEntry.target.contains(needle, autoescape=True)
            | AuditEntry.summary.contains(needle, autoescape=True)
        )
    stmt = stmt.order_by(AuditEntry.seq.desc()).limit(max(1, min(flt.limit, 100_000)))
    return list(session.scalars(stmt))


def distinct_values(session: Session) -> tuple[list[str], list[str]]:
    """Known actors and actions, for the filter pickers."""
    actors = list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))
    actions = list(
        session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    )
    return actors, actions


def count_since(session: Session, since: datetime, outcome: str | None = None) -> int:
    stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.ts >= since)
    if outcome:
        stmt = stmt.where(AuditEntry.outcome == outcome)
    return int(session.scalar(stmt) or 0)


CSV_COLUMNS = (
    "seq",
    "ts",
    "actor",
    "actor_role",
    "action",
    "target",
    "outcome",
    "summary",
    "prev_hash",
    "hash",
)


def to_csv(entries: Sequence[AuditEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = [getattr(e, c) for c in CSV_COLUMNS]
        row[1] = e.ts.isoformat()
        # A cell starting with = + - @ would run as a formula in a spreadsheet.
        writer.writerow([neutralise_formula(str(v)) for v in row])
    return buffer.getvalue()


def neutralise_formula(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


# --- permissioned entry points for the console and CLI ----------------------------------------


def search(actor: Actor, flt: AuditFilter) -> list[AuditEntry]:
    from core.auth.guard import require
    from core.auth.roles import Permission

    require(actor, Permission.AUDIT_READ, action="audit.search")
    with unit_of_work(read_only=True) as session:
        return query(session, flt)


def filter_choices(actor: Actor) -> tuple[list[str], list[str]]:
    from core.auth.guard import require
    from core.auth.roles import Permission

    require(actor, Permission.AUDIT_READ, action="audit.search")
    with unit_of_work(read_only=True) as session:
        return distinct_values(session)


def export_csv(actor: Actor, flt: AuditFilter) -> tuple[str, int]:
    """CSV of the entries matching `flt`; the export itself is audited (it moves data out)."""
    from core.auth.guard import require
    from core.auth.roles import Permission

    require(actor, Permission.AUDIT_EXPORT, action="audit.export")
    with unit_of_work() as session:
        entries = query(session, flt)
        record(
            session,
            actor,
            "audit.export",
            "audit_log",
            {"rows": len(entries), "filter": _describe(flt)},
        )
        return to_csv(entries), len(entries)


def _describe(flt: AuditFilter) -> dict[str, Any]:
    return {
        "actors": list(flt.actors),
        "actions": list(flt.actions),
        "outcomes": list(flt.outcomes),
        "since": flt.since.isoformat() if flt.since else None,
        "until": flt.until.isoformat() if flt.until else None,
        "text": flt.text,
    }
