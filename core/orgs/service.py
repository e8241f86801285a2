"""Reading the customer organisations (the billing domain will add writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.orgs.countries import countries, eu_codes
from core.orgs.models import Organisation
from core.text import search_term

PLANS = ("free", "starter", "pro", "enterprise")


@dataclass(frozen=True)
class OrgView:
    id: int
    name: str
    country: str
    country_name: str
    eu: bool
    plan: str
    industry: str
    employees: int
    domain: str
    signed_up_at: datetime


def _view(org: Organisation) -> OrgView:
    country = countries().get(org.country)
    return OrgView(
        org.id,
        org.name,
        org.country,
        country.name if country else org.country,
        bool(country and country.eu),
        org.plan,
        org.industry,
        org.employees,
        org.domain,
        org.signed_up_at,
    )


def search(
    actor: Actor,
    text: str = "",
    *,
    plan: str | None = None,
    country: str | None = None,
    limit: int = 200,
) -> list[OrgView]:
    """Organisations whose name or domain contains `text` (matched literally, never as SQL)."""
    require(actor, Permission.ORGS_READ, action="orgs.search")
    with unit_of_work(read_only=True) as session:
        stmt = select(Organisation).order_by(Organisation.name)
        needle = search_term(text)
        if needle:
            stmt = stmt.where(
                or_(
                    Organisation.name.icontains(needle, autoescape=True),
                    Organisation.domain.icontains(needle, autoescape=True),
                )
            )
        if plan:
            stmt = stmt.where(Organisation.plan == plan)
        if country:
            stmt = stmt.where(Organisation.country == country.upper()[:2])
        return [_view(o) for o in session.scalars(stmt.limit(max(1, min(limit, 5000))))]


def summary(session: Session) -> dict[str, int]:
    total = session.scalar(select(func.count()).select_from(Organisation)) or 0
    in_eu = (
        session.scalar(
            select(func.count())
            .select_from(Organisation)
            .where(Organisation.country.in_(eu_codes()))
        )
        or 0
    )
    recent = (
        session.scalar(
            select(func.count())
            .select_from(Organisation)
            .where(Organisation.signed_up_at >= utcnow() - timedelta(days=30))
        )
        or 0
    )
    paying = (
        session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.plan != "free")
        )
        or 0
    )
    return {
        "total": total,
        "eu": in_eu,
        "non_eu": total - in_eu,
        "new_30d": recent,
        "paying": paying,
    }


def count_by_plan(session: Session) -> dict[str, int]:
    rows = session.execute(select(Organisation.plan, func.count()).group_by(Organisation.plan))
    return {plan: int(n) for plan, n in rows}
