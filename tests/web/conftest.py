"""A live console on loopback and a headless Debian Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.notify.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); browser tests need Debian's Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def console_url(engine: Engine, clock: ManualClock, database_url: str) -> Iterator[str]:
    """The whole app served on a loopback port, sharing the test database and the test's clock."""
    server = LiveServer()
    settings = Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        PUBLIC_BASE_URL=server.url,
        DUTYLINE_DISPATCHER=False,
        DUTYLINE_SCHEDULER=False,
    )
    server.start(create_app(settings, engine=engine, clock=clock))
    yield server.url
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()
