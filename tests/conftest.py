"""Fixtures: a migrated real database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set),
cleaned after each test; a clock the test controls; the app over real ASGI HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from app import migrate
from app.clock import ManualClock
from app.config import Settings
from app.db import make_engine, reader
from app.main import create_app
from app.metadata import metadata
from app.notify import budget as sms_budget
from app.org import units

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 4, 18, 12, 0, tzinfo=SHANGHAI)
KEEP_TABLES = {"unit", "alembic_version", "instance_secret"}
SUITE_SMS_BUDGET = 1000  # SMS per number per day in tests; the budget's own tests set theirs


def _postgres_schema_url(base: str) -> tuple[str, str]:
    """A fresh schema per run, so runs never see each other's rows (or a half-migrated schema)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        path: Path = tmp_path_factory.mktemp("db") / "dutyline-test.db"
        yield f"sqlite:///{path}"
        return
    url, schema = _postgres_schema_url(base)
    yield url
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    migrate.upgrade(database_url)
    eng = make_engine(database_url)
    with Session(eng) as session:
        units.load_units(session, units.read_units_file(units.default_data_path()))
        session.commit()
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _sms_budget() -> Iterator[None]:
    """Every test starts with the suite's SMS budget (as its settings say): the budget is process-wide, set by each
    app a test creates, so a test with a small one must not leave it to the next (nor the default of 8 to a test
    that pages one number many times without an app)."""
    sms_budget.set_daily_budget(SUITE_SMS_BUDGET)
    yield
    sms_budget.set_daily_budget(SUITE_SMS_BUDGET)


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests commit for real (several connections, live servers); rows are removed afterwards."""
    yield
    if "engine" not in request.fixturenames:
        return
    eng: Engine = request.getfixturevalue("engine")
    names = [t.name for t in reversed(metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        DUTYLINE_DISPATCHER=False,  # tests drive app.state.dispatcher by hand
        DUTYLINE_SCHEDULER=False,  # and run the escalation tick themselves
        # Scenarios page one person dozens of times a day; the budget's own tests set theirs (test_budget.py).
        DUTYLINE_SMS_DAILY_BUDGET=SUITE_SMS_BUDGET,
    )


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking rows; the test commits what it arranges."""
    with Session(reader(engine), expire_on_commit=False) as s:
        yield s


@pytest.fixture
def client(engine: Engine, clock: ManualClock, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, clock=clock)
    with TestClient(app) as c:
        yield c
