"""Hazard tests keep their photos in a directory of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.notify.live import LiveServer
from tests.web.conftest import browser, page  # noqa: F401  (Debian's Chromium through Playwright)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        DUTYLINE_DISPATCHER=False,
        DUTYLINE_SCHEDULER=False,
        DUTYLINE_DATA_DIR=str(tmp_path / "data"),
    )


@pytest.fixture
def console_url(engine: Engine, clock: ManualClock, settings: Settings) -> Iterator[str]:
    """The whole app on a loopback port (for the browser), sharing the test database, clock and data directory."""
    server = LiveServer()
    live = settings.model_copy(update={"public_base_url": server.url})
    server.start(create_app(live, engine=engine, clock=clock))
    yield server.url
    server.stop()
