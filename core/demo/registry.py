"""Seeder registry and the run that applies every registered seeder in one transaction.

A domain adds its seeder by decorating a function in `core/<domain>/seed.py` with `@seeder` and
listing the module in `SEEDER_MODULES`. Each seeder gets its own random stream derived from the
tenant seed and its name, so adding a seeder never changes what the others generate.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.models import User
from core.auth.roles import Permission
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.orgs.models import Organisation

# Order matters: later seeders read what earlier ones wrote (organisations before their usage).
SEEDER_MODULES = [
    "core.auth.seed",
    "core.orgs.seed",
    "core.llm.seed",
    "core.rag.seed",
    "core.privacy.seed",
    "core.billing.seed",
    "core.mlops.seed",
]


@dataclass
class SeedContext:
    session: Session
    rng: random.Random
    anchor: datetime  # "today" for the generated history; fixed in tests for exact determinism
    credentials: dict[str, str] = field(default_factory=dict)  # username -> password, shown once


SeedFn = Callable[[SeedContext], str]


@dataclass(frozen=True)
class _Seeder:
    name: str
    order: int
    fn: SeedFn


_REGISTRY: dict[str, _Seeder] = {}


def seeder(name: str, order: int) -> Callable[[SeedFn], SeedFn]:
    def register(fn: SeedFn) -> SeedFn:
        _REGISTRY[name] = _Seeder(name, order, fn)
        return fn

    return register


def registered() -> list[str]:
    _load()
    return [s.name for s in sorted(_REGISTRY.values(), key=lambda s: s.order)]


def _load() -> None:
    for module in SEEDER_MODULES:
        importlib.import_module(module)


@dataclass(frozen=True)
class SeedReport:
    seeded: bool
    lines: list[str]
    credentials: dict[str, str]


def is_empty(session: Session) -> bool:
    users = session.scalar(select(func.count()).select_from(User)) or 0
    orgs = session.scalar(select(func.count()).select_from(Organisation)) or 0
    return users == 0 and orgs == 0


def seed_demo(
    actor: Actor, *, if_empty: bool = True, anchor: datetime | None = None, seed: int | None = None
) -> SeedReport:
    """Seed the demo tenant in one transaction: all of it lands, or none of it does."""
    require(actor, Permission.DEMO_SEED, action="demo.seed")
    _load()
    seed = get_settings().demo_seed if seed is None else seed
    anchor = anchor or utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    with unit_of_work() as session:
        if not is_empty(session):
            if if_empty:
                return SeedReport(
                    False, ["The database already holds data: demo seeding skipped."], {}
                )
            raise_conflict()
        credentials: dict[str, str] = {}
        lines = []
        for item in sorted(_REGISTRY.values(), key=lambda s: s.order):
            ctx = SeedContext(session, random.Random(f"{seed}:{item.name}"), anchor, credentials)
            lines.append(f"{item.name}: {item.fn(ctx)}")
            session.flush()
        record(
            session,
            actor,
            "demo.seed",
            "demo tenant",
            {"seed": seed, "seeders": registered(), "anchor": anchor.date().isoformat()},
        )
        return SeedReport(True, lines, credentials)


def raise_conflict() -> None:
    from core.errors import Conflict

    raise Conflict("The database is not empty; the demo tenant is only seeded into an empty one.")
