"""Shared fixtures: an isolated OMNI_HOME and a migrated database per test, on SQLite always and
on PostgreSQL when OMNI_TEST_POSTGRES_URL is set (a throw-away database is created for the run).

The migrations run once per run and backend; each test then gets the database they produce
without running them again (a few tenths of a second each, for hundreds of tests): on SQLite a
copy of a migrated file, on PostgreSQL the run's database emptied back to its just-migrated
state. tests/integration/test_schema.py runs the migrations themselves (up, down, up again) on
both backends.

The clock (core/clock.py) is pinned for the whole run: it starts at TEST_NOW, midday of the
demo's anchor, whatever the machine's date, and runs on from there; subprocesses (the CLI, the
browser tests' server) get the same start through OMNI_CLOCK_START. A test about time takes
`frozen_clock` and moves it. tests/integration/test_clock_independence.py runs the UI suite
with the system clock a year ahead to show that nothing else reads it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core import clock
from core.config import reload_settings
from core.db import dispose_engines
from core.schema import upgrade

if TYPE_CHECKING:
    from core.demo.registry import SeedReport

POSTGRES_URL = os.environ.get("OMNI_TEST_POSTGRES_URL")
DEMO_ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)  # the demo tenant's "today" in the tests
# Midday, so "today" is the anchor's date in every time zone from UTC-11 to UTC+11.
TEST_NOW = DEMO_ANCHOR + timedelta(hours=12)


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return (
            f"PostgreSQL tests: on ({make_url(POSTGRES_URL).render_as_string(hide_password=True)})"
        )
    return "PostgreSQL tests: SKIPPED (set OMNI_TEST_POSTGRES_URL to run them; .ci/run does)"


@pytest.fixture(scope="session", autouse=True)
def pinned_clock() -> Iterator[clock.ShiftedClock]:
    """The run's clock: TEST_NOW when the run starts, then running on (durations, ordering and
    expiry behave as in life; the date is the demo's). Subprocesses start at TEST_NOW too."""
    pinned = clock.ShiftedClock(TEST_NOW)
    previous = clock.set_clock(pinned)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_CLOCK_START", TEST_NOW.isoformat())
        yield pinned
    clock.set_clock(previous)


@pytest.fixture
def frozen_clock() -> Iterator[clock.FrozenClock]:
    """A clock standing still at TEST_NOW for this test, to move with `set` / `advance`."""
    frozen = clock.FrozenClock(TEST_NOW)
    with clock.use_clock(frozen):
        yield frozen


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[PasswordHasher]:
    """Argon2id at its lowest cost for the run; yields the production hasher.

    At the production cost every hash and every sign-in costs about 0.1 s on 2 cores, some 300
    of them in the suite. The tests that are about hashing (tests/unit/test_passwords.py) put the
    production hasher back and check its parameters."""
    from core.auth import passwords

    production = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield production
    passwords._hasher = production


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the test server for this run, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("OMNI_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server")
    server = make_url(POSTGRES_URL)
    name = f"omni_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# What the migrations leave in the test database on PostgreSQL, captured after the run's first
# migration, so that later tests get the same database by emptying the tables and putting back
# the migrations' rows and sequence positions (a few hundredths of a second) instead of dropping
# the schema and migrating again (0.3-0.5 s, some 90 tests). A schema that differs from the
# captured one in any way (a test dropped a trigger, a migration was added) is dropped and
# migrated again, as every time before.
_SCHEMA_FINGERPRINT = text(
    """
    SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
        SELECT format('column %s.%s %s %s %s %s', table_name, column_name, data_type,
                      is_nullable, column_default, is_generated) AS item
          FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL SELECT format('constraint %s %s %s', conrelid::regclass, conname,
                                pg_get_constraintdef(oid))
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL SELECT format('trigger %s %s', tgrelid::regclass, pg_get_triggerdef(oid))
          FROM pg_trigger WHERE NOT tgisinternal
        UNION ALL SELECT format('function %s %s', proname, md5(prosrc))
          FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        UNION ALL SELECT format('type %s %s', t.typname, e.enumlabel)
          FROM pg_type t LEFT JOIN pg_enum e ON e.enumtypid = t.oid
         WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd')
        UNION ALL SELECT 'sequence ' || sequencename FROM pg_sequences WHERE schemaname = 'public'
        UNION ALL SELECT format('relation %s %s', relname, relkind) FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm', 'p', 'f')
        UNION ALL SELECT 'revision ' || version_num FROM alembic_version
    ) AS schema_items
    """
)


@dataclass(frozen=True)
class _MigratedPostgres:
    fingerprint: str
    tables: list[str]
    rows: dict[str, tuple[list[str], str]]  # table: (insertable columns, JSON array of rows)
    sequences: list[tuple[str, int, bool]]  # name, value, is_called (arguments of setval)


_MIGRATED_POSTGRES: dict[str, _MigratedPostgres] = {}


def _capture_migrated_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        fingerprint = connection.execute(_SCHEMA_FINGERPRINT).scalar_one()
        tables = list(
            connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version' ORDER BY tablename"
                )
            ).scalars()
        )
        rows = {}
        for table in tables:
            data = connection.execute(
                text(f"SELECT coalesce(json_agg(t), '[]')::text FROM \"{table}\" AS t")
            ).scalar_one()
            if data != "[]":
                columns = list(
                    connection.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = :table "
                            "AND is_generated = 'NEVER' ORDER BY ordinal_position"
                        ),
                        {"table": table},
                    ).scalars()
                )
                rows[table] = (columns, data)
        sequences = [
            (str(name), int(last if last is not None else start), last is not None)
            for name, last, start in connection.execute(
                text(
                    "SELECT sequencename, last_value, start_value FROM pg_sequences "
                    "WHERE schemaname = 'public'"
                )
            )
        ]
    engine.dispose()
    _MIGRATED_POSTGRES[url] = _MigratedPostgres(fingerprint, tables, rows, sequences)


def _restore_migrated_postgres(url: str) -> bool:
    """Back to the captured just-migrated state if the schema is still that one (else False)."""
    migrated = _MIGRATED_POSTGRES.get(url)
    if migrated is None:
        return False
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '5s'"))
            if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
                return False
            if connection.execute(_SCHEMA_FINGERPRINT).scalar_one() != migrated.fingerprint:
                return False
            # DELETE, not TRUNCATE (which costs a few ms per table), with triggers (the
            # append-only ones, foreign keys) off for this transaction: superusers only, as the
            # test server's user is; elsewhere this fails and the schema is dropped instead.
            connection.execute(text("SET LOCAL session_replication_role = replica"))
            for table in migrated.tables:
                connection.execute(text(f'DELETE FROM "{table}"'))
            for table, (columns, data) in migrated.rows.items():
                listed = ", ".join(f'"{column}"' for column in columns)
                connection.execute(
                    text(
                        f'INSERT INTO "{table}" ({listed}) OVERRIDING SYSTEM VALUE '
                        f'SELECT {listed} FROM json_populate_recordset(NULL::"{table}", :data)'
                    ),
                    {"data": data},
                )
            for name, value, called in migrated.sequences:
                connection.execute(
                    text("SELECT setval(:name, :value, :called)"),
                    {"name": f'"{name}"', "value": value, "called": called},
                )
        return True
    except DBAPIError:
        return False
    finally:
        engine.dispose()


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str | None = None) -> None:
    """Point the settings at `home` (and a database URL) for this test."""
    monkeypatch.setenv("OMNI_HOME", str(home))
    if database_url:
        monkeypatch.setenv("OMNI_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("OMNI_DATABASE_URL", raising=False)
    dispose_engines()
    reload_settings()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database file migrated to head, to copy (never opened by a test itself)."""
    home = tmp_path_factory.mktemp("migrated-sqlite")
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        upgrade()
        dispose_engines()  # closes the last connection: the WAL is checkpointed into the file
    reload_settings()
    assert sorted(p.name for p in home.iterdir()) == ["omni.db"]
    return home / "omni.db"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        use_home(monkeypatch, tmp_path, url)
        if not _restore_migrated_postgres(url):
            _reset_postgres(url)
            upgrade()
            _capture_migrated_postgres(url)
    else:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), tmp_path / "omni.db")
        url = f"sqlite:///{tmp_path / 'omni.db'}"
        use_home(monkeypatch, tmp_path, url)
    yield url
    dispose_engines()
    reload_settings()


@dataclass(frozen=True)
class SeededDemo:
    home: Path
    report: SeedReport


@pytest.fixture(scope="session")
def seeded_demo(migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> SeededDemo:
    """The demo tenant, seeded once per run on SQLite (`seed_demo(ADMIN, anchor=DEMO_ANCHOR)`),
    for tests to take copies of with `copy_seeded_demo`. One seeding costs 5-30 s on 2 cores;
    the demo tenant tests and the UI suite need the same one several times."""
    from core.demo.registry import seed_demo
    from tests.helpers import ADMIN

    home = tmp_path_factory.mktemp("seeded-demo")
    shutil.copyfile(migrated_sqlite, home / "omni.db")
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        report = seed_demo(ADMIN, anchor=DEMO_ANCHOR)
        dispose_engines()
    reload_settings()
    return SeededDemo(home, report)


def copy_seeded_demo(seeded: SeededDemo, home: Path) -> None:
    """The seeded home's database and files into `home` (nothing may hold `home`'s database
    open). Model caches stay behind: a home seeded by a process that had already loaded its
    models has none either."""
    shutil.copytree(
        seeded.home,
        home,
        dirs_exist_ok=True,
        ignore=lambda folder, names: ["cache"] if Path(folder) == seeded.home else [],
    )


@pytest.fixture(scope="session")
def local_model_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An OMNI_HOME holding the bundled local model, converted from its GGUF once per run and
    loaded once per process (`get_local_model()`, default options). Loading costs 20-30 s on 2
    cores, so every test that needs the real model shares this one: the model tests use it
    directly, and the UI links its home's model cache here (same resolved cache directory, so
    the same loaded model)."""
    from core.llm.local.engine import clear_local_models, get_local_model

    home = tmp_path_factory.mktemp("local-model-home")
    clear_local_models()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_HOME", str(home))
        reload_settings()
        get_local_model()
    reload_settings()
    yield home
    clear_local_models()


@pytest.fixture
def sqlite_db(
    migrated_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty SQLite database (for tests whose point is not the backend)."""
    shutil.copyfile(migrated_sqlite, tmp_path / "omni.db")
    use_home(monkeypatch, tmp_path)
    yield f"sqlite:///{tmp_path / 'omni.db'}"
    dispose_engines()
    reload_settings()
