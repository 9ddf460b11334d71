"""The demo's SMS simulator page in a real browser: each phone's inbox fills by itself, says which provider
carried each message in Chinese (the console's one set of labels), and a reply typed there signs for the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app import labels
from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from app.notify.models import OutboxMessage
from tests.factories import make_person
from tests.notify.live import LiveServer
from tests.notify.pages import enqueue_page
from tests.web.overflow import PHONE, assert_no_sideways_scroll
from tests.web.test_browser import sign_in


@pytest.fixture
def demo_url(engine: Engine, clock: ManualClock, database_url: str) -> Iterator[str]:
    """The app with the simulator on and its dispatcher running, served live."""
    server = LiveServer()
    settings = Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        PUBLIC_BASE_URL=server.url,
        DUTYLINE_DISPATCH_POLL_SECONDS=0.05,
        DUTYLINE_SIMULATOR="on",
    )
    server.start(create_app(settings, engine=engine, clock=clock))
    yield server.url
    server.stop()


def test_the_inbox_names_the_provider_and_a_reply_signs_for_the_page(
    browser: Any, demo_url: str, engine: Engine, clock: ManualClock, session: Session
) -> None:
    admin = make_person(session, clock, unit="110000", roles=["admin"])
    page_id = enqueue_page(engine, clock, phone="+8613800000011", incident_id=3, code="D3M0")
    enqueue_page(engine, clock, phone="+12025550123", incident_id=4, code="D3M1")
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, demo_url, admin.username or "")
    page.goto(f"{demo_url}/console/simulator")
    china = page.locator('section.phone[data-phone="+8613800000011"]')
    china.locator(".sms").first.wait_for()
    # +86 went by Alibaba Cloud, the other number by Twilio: each named as app.labels names it.
    assert f" · {labels.PROVIDERS['aliyun']} · " in china.locator(".sms .muted").first.inner_text()
    other = page.locator('section.phone[data-phone="+12025550123"]')
    other.locator(".sms").first.wait_for()
    assert f" · {labels.PROVIDERS['twilio']} · " in other.locator(".sms .muted").first.inner_text()
    assert_no_sideways_scroll(page, "the simulator's inbox")
    china.locator('input[name="body"]').fill("1")
    china.locator('button[type="submit"]').click()
    china.locator(".sms", has_text="已签收 D3M0").wait_for()
    with Session(engine) as s:
        row = s.get(OutboxMessage, page_id)
        assert row is not None and row.acknowledged_via == "sms"
    context.close()
