"""The Alembic migrations and the SQLAlchemy models describe the same schema, on both stores."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

import core.models  # noqa: F401
from core.audit.service import record
from core.auth.roles import Role
from core.db import Base, get_engine, unit_of_work
from core.schema import current_revision, head_revision, upgrade


def test_models_and_migrations_agree(db_url: str) -> None:
    with get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_reaches_head_and_is_idempotent(db_url: str) -> None:
    assert current_revision() == head_revision()
    upgrade()  # a second run changes nothing
    tables = set(inspect(get_engine()).get_table_names())
    assert {"users", "auth_sessions", "audit_log", "audit_head", "organisations"} <= tables


def test_downgrade_then_upgrade(db_url: str) -> None:
    from alembic import command

    from core.schema import alembic_config

    command.downgrade(alembic_config(), "base")
    assert "users" not in inspect(get_engine()).get_table_names()
    upgrade()
    assert current_revision() == head_revision()


def test_database_refuses_audit_update_and_delete(db_url: str) -> None:
    with unit_of_work() as session:
        record(session, "tester", "test.event", "x", {})
    for statement in ("UPDATE audit_log SET target = 'y'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), get_engine().begin() as connection:
            connection.execute(text(statement))
    with get_engine().connect() as connection:
        assert connection.execute(text("SELECT target FROM audit_log")).scalar_one() == "x"


def test_sqlite_runs_in_wal_mode(sqlite_db: str) -> None:
    with get_engine().connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


@pytest.mark.postgres
def test_postgres_pool_is_configured(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import use_home

    use_home(monkeypatch, tmp_path, postgres_database)
    engine = get_engine()
    assert engine.dialect.name == "postgresql"
    assert engine.pool.size() == 5
    assert engine.pool._max_overflow == 10  # type: ignore[attr-defined]
    assert engine.pool._pre_ping is True  # type: ignore[attr-defined]
    assert engine.pool._recycle == 1800  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_reused_postgres_database_is_as_freshly_migrated(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The PostgreSQL tests share the run's database, emptied back to its just-migrated state
    between tests (tests/conftest.py): every row and sequence as a fresh migration leaves them."""
    from tests import conftest
    from tests.helpers import ADMIN, make_user

    def state() -> tuple[dict[str, str], dict[str, int | None]]:
        with get_engine().connect() as connection:
            tables = connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
            rows = {
                table: connection.execute(
                    text(
                        "SELECT coalesce(json_agg(t ORDER BY t::text), '[]')::text "
                        f'FROM "{table}" AS t'
                    )
                ).scalar_one()
                for table in tables
            }
            sequences = {
                name: last
                for name, last in connection.execute(
                    text("SELECT sequencename, last_value FROM pg_sequences")
                )
            }
        return rows, sequences

    conftest.use_home(monkeypatch, tmp_path, postgres_database)
    conftest._reset_postgres(postgres_database)
    upgrade()
    conftest._capture_migrated_postgres(postgres_database)
    fresh = state()
    make_user("someone", Role.FINANCE)  # rows in users and audit_log, sequences moved on
    with unit_of_work() as session:
        record(session, ADMIN.username, "test.event", "x", {})
    assert state() != fresh
    get_engine().dispose()
    assert conftest._restore_migrated_postgres(postgres_database)
    assert state() == fresh
