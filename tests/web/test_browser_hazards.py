"""The hazard pages in a real browser: an inspector reports from a phone-sized screen with a photo, the district
lists it on a desktop; no page scrolls sideways at 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.factories import PASSWORD, make_person
from tests.hazards.helpers import DISTRICT, STREET, image_bytes
from tests.notify.live import LiveServer
from tests.web.overflow import assert_no_sideways_scroll

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def hazards_url(engine: Engine, clock: ManualClock, database_url: str, tmp_path: Path) -> Iterator[str]:
    """The whole app on a loopback port, its photos kept in the test's own data directory."""
    server = LiveServer()
    settings = Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        PUBLIC_BASE_URL=server.url,
        DUTYLINE_DISPATCHER=False,
        DUTYLINE_SCHEDULER=False,
        DUTYLINE_DATA_DIR=str(tmp_path / "data"),
    )
    server.start(create_app(settings, engine=engine, clock=clock))
    yield server.url
    server.stop()


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/hazards")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/console/hazards")


no_sideways_scroll = assert_no_sideways_scroll


def test_report_on_a_phone_and_verify_on_a_desktop(
    browser: Any, hazards_url: str, session: Session, clock: ManualClock, tmp_path: Path
) -> None:
    console_url = hazards_url
    inspector = make_person(session, clock, unit=STREET, roles=["inspector"], name="李排查")
    leader = make_person(session, clock, unit=DISTRICT, roles=["leader"], name="区领导")
    shot = tmp_path / "site.jpg"
    shot.write_bytes(image_bytes(size=(1200, 900)))

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    phone.set_default_timeout(10_000)
    page = phone.new_page()
    sign_in(page, console_url, inspector.username or "")
    no_sideways_scroll(page)
    page.click("#report-link")
    page.wait_for_selector("#report-form")
    no_sideways_scroll(page)
    assert page.get_attribute('input[name="photo"]', "capture") == "environment"
    page.fill('input[name="venue"]', "右安门医院住院部")
    page.select_option('select[name="venue_category"]', "hospital")
    page.check('input[name="level"][value="major"]')
    page.fill('textarea[name="basis"]', "GB 35181-2017 第6.3条")
    page.fill('input[name="responsible_org"]', "右安门医院")
    page.fill('input[name="responsible_person"]', "王院长")
    page.fill('input[name="responsible_phone"]', "13800138000")
    page.fill('input[name="deadline"]', "2026-04-10")  # before it was found: refused
    page.set_input_files('input[name="photo"]', str(shot))
    page.click('#report-form button[type="submit"]')
    page.wait_for_selector('.field-error[data-field="deadline"]')
    assert "整改期限不能早于发现时间" in page.inner_text('.field-error[data-field="deadline"]')
    no_sideways_scroll(page)
    page.fill('input[name="deadline"]', "2026-04-25")
    page.set_input_files('input[name="photo"]', str(shot))
    page.click('#report-form button[type="submit"]')
    page.wait_for_selector("#photos img")
    assert page.evaluate("document.querySelector('#photos img').naturalWidth") == 1200
    assert "隐患已登记" in page.inner_text(".flash.ok")
    no_sideways_scroll(page)
    page.click("#menu-button")  # on a phone the navigation is behind the menu button
    page.click("header.top nav >> text=隐患排查")
    page.wait_for_selector("#stats")
    no_sideways_scroll(page)
    phone.close()

    desk = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    desk.set_default_timeout(10_000)
    page = desk.new_page()
    sign_in(page, console_url, leader.username or "")
    card = page.locator("article.hazard-item").first
    assert "右安门医院住院部" in card.inner_text() and "待整改" in card.inner_text()
    card.locator("a").first.click()
    page.wait_for_selector("#listing-form")
    page.fill('#listing-form input[name="reason"]', "医院重大火灾隐患,区级挂牌")
    page.click("#listing-form button")
    page.wait_for_selector('[data-listed="district"]')
    assert page.locator('#timeline li[data-kind="listed"]').count() == 1
    desk.close()
