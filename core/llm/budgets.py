"""Monthly LLM budgets per team and per customer, set by finance; the router enforces them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import NotFound, ValidationError
from core.llm.ledger import LEDGER, spend_since
from core.llm.models import LLMBudget
from core.llm.router import Budget, month_start
from core.money import parse_usd_to_micros
from core.text import clean_text

SCOPES = ("team", "customer")
MAX_BUDGET_USD = Decimal(10_000_000)


@dataclass(frozen=True)
class BudgetView:
    scope: str
    subject: str
    limit_micros: int
    spent_micros: int
    updated_by: str
    updated_at: datetime


def load_budgets() -> list[Budget]:
    with unit_of_work(read_only=True) as session:
        return [
            Budget(b.scope, b.subject, b.limit_micros) for b in session.scalars(select(LLMBudget))
        ]


def spend_for(scope: str, subject: str, since: datetime) -> int:
    LEDGER.flush(5.0)  # rows still queued would otherwise be missing from the first reading
    if scope == "team":
        return spend_since(since, team=subject)
    return spend_since(since, customer_id=int(subject))


def _subject(scope: str, subject: str) -> str:
    if scope not in SCOPES:
        raise ValidationError(f"Unknown budget scope {scope[:20]!r}. Valid: team, customer.")
    subject = clean_text(subject, 64)
    if not subject:
        raise ValidationError("Name the team or the customer the budget is for.")
    if scope == "customer" and not subject.isdigit():
        raise ValidationError("A customer budget names the organisation by its number.")
    return subject


def set_budget(actor: Actor, scope: str, subject: str, limit_usd: str | Decimal) -> BudgetView:
    subject = _subject(scope, subject)
    require(
        actor, Permission.LLM_BUDGETS_MANAGE, action="llm.budgets.set", target=f"{scope}:{subject}"
    )
    limit = parse_usd_to_micros(limit_usd, field="Monthly budget", maximum=MAX_BUDGET_USD)
    with unit_of_work() as session:
        row = session.scalar(
            select(LLMBudget).where(LLMBudget.scope == scope, LLMBudget.subject == subject)
        )
        before = row.limit_micros if row else None
        if row is None:
            row = LLMBudget(
                scope=scope, subject=subject, limit_micros=limit, updated_by=actor.username
            )
            session.add(row)
        row.limit_micros, row.updated_by, row.updated_at = limit, actor.username, utcnow()
        record(
            session,
            actor,
            "llm.budgets.set",
            f"{scope}:{subject}",
            {"from_micros": before, "to_micros": limit},
        )
    from core.llm.gateway import reload_router

    reload_router(keep_state=True)
    return BudgetView(
        scope,
        subject,
        limit,
        spend_for(scope, subject, month_start(utcnow())),
        actor.username,
        utcnow(),
    )


def delete_budget(actor: Actor, scope: str, subject: str) -> None:
    subject = _subject(scope, subject)
    require(
        actor,
        Permission.LLM_BUDGETS_MANAGE,
        action="llm.budgets.delete",
        target=f"{scope}:{subject}",
    )
    with unit_of_work() as session:
        row = session.scalar(
            select(LLMBudget).where(LLMBudget.scope == scope, LLMBudget.subject == subject)
        )
        if row is None:
            raise NotFound(f"No budget for {scope} {subject!r}.")
        record(
            session,
            actor,
            "llm.budgets.delete",
            f"{scope}:{subject}",
            {"limit_micros": row.limit_micros},
        )
        session.delete(row)
    from core.llm.gateway import reload_router

    reload_router(keep_state=True)


def list_budgets(actor: Actor) -> list[BudgetView]:
    require(actor, Permission.LLM_SPEND_READ, action="llm.budgets.list")
    start = month_start(utcnow())
    with unit_of_work(read_only=True) as session:
        rows = list(session.scalars(select(LLMBudget).order_by(LLMBudget.scope, LLMBudget.subject)))
    return [
        BudgetView(
            r.scope,
            r.subject,
            r.limit_micros,
            spend_for(r.scope, r.subject, start),
            r.updated_by,
            r.updated_at,
        )
        for r in rows
    ]
