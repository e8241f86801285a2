"""Retention policies per data category, a dry run of the next enforcement, and enforcement.

Enforcement handles each category in its own transaction: a failing category is reported and the
others still run, and no category is ever half-applied. Every run is stored with its report and
every category's outcome is audited. `omni privacy retention enforce` runs it from a scheduler.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, DomainError, ValidationError, stored_error_text
from core.privacy.models import RetentionPolicy, RetentionRun
from core.privacy.retention_categories import categories, category
from core.text import clean_text

ACTIONS = ("delete", "anonymise")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyInfo:
    category: str
    label: str
    description: str
    duration_days: int | None  # None: no policy set
    action: str
    legal_basis: str
    enabled: bool
    actions: tuple[str, ...]
    updated_by: str
    updated_at: datetime | None


@dataclass(frozen=True)
class PlanLine:
    category: str
    label: str
    action: str
    cutoff: datetime | None
    rows: int
    note: str  # why nothing will happen, when nothing will


@dataclass(frozen=True)
class RunLine:
    category: str
    action: str
    rows: int
    status: str  # ok | failed | skipped
    error: str = ""


@dataclass(frozen=True)
class RunInfo:
    id: int
    started_at: datetime
    finished_at: datetime | None
    actor: str
    status: str
    lines: tuple[RunLine, ...]

    @property
    def rows(self) -> int:
        return sum(line.rows for line in self.lines)


def list_policies(actor: Actor) -> list[PolicyInfo]:
    """Every category, with its policy when one is set (else the suggestion, marked unset)."""
    require(actor, Permission.PRIVACY_READ, action="privacy.retention.read")
    with unit_of_work() as session:
        policies = {p.category: p for p in session.scalars(select(RetentionPolicy))}
    out: list[PolicyInfo] = []
    for key, cat in sorted(categories().items()):
        p = policies.get(key)
        out.append(
            PolicyInfo(
                key,
                cat.label,
                cat.description,
                p.duration_days if p else None,
                p.action if p else cat.suggested_action,
                p.legal_basis if p else cat.suggested_basis,
                p.enabled if p else False,
                cat.actions,
                p.updated_by if p else "",
                p.updated_at if p else None,
            )
        )
    return out


def set_policy(
    actor: Actor,
    category_key: str,
    *,
    duration_days: int,
    action: str,
    legal_basis: str,
    enabled: bool = True,
) -> PolicyInfo:
    require(actor, Permission.RETENTION_MANAGE, action="privacy.retention.set", target=category_key)
    cat = category(category_key)
    if action not in cat.actions:
        raise ValidationError(
            f"'{cat.label}' can only be {' or '.join(a + 'd' for a in cat.actions)}; "
            f"{action!r} is not possible for it."
        )
    if not 1 <= int(duration_days) <= 36_500:
        raise ValidationError("Keep data for between 1 and 36,500 days.")
    basis = clean_text(legal_basis, 300)
    if not basis:
        raise ValidationError("Name the legal basis or reason for this retention period.")
    with unit_of_work() as session:
        policy = session.scalar(
            select(RetentionPolicy).where(RetentionPolicy.category == category_key)
        )
        previous = None if policy is None else (policy.duration_days, policy.action, policy.enabled)
        if policy is None:
            policy = RetentionPolicy(category=category_key)
            session.add(policy)
        policy.duration_days, policy.action, policy.legal_basis = int(duration_days), action, basis
        policy.enabled, policy.updated_by, policy.updated_at = (
            bool(enabled),
            actor.username,
            utcnow(),
        )
        record(
            session,
            actor,
            "privacy.retention.set",
            f"retention:{category_key}",
            {
                "duration_days": policy.duration_days,
                "action": action,
                "enabled": policy.enabled,
                "previous": list(previous) if previous else None,
            },
        )
    return next(p for p in list_policies(actor) if p.category == category_key)


def policies_token(policies: list[tuple[str, int, str]]) -> str:
    """A fingerprint of the enabled policies a dry run used: enforcement with a token refuses
    when a policy changed in between (counts may drift as time passes; policies must not)."""
    return hashlib.sha256(repr(sorted(policies)).encode("utf-8")).hexdigest()[:20]


def _enabled(session: Session) -> list[tuple[str, int, str]]:
    query = select(RetentionPolicy).where(RetentionPolicy.enabled)
    return [(p.category, p.duration_days, p.action) for p in session.scalars(query)]


def current_token(actor: Actor) -> str:
    require(actor, Permission.PRIVACY_READ, action="privacy.retention.preview")
    with unit_of_work() as session:
        return policies_token(_enabled(session))


def dry_run(actor: Actor, *, now: datetime | None = None) -> list[PlanLine]:
    """What the next enforcement would touch, per category; writes nothing."""
    require(actor, Permission.PRIVACY_READ, action="privacy.retention.preview")
    when = now or utcnow()
    lines: list[PlanLine] = []
    with unit_of_work() as session:
        policies = {p.category: p for p in session.scalars(select(RetentionPolicy))}
        for key, cat in sorted(categories().items()):
            p = policies.get(key)
            if p is None or not p.enabled:
                note = "no policy set" if p is None else "policy disabled"
                lines.append(PlanLine(key, cat.label, "", None, 0, note))
                continue
            cutoff = when - timedelta(days=p.duration_days)
            rows = cat.count(session, cutoff)
            lines.append(
                PlanLine(key, cat.label, p.action, cutoff, rows, "" if rows else "nothing due")
            )
    return lines


def enforce(
    actor: Actor, *, now: datetime | None = None, reviewed_token: str | None = None
) -> RunInfo:
    """Apply every enabled policy; one transaction per category; the run and its report kept.
    `reviewed_token` (from `current_token` at dry-run time) makes it refuse when a policy
    changed since the person reviewed the dry run. `now` may lie in the past (a catch-up run),
    never in the future: that would delete data before its time."""
    require(actor, Permission.RETENTION_MANAGE, action="privacy.retention.enforce")
    real_now = utcnow()
    when = now or real_now
    if when > real_now + timedelta(minutes=5):
        raise ValidationError("Retention cannot be enforced as of a future time.")
    with unit_of_work() as session:
        if reviewed_token is not None and policies_token(_enabled(session)) != reviewed_token:
            raise Conflict(
                "A retention policy changed since you reviewed the dry run: review it again."
            )
        run = RetentionRun(started_at=utcnow(), actor=actor.username, status="running")
        session.add(run)
        session.flush()
        run_id = run.id
        policies = _enabled(session)
    lines = [_enforce_one(actor, run_id, key, days, action, when) for key, days, action in policies]
    status = "failed" if any(line.status == "failed" for line in lines) else "ok"
    with unit_of_work() as session:
        stored = session.get(RetentionRun, run_id)
        assert stored is not None
        stored.status, stored.finished_at = status, utcnow()
        stored.report = json.dumps([asdict(line) for line in lines])
        record(
            session,
            actor,
            "privacy.retention.run",
            f"retention-run:{run_id}",
            {"status": status, "rows": sum(line.rows for line in lines)},
            outcome="ok" if status == "ok" else "failed",
        )
        return _run_info(stored)


def _enforce_one(
    actor: Actor, run_id: int, key: str, days: int, action: str, when: datetime
) -> RunLine:
    try:
        cat = category(key)
    except ValidationError:
        return RunLine(key, action, 0, "skipped", "category no longer exists")
    cutoff = when - timedelta(days=days)
    try:
        with unit_of_work() as session:
            rows = cat.enforce(session, cutoff, action)
            record(
                session,
                actor,
                "privacy.retention.enforce",
                f"retention:{key}",
                {"run": run_id, "action": action, "cutoff": cutoff.isoformat(), "rows": rows},
            )
        return RunLine(key, action, rows, "ok")
    except (SQLAlchemyError, OSError, DomainError) as exc:
        log.exception("retention of %s failed in run %s", key, run_id)
        message = stored_error_text(exc, 300)
        with unit_of_work() as session:
            record(
                session,
                actor,
                "privacy.retention.enforce",
                f"retention:{key}",
                {"run": run_id, "action": action, "error": str(message)[:300]},
                outcome="failed",
            )
        return RunLine(key, action, 0, "failed", str(message)[:300])


def _run_info(run: RetentionRun) -> RunInfo:
    lines = tuple(RunLine(**line) for line in json.loads(run.report or "[]"))
    return RunInfo(run.id, run.started_at, run.finished_at, run.actor, run.status, lines)


def list_runs(actor: Actor, *, limit: int = 50) -> list[RunInfo]:
    require(actor, Permission.PRIVACY_READ, action="privacy.retention.read")
    with unit_of_work() as session:
        runs = session.scalars(
            select(RetentionRun).order_by(RetentionRun.id.desc()).limit(max(1, min(limit, 500)))
        )
        return [_run_info(r) for r in runs]
