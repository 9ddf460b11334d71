"""Roll-calls and notices in a real browser, on a desktop and on a 390 px phone: the city calls the roll and sees a
district answer live; a notice is issued from the form and signed from the district's inbox."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.clock import ManualClock
from tests.duty import staff
from tests.web.overflow import assert_no_sideways_scroll
from tests.web.test_browser import screenshot, sign_in

CITY, DISTRICT = "110000", "110106"
PHONE = {"width": 390, "height": 844}


_no_horizontal_scroll = assert_no_sideways_scroll


def test_a_roll_call_answered_live_on_desktop_and_phone(
    browser: Any, page: Any, console_url: str, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [CITY, DISTRICT], login={CITY, DISTRICT})
    sign_in(page, console_url, f"duty_officer.{CITY}")
    page.click("text=查岗")
    page.wait_for_selector("#rollcall-form")
    page.fill('#rollcall-form input[name="note"]', "凌晨查岗")
    page.click("#rollcall-form button")
    page.wait_for_selector("#rollcall-summary")
    assert "已发起查岗" in page.locator(".flash.ok").inner_text()
    assert page.locator('#rollcall-summary [data-k="posts"]').inner_text() == "32"
    row = page.locator(f'#entries tr[data-unit="{DISTRICT}"][data-role="duty_officer"]')
    assert row.get_attribute("data-state") == "pending" and "待应答" in row.inner_text()
    screenshot(page, "rollcall-started-desktop.png")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    other = phone.new_page()
    sign_in(other, console_url, f"duty_officer.{DISTRICT}")
    other.goto(page.url.split("?")[0])
    _no_horizontal_scroll(other)
    other.click("#my-answer button")
    other.wait_for_selector(".flash.ok")
    assert "已确认在岗" in other.locator(".flash.ok").inner_text()
    _no_horizontal_scroll(other)
    other.goto(f"{console_url}/console/rollcalls")
    _no_horizontal_scroll(other)
    phone.close()

    # The city's page updates itself: no reload.
    page.wait_for_selector(f'#entries tr[data-unit="{DISTRICT}"][data-role="duty_officer"][data-state="answered"]')
    assert page.locator('#rollcall-summary [data-k="answered"]').inner_text() == "1"


def test_a_notice_issued_from_the_form_and_signed_from_the_inbox(
    browser: Any, page: Any, console_url: str, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [CITY, DISTRICT], login={CITY, DISTRICT})
    sign_in(page, console_url, f"duty_officer.{CITY}")
    page.goto(f"{console_url}/console/notices/new")
    page.fill('#notice-form input[name="title"]', "关于做好强降雨防范的通知")
    page.fill('#notice-form textarea[name="body"]', "各区立即启动防汛应急响应。")
    page.fill('#notice-form input[name="minutes"]', "0")
    page.click("#notice-form button")
    assert "签收时限须在1分钟至24小时" in page.locator('.field-error[data-field="minutes"]').inner_text()
    page.fill('#notice-form input[name="minutes"]', "15")
    page.click("#notice-form button")
    page.wait_for_selector("#receipts")
    assert page.locator("#receipts tbody tr").count() == 16
    screenshot(page, "notice-issued-desktop.png")

    phone = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    other = phone.new_page()
    sign_in(other, console_url, f"duty_officer.{DISTRICT}")
    other.click("#menu-button")  # on a phone the navigation is behind the menu button
    other.click("header.top nav >> text=通知")
    card = other.locator("#inbox article.notice").first
    assert "关于做好强降雨防范的通知" in card.inner_text() and card.get_attribute("data-state") == "pending"
    _no_horizontal_scroll(other)
    card.locator("a").click()
    other.click("#sign-form button")
    other.wait_for_selector('#my-receipt[data-state="signed"]')
    _no_horizontal_scroll(other)
    other.fill('#feedback-form textarea[name="text"]', "已部署各街道做好准备")
    other.click("#feedback-form button")
    other.wait_for_selector(".flash.ok")
    for path in ("/console/notices", "/console/notices/sent", "/console/notices/new"):
        other.goto(f"{console_url}{path}")
        _no_horizontal_scroll(other)
    phone.close()

    page.goto(f"{console_url}/console/notices/sent")
    row = page.locator("#sent tbody tr").first
    assert "关于做好强降雨防范的通知" in row.inner_text()
    cells = row.locator("td")
    assert cells.nth(4).inner_text() == "1" and cells.nth(7).inner_text() == "1"  # signed, fed back
