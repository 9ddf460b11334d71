"""Cancelling an override in a real browser, on a phone and a desktop: the console asks first, then shows the
roster gap (值班缺口) the change would open before anything is written, and only "仍然撤销" makes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from app.clock import ManualClock
from app.roster import service as roster_service
from app.roster.models import Override
from tests.conftest import START
from tests.factories import make_person
from tests.roster.helpers import SYSTEM, override, rotation
from tests.web.overflow import DESKTOP, PHONE, assert_no_sideways_scroll
from tests.web.test_browser import sign_in
from tests.web.test_browser_phone import screenshot

STREET = "110106001"


@pytest.mark.parametrize("layout", ["phone", "desktop"])
def test_cancelling_an_override_shows_the_gap_it_opens_before_it_is_made(
    browser: Any, console_url: str, session: Session, clock: ManualClock, layout: str
) -> None:
    # 右安门街道's duty officers alternate daily; the rotation ends on 04-19 at 18:00 and an override covers the
    # six hours after it: cancelling the override leaves 04-19 18:00 to 04-20 00:00 with nobody on duty.
    duty_a = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    duty_b = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    admin = make_person(session, clock, unit="110106", roles=["unit_admin"])
    duty = rotation(session, clock, unit=STREET, role="duty_officer", people=[duty_a, duty_b],
                    start=(START - timedelta(days=3)).date())  # fmt: skip
    ends = START.replace(day=19, hour=18, minute=0)
    roster_service.end_rotation(session, clock=clock, actor=SYSTEM, rotation_id=duty.id or 0, ends_at=ends)
    session.commit()
    fill = override(session, clock, unit=STREET, role="duty_officer", person=duty_a, start=ends,
                    end=ends + timedelta(hours=6))  # fmt: skip
    fill_id = fill.id
    context = browser.new_context(viewport=PHONE if layout == "phone" else DESKTOP, locale="zh-CN",
                                  is_mobile=layout == "phone")  # fmt: skip
    context.set_default_timeout(10_000)
    page = context.new_page()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    sign_in(page, console_url, admin.username or "")
    page.goto(f"{console_url}/console/rosters?unit={STREET}&month={START:%Y-%m}")
    page.locator(f'form[action="/console/overrides/{fill_id}/cancel"] button').click()
    page.locator("#confirm-gaps").wait_for()
    assert asked == ["撤销这条替班？"]
    gaps = page.locator("#confirm-gaps ul.gaps li").all_inner_texts()
    assert gaps == ["右安门街道 值班员：04-19 18:00 至 04-20 00:00"]
    assert_no_sideways_scroll(page, "the gap confirmation")
    screenshot(page, f"confirm-gaps-{layout}")
    session.expire_all()
    assert session.get(Override, fill_id) is not None  # asked, not yet done

    page.locator('#confirm-gaps button[type="submit"]').click()
    page.wait_for_url(f"**/console/rosters?unit={STREET}*")
    session.commit()  # a fresh snapshot: the server wrote in its own connection
    session.expire_all()
    assert session.get(Override, fill_id) is None
    context.close()
