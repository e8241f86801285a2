"""The few numbers each role checks first on its home page.

Domains contribute cards with `@home_card(roles...)`; the shell renders whatever the signed-in role
gets, so later issues add numbers without touching the page.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from core.audit import service as audit
from core.auth.actor import Actor
from core.auth.roles import Role
from core.auth.service import count_users
from core.clock import utcnow
from core.db import unit_of_work
from core.orgs.service import summary as org_summary


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    help: str = ""


CardFn = Callable[[Session, Actor], list[Metric]]
_CARDS: list[tuple[frozenset[Role], str, CardFn]] = []


def home_card(*roles: Role, title: str) -> Callable[[CardFn], CardFn]:
    def register(fn: CardFn) -> CardFn:
        _CARDS.append((frozenset(roles), title, fn))
        return fn

    return register


# Domains whose modules register cards; listed so their cards exist before the first home page.
CARD_MODULES = [
    "core.llm.home_cards",
    "core.rag.home_cards",
    "core.privacy.home_cards",
    "core.billing.home_cards",
    "core.mlops.home_cards",
]


def home_metrics(actor: Actor) -> list[tuple[str, list[Metric]]]:
    """(card title, metrics) for the actor's role, in registration order."""
    for module in CARD_MODULES:
        importlib.import_module(module)
    with unit_of_work(read_only=True) as session:
        return [(title, fn(session, actor)) for roles, title, fn in _CARDS if actor.role in roles]


@home_card(Role.ADMIN, title="Accounts")
def _accounts(session: Session, actor: Actor) -> list[Metric]:
    counts = count_users(session)
    return [
        Metric("Active users", f"{counts['active']} / {counts['total']}"),
        Metric("Locked accounts", str(counts["locked"]), "locked after repeated failed sign-ins"),
        Metric("Live sessions", str(counts["sessions"])),
    ]


@home_card(Role.ADMIN, Role.COMPLIANCE_OFFICER, title="Audit, last 24 hours")
def _audit(session: Session, actor: Actor) -> list[Metric]:
    since = utcnow() - timedelta(hours=24)
    return [
        Metric("Audited events", str(audit.count_since(session, since))),
        Metric(
            "Denied calls",
            str(audit.count_since(session, since, "denied")),
            "calls refused by the permission matrix",
        ),
        Metric(
            "Failed calls",
            str(audit.count_since(session, since, "failed")),
            "failed sign-ins and other failed actions",
        ),
    ]


@home_card(Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.FINANCE, title="Customers")
def _customers(session: Session, actor: Actor) -> list[Metric]:
    orgs = org_summary(session)
    return [
        Metric("Customer organisations", f"{orgs['total']:,}"),
        Metric("In the EU (GDPR applies)", f"{orgs['eu']:,}"),
        Metric("Paying", f"{orgs['paying']:,}"),
        Metric("New in 30 days", f"{orgs['new_30d']:,}"),
    ]
