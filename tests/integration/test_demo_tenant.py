"""The demo tenant: deterministic, complete, all-or-nothing, and only into an empty database.

Seeding and its atomicity run on both stores; determinism, the empty-database rule and the
Regulations search do not depend on the store and run on SQLite only (each PostgreSQL seeding
costs about 15 s of the suite's budget). On SQLite the tenant seeded with ANCHOR is seeded once
per run (tests/conftest.py: `seeded_demo`, the same `seed_demo` call) and each test that needs
it gets its own copy, database and files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.auth.actor import Actor
from core.auth.models import User
from core.auth.roles import Role
from core.auth.service import sign_in
from core.config import get_settings
from core.db import dispose_engines, unit_of_work
from core.demo import registry
from core.demo.registry import SeedReport, seed_demo
from core.errors import Conflict, PermissionDenied
from core.llm.models import LLMUsage
from core.orgs.countries import countries
from core.orgs.models import Organisation
from core.privacy.consent_review import review_queue
from core.privacy.models import DataSubject
from core.privacy.retention import list_policies
from tests.conftest import DEMO_ANCHOR, copy_seeded_demo, use_home
from tests.helpers import ADMIN

ANCHOR = DEMO_ANCHOR


def seed_here(database_url: str, request: pytest.FixtureRequest) -> SeedReport:
    """`seed_demo(ADMIN, anchor=ANCHOR)` into the test's empty database: on SQLite, a copy of
    the run's one such seeding."""
    if not database_url.startswith("sqlite:///"):
        return seed_demo(ADMIN, anchor=ANCHOR)
    seeded = request.getfixturevalue("seeded_demo")
    dispose_engines()
    copy_seeded_demo(seeded, Path(database_url.removeprefix("sqlite:///")).parent)
    return seeded.report


def only_compared(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Seed only the named seeders (for tests that read nothing else)."""
    registry._load()
    for name in list(registry._REGISTRY):
        if name not in names:
            monkeypatch.delitem(registry._REGISTRY, name)


def _orgs() -> list[tuple[str, str, str, int, str]]:
    with unit_of_work() as session:
        rows = session.scalars(select(Organisation).order_by(Organisation.id))
        return [(o.name, o.country, o.plan, o.employees, o.signed_up_at.isoformat()) for o in rows]


def test_seed_creates_one_user_per_role_and_a_realistic_company(
    db_url: str, request: pytest.FixtureRequest
) -> None:
    report = seed_here(db_url, request)
    assert report.seeded
    with unit_of_work() as session:
        roles = sorted(session.scalars(select(User.role)))
    assert roles == sorted(r.value for r in Role)
    for username, password in report.credentials.items():  # every printed password works
        assert sign_in(username, password).actor.username == username
    orgs = _orgs()
    assert len(orgs) == 2000
    assert len({o[0] for o in orgs}) == 2000
    eu = sum(countries()[o[1]].eu for o in orgs)
    assert 0.4 * len(orgs) < eu < 0.9 * len(orgs)  # both EU and non-EU customers
    assert {o[2] for o in orgs} == {"free", "starter", "pro", "enterprise"}
    assert all(o[4] < ANCHOR.isoformat() for o in orgs)
    _assert_privacy_history_exercises_the_review_queue()


def _assert_privacy_history_exercises_the_review_queue() -> None:
    officer = Actor("carla", Role.COMPLIANCE_OFFICER)
    queue = review_queue(officer, now=ANCHOR)
    reasons = {r for item in queue for r in item.reasons}
    assert reasons == {"stale", "missing_proof", "notice_changed", "below_digital_age"}
    with unit_of_work() as session:
        subjects = session.scalar(select(func.count()).select_from(DataSubject)) or 0
        linked = session.scalar(
            select(func.count()).select_from(LLMUsage).where(LLMUsage.end_user.is_not(None))
        )
    assert 1000 < subjects < 2000
    assert linked and linked > 1000  # their LLM usage is findable for access requests
    assert len(queue) < subjects  # most consents are in order
    assert all(p.enabled and p.duration_days for p in list_policies(officer))


def test_same_seed_same_tenant_and_passwords_are_never_derived(
    sqlite_db: str,
    request: pytest.FixtureRequest,
    migrated_sqlite: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = seed_here(sqlite_db, request)  # the configured seed
    orgs = _orgs()
    again = tmp_path / "again"  # a second empty database, seeded again with that seed
    again.mkdir()
    shutil.copyfile(migrated_sqlite, again / "omni.db")
    use_home(monkeypatch, again)
    # the comparison reads users and organisations: the second seeding runs only their seeders
    # (each seeder draws from its own stream, so the others cannot change them)
    only_compared(monkeypatch, "users", "organisations")
    second = seed_demo(ADMIN, anchor=ANCHOR, seed=get_settings().demo_seed)
    assert _orgs()[0][0] == orgs[0][0] and [o[1:] for o in _orgs()] == [o[1:] for o in orgs]
    assert first.credentials.keys() == second.credentials.keys()
    assert first.credentials != second.credentials


def test_seed_skips_or_refuses_a_non_empty_database(
    sqlite_db: str, request: pytest.FixtureRequest
) -> None:
    seed_here(sqlite_db, request)
    again = seed_demo(ADMIN, anchor=ANCHOR, if_empty=True)
    assert not again.seeded and again.credentials == {}
    with pytest.raises(Conflict, match="not empty"):
        seed_demo(ADMIN, anchor=ANCHOR, if_empty=False)
    assert len(_orgs()) == 2000


def test_a_failing_seeder_leaves_nothing_behind(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: registry.SeedContext) -> str:
        raise RuntimeError("seeder crashed half-way")

    # half-way: after the users, organisations and 60,000 LLM ledger rows (the later seeders
    # would only add seconds; the transaction is one either way)
    monkeypatch.setitem(registry._REGISTRY, "broken", registry._Seeder("broken", 35, broken))
    with pytest.raises(RuntimeError, match="half-way"):
        seed_demo(ADMIN, anchor=ANCHOR)
    with unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0
        assert session.scalar(select(func.count()).select_from(Organisation)) == 0


def test_only_admins_seed(db_url: str) -> None:
    with pytest.raises(PermissionDenied):
        seed_demo(Actor("fin", Role.FINANCE))


def test_demo_regulations_collection_answers_the_access_request_question(
    sqlite_db: str, request: pytest.FixtureRequest
) -> None:
    """The GDPR as the demo's "Regulations" collection: every article and recital is a document,
    and the deadline question finds the one-month rule first: Article 12(3), or Recital 59 which
    states the same deadline (int8 embeddings rank the two differently on CPUs with and without
    VNNI), with Article 12(3) in the top three either way."""
    from core.rag.collections import list_collections
    from core.rag.retrieval import search

    seed_here(sqlite_db, request)
    officer = Actor("demo-compliance", Role.COMPLIANCE_OFFICER)
    [regulations] = list_collections(officer)
    assert regulations.name == "Regulations" and regulations.documents == 99 + 173
    hit = search(officer, regulations.id, "How long do we have to answer an access request?")
    assert hit.relevant
    top = hit.passages[0]
    assert top.source in ("GDPR Article 12", "GDPR Recital 59")
    assert "one month" in top.text
    first_three = [(p.source, p.section.rsplit(" > ", 1)[-1]) for p in hit.passages[:3]]
    assert ("GDPR Article 12", "Article 12(3)") in first_three
    assert not search(officer, regulations.id, "What is the weather in Paris tomorrow?").relevant
    with pytest.raises(PermissionDenied):
        list_collections(Actor("demo-finance", Role.FINANCE))
