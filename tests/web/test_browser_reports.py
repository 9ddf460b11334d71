"""The 问效问责 page in a real browser (Debian Chromium): the charts are drawn by the vendored ECharts, nothing is
fetched beyond the loopback server, the table sorts, and at 390 × 844 nothing scrolls sideways. Screenshots go to
docs/screenshots/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.factories import PASSWORD
from tests.notify.live import LiveServer
from tests.reports.conftest import report_settings
from tests.reports.scenario import DISTRICT, S1, scripted_month

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
NOV = f"unit={DISTRICT}&period=custom&from=2026-11-01&to=2026-11-30"


def _shot(page: Any, name: str) -> None:
    """docs/screenshots/<name> with DUTYLINE_SCREENSHOTS=1, as the other browser tests (a plain run leaves the
    checkout as it was)."""
    if os.environ.get("DUTYLINE_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / name), full_page=True)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """As the other report tests (here with the browser tests: one Chromium for the whole run)."""
    return report_settings(database_url, tmp_path)


@pytest.fixture
def live_url(engine: Engine, clock: ManualClock, settings: Settings) -> Iterator[str]:
    server = LiveServer()
    server.start(create_app(settings.model_copy(update={"public_base_url": server.url}), engine=engine, clock=clock))
    yield server.url
    server.stop()


def _watch(page: Any, base: str) -> tuple[list[str], list[str]]:
    """Every request the page makes that is not to the loopback server, and every console error."""
    away: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else away.append(r.url))
    # A browser asks for /favicon.ico on its own; the console has none. Any other failed load is an error.
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith(
        "/favicon.ico") else None)  # fmt: skip
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in
            m.text else None)  # fmt: skip
    page.on("pageerror", lambda e: errors.append(str(e)))
    return away, errors


def _sign_in(page: Any, base: str, path: str) -> None:
    page.goto(f"{base}{path}")
    page.fill('input[name="username"]', f"district.leader.{DISTRICT}")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_selector("#report-table")
    page.goto(f"{base}{path}")  # the sign-in returns to the page's path, not its query
    page.wait_for_selector("#report-table")


def _charts_drawn(page: Any) -> None:
    page.wait_for_function("document.body.getAttribute('data-charts') === '3'")
    for chart in ("#chart-ack", "#chart-trend", "#chart-rates"):
        assert page.locator(f"{chart} canvas").count() >= 1, chart
        box = page.locator(f"{chart} canvas").first.bounding_box()
        assert box["width"] > 200 and box["height"] > 150, (chart, box)


def _no_sideways_scroll(page: Any) -> None:
    wide, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert wide <= client, f"{page.url} is {wide}px wide in a {client}px window"


def test_the_page_draws_its_charts_offline_on_a_desktop_and_a_phone(
    browser: Any,
    live_url: str,
    client: TestClient,
    session: Session,
    clock: ManualClock,
    engine: Engine,
) -> None:
    month = scripted_month(client, session, clock, engine)
    desktop = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    desktop.set_default_timeout(15_000)
    page = desktop.new_page()
    away, errors = _watch(page, live_url)
    _sign_in(page, live_url, f"/console/reports?{NOV}")
    _charts_drawn(page)
    _no_sideways_scroll(page)
    # Sorting by the street's median ack time, slowest first: S1 (420 s) before S2 (60 s); streets without a time last.
    header = page.locator("#report-table thead th", has_text="街道级签收中位")
    header.click()
    header.click()
    order = page.eval_on_selector_all("#report-table tbody tr", "rows => rows.map(r => r.dataset.unit)")
    assert order[:2] == [S1, "110106002"] and sorted(order) == month.streets
    header.click()
    order = page.eval_on_selector_all("#report-table tbody tr", "rows => rows.map(r => r.dataset.unit)")
    assert order[:2] == ["110106002", S1]
    _shot(page, "reports-desktop.png")
    # Switching to 本周 hides the custom range and reloads with this week's figures.
    page.select_option("#report-period", "week")
    assert page.locator("#report-range").is_hidden()
    page.click('#report-form button[type="submit"]')
    page.wait_for_selector("#report-table")
    assert "2026-11-30 至 2026-12-06" in page.locator("h1").inner_text()
    # The review of incident B, as printed: no navigation, the street passed over, both reports late.
    page.goto(f"{live_url}/console/incidents/{month.incidents['B']}/review")
    page.emulate_media(media="print")
    assert page.locator("header.top").is_hidden() and page.locator(".no-print").first.is_hidden()
    assert "越级" in page.locator('.tier-chain[data-tier="street"] h2').inner_text()
    assert page.locator("#review-reports b.gap").count() == 2
    _shot(page, "review.png")
    page.emulate_media(media="screen")
    assert page.locator("header.top").is_visible()
    desktop.close()

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    phone.set_default_timeout(15_000)
    small = phone.new_page()
    away2, errors2 = _watch(small, live_url)
    _sign_in(small, live_url, f"/console/reports?{NOV}")
    _charts_drawn(small)
    _no_sideways_scroll(small)
    # The wide table scrolls inside its card (the table itself or its wrapper), not the page.
    inner = small.evaluate(
        "(() => { const t = document.querySelector('#report-table'), w = t.parentElement;"
        " return Math.max(t.scrollWidth - t.clientWidth, w.scrollWidth - w.clientWidth); })()"
    )
    assert inner > 0
    _shot(small, "reports-phone.png")
    phone.close()
    assert away == [] and away2 == [], (away, away2)
    assert errors == [] and errors2 == [], (errors, errors2)
