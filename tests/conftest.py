"""Shared fixtures: an isolated OMNI_HOME and a migrated database per test, on SQLite always and
on PostgreSQL when OMNI_TEST_POSTGRES_URL is set (a throw-away database is created for the run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.config import reload_settings
from core.db import dispose_engines
from core.schema import upgrade

POSTGRES_URL = os.environ.get("OMNI_TEST_POSTGRES_URL")


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return (
            f"PostgreSQL tests: on ({make_url(POSTGRES_URL).render_as_string(hide_password=True)})"
        )
    return "PostgreSQL tests: SKIPPED (set OMNI_TEST_POSTGRES_URL to run them; .ci/run does)"


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


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str | None = None) -> None:
    """Point the settings at `home` (and a database URL) for this test."""
    monkeypatch.setenv("OMNI_HOME", str(home))
    if database_url:
        monkeypatch.setenv("OMNI_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("OMNI_DATABASE_URL", raising=False)
    dispose_engines()
    reload_settings()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A migrated, empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path / 'omni.db'}"
    use_home(monkeypatch, tmp_path, url)
    upgrade()
    yield url
    dispose_engines()
    reload_settings()


@pytest.fixture
def sqlite_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty SQLite database (for tests whose point is not the backend)."""
    use_home(monkeypatch, tmp_path)
    upgrade()
    yield f"sqlite:///{tmp_path / 'omni.db'}"
    dispose_engines()
    reload_settings()
