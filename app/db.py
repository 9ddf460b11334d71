"""Engine, the UTC datetime column type, and transaction scopes (one per request or job)."""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

from app.errors import Invalid

# Constraint names must be stable for Alembic (and SQLite batch mode) to alter them later.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite forgets the zone, so it is re-attached on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:  # noqa: ARG002
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine with up to 2 × `pool_size` connections (see `max_requests_in_flight`)."""
    engine = _make_engine(url, pool_size=pool_size)
    event.listen(engine, "before_cursor_execute", _refuse_unstorable_text)
    return engine


def _unstorable(value: object) -> bool:
    if not isinstance(value, str):
        return False
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate, which JSON's \ud800 escapes can carry
        return True
    return False


def _values(parameters: Any) -> Iterator[object]:
    """Every bound value, whether one row or many, as a dict or a sequence (drivers and batching differ)."""
    items = parameters.values() if isinstance(parameters, dict) else parameters or ()
    for item in items:
        if isinstance(item, dict | list | tuple):
            yield from _values(item)
        else:
            yield item


def _refuse_unstorable_text(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _executemany: bool
) -> None:
    """Text PostgreSQL cannot store (NUL) or no database can encode (unpaired surrogates) is bad input, whatever
    field or query parameter it came in: a clear 422 before the driver fails on it, and nothing is written."""
    if any(_unstorable(v) for v in _values(parameters)):
        raise Invalid.field("text", "may not contain NUL characters or unpaired surrogates")


def _make_engine(url: str, *, pool_size: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        pool: dict[str, Any] = {}
        if parsed.database and parsed.database != ":memory:":
            pool = {"pool_size": pool_size, "max_overflow": pool_size}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        _sqlite_single_writer(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


_WRITER = "dutyline.sqlite_writer"
WRITER_WAIT_SECONDS = 30.0


def max_requests_in_flight(pool_size: int) -> int:
    """How many requests one process handles at once: fewer than the pool's connections, so that the
    dispatcher and the scheduler always find one (see app.middleware.InFlightLimit)."""
    return max(1, 2 * pool_size - 4)


def _sqlite_single_writer(engine: Engine) -> None:
    # SQLite has one writer at a time. A deferred transaction that reads and then writes can fail at
    # once with "database is locked" when two race; BEGIN IMMEDIATE makes the second one wait instead.
    # Read-only work opts out (see `reader`), so readers never queue behind writers.
    #
    # Writers of this process also queue on a lock of their own before BEGIN IMMEDIATE. SQLite's busy handler
    # polls with sleeps of up to 100 ms, so a dozen threads waiting on it leave the database idle most of the
    # time and a burst of requests collapses into timeouts; a lock hands the database to the next writer at once.
    writers = threading.Lock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode == "IMMEDIATE":
            if not writers.acquire(timeout=WRITER_WAIT_SECONDS):
                raise OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked (writers queued too long)")
                )
            conn.info[_WRITER] = writers
        try:
            conn.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            _release(conn.info)
            raise

    # These fire just before the COMMIT or ROLLBACK itself: the next writer's BEGIN IMMEDIATE may wait those
    # few milliseconds in SQLite's busy handler, the only one doing so.
    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Any) -> None:
        _release(conn.info)

    # However a connection ends up (invalidated, closed mid-transaction), it never keeps the queue blocked.
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        _release(record.info)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_conn: Any, record: Any, _exc: Any) -> None:
        _release(record.info)


def _release(info: dict[str, Any]) -> None:
    lock = info.pop(_WRITER, None)
    if lock is not None:
        lock.release()


def reader(engine: Engine) -> Engine:
    """The same engine for read-only units of work (on SQLite they do not take the write lock)."""
    return engine.execution_options(sqlite_begin="DEFERRED")


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


def insert_unless_conflict(
    session: Session, table: Table, row: dict[str, Any], *, on: tuple[str, ...] | None = None
) -> Any:
    """INSERT the row unless it conflicts with a unique key (`on`: those columns only): the new row's
    primary key, or None when nothing was written.

    ON CONFLICT DO NOTHING rather than a caught IntegrityError: a failed INSERT would abort the caller's
    whole transaction on PostgreSQL, and the caller's other writes must survive a repeat. The statement is
    built once per table, so a call costs its execution only."""
    (key,) = table.primary_key.columns
    statement = _conflict_free_insert(session.get_bind().dialect.name, table, on, key.name)
    return session.execute(statement, row).scalar_one_or_none()


def insert_many_unless_conflict(
    session: Session, table: Table, rows: list[dict[str, Any]], *, on: tuple[str, ...], returning: str
) -> set[Any]:
    """insert_unless_conflict for several rows in one statement: the `returning` values of the rows written."""
    if not rows:
        return set()
    unnested = _unnested(session, table, rows, on=on, returning=returning)
    if unnested is not None:
        return set(session.execute(*unnested).scalars().all())
    statement = _conflict_free_insert(session.get_bind().dialect.name, table, on, returning)
    return set(session.execute(statement, rows).scalars().all())


def insert_many(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT many rows (a batch's events or timeline entries) in one statement: the driver's executemany, which
    psycopg parses once (for a few narrow columns it beat an unnested INSERT, whose arrays cost more to build)."""
    if rows:
        session.execute(table.insert(), rows)


def _unnested(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    on: tuple[str, ...] | None = None,
    returning: str | None = None,
) -> tuple[Any, dict[str, list[Any]]] | None:
    """On PostgreSQL, rows with the same columns as one array per column, unnested: the statement's text is the
    same whatever the number of rows, so psycopg parses it once (a multi-row VALUES of 200 rows × 20 columns with
    RETURNING took it 5 ms per batch; profiled). None: the caller's own way."""
    dialect = session.get_bind().dialect
    keys = tuple(rows[0])
    if dialect.name != "postgresql" or any(tuple(row) != keys for row in rows):
        return None
    statement, processors = _unnest_insert(dialect, table, keys, on, returning)
    arrays = {
        f"c{i}": [row[key] for row in rows] if proc is None else [proc(row[key]) for row in rows]
        for i, (key, proc) in enumerate(zip(keys, processors, strict=True))
    }
    return statement, arrays


@functools.cache
def _unnest_insert(
    dialect: Dialect, table: Table, keys: tuple[str, ...], on: tuple[str, ...] | None, returning: str | None
) -> tuple[Any, list[Any]]:
    columns = [table.c[key] for key in keys]
    arrays = ", ".join(f"CAST(:c{i} AS {c.type.compile(dialect=dialect)}[])" for i, c in enumerate(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) SELECT * FROM unnest({arrays})"
    if on is not None:
        sql += f" ON CONFLICT ({', '.join(on)}) DO NOTHING"
    if returning is not None:
        sql += f" RETURNING {returning}"
    return text(sql), [c.type._cached_bind_processor(dialect) for c in columns]


def insert_many_ignoring_conflicts(
    session: Session, table: Table, rows: list[dict[str, Any]], *, on: tuple[str, ...]
) -> None:
    """INSERT many rows, skipping those that conflict with a unique key, without reading anything back: the driver's
    executemany (psycopg parses the statement once; a multi-row VALUES with RETURNING is parsed whole, ~2 ms per
    row of 20 columns)."""
    if rows:
        session.execute(_conflict_free_insert_bare(session.get_bind().dialect.name, table, on), rows)


@functools.cache
def _conflict_free_insert_bare(dialect: str, table: Table, on: tuple[str, ...]) -> Any:
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(on))


@functools.cache
def _conflict_free_insert(dialect: str, table: Table, on: tuple[str, ...] | None, returning: str) -> Any:
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_nothing(index_elements=list(on) if on else None).returning(table.c[returning])


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits when the block succeeds, rolls back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
