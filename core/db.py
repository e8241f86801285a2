"""Data layer: declarative base, engines, and the unit-of-work helper.

SQLite (WAL, foreign keys on, busy timeout) is the embedded default; PostgreSQL is chosen by URL and
gets a sized, pre-pinged, recycled connection pool. Schema changes go through Alembic
(`core.migrations`), never `create_all`, so the two stores cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.config import get_settings
from core.errors import ConfigurationError, Conflict, DatabaseUnavailable, DomainError

# Stable constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend. SQLite keeps no zone, so it is restored on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; read the time from core.clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take over transaction control from pysqlite so `_sqlite_begin` decides how each one starts.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front: a deferred transaction that read first and writes
    # later fails outright (SQLITE_BUSY_SNAPSHOT) when another writer got in between, whereas an
    # IMMEDIATE one simply waits its turn. Read-only units keep the cheap deferred BEGIN.
    if conn.get_execution_options().get("omni_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """Build an engine with the settings the design table asks for on each backend."""
    settings = get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            settings.ensure_home()
        engine = create_engine(url, echo=settings.db_echo, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle_s,
        pool_timeout=settings.db_pool_timeout_s,
    )


def get_engine(url: str | None = None) -> Engine:
    _session_factory(url)
    return _engines[url or get_settings().effective_database_url]


def _session_factory(url: str | None = None, read_only: bool = False) -> sessionmaker[Session]:
    url = url or get_settings().effective_database_url
    with _lock:
        if url not in _engines:
            engine = make_engine(url)
            _engines[url] = engine
            _factories[url] = sessionmaker(engine, expire_on_commit=False)
            _factories[url + "#ro"] = sessionmaker(
                engine.execution_options(omni_read_only=True), expire_on_commit=False
            )
        return _factories[url + "#ro" if read_only else url]


def dispose_engines() -> None:
    """Close every pooled connection (tests, and after the settings change)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


@contextmanager
def unit_of_work(url: str | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls everything back if it raises.

    `read_only=True` is for queries: on SQLite it does not take the write lock.
    """
    session = _session_factory(url, read_only)()
    try:
        yield session
        session.commit()
    except (OperationalError, ProgrammingError) as exc:
        session.rollback()
        raise _translate(exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_MISSING_SCHEMA = ("no such table", "no such column", "does not exist", "undefinedtable")


def _translate(exc: OperationalError | ProgrammingError) -> DomainError:
    """Driver errors a person can fix become messages that say how."""
    text = str(exc.orig).lower()
    if any(marker in text for marker in _MISSING_SCHEMA):
        return ConfigurationError(
            "The database schema is missing or out of date: run `omni db upgrade` (or `make run`)."
        )
    if "locked" in text:
        return Conflict("The database is busy with another write; try again in a moment.")
    return DatabaseUnavailable(
        f"The database is unreachable ({type(exc.orig).__name__}). Check OMNI_DATABASE_URL and "
        "that the server is running; `omni config show` prints the effective URL."
    )
