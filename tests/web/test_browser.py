"""The console in a real browser: sign-in, the board, check-in, CSRF, and an incident arriving live, acknowledged,
then re-graded by a follow-up so that the city must acknowledge too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from tests.factories import PASSWORD
from tests.incidents.helpers import fire, key_for, staff_chain, tick

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/console/board")
    assert "/console/login" in page.url
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/console/board")


def screenshot(page: Any, name: str) -> None:
    if os.environ.get("DUTYLINE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def test_sign_in_see_the_board_and_check_in(page: Any, console_url: str, session: Session, clock: ManualClock) -> None:
    staff = staff_chain(session, clock)
    me = staff("street", "duty_officer")
    sign_in(page, console_url, me.username or "")
    chain = page.locator("#chain tbody tr")
    assert chain.count() == 3
    assert me.name in chain.nth(0).inner_text()
    assert "未签到" in chain.nth(0).inner_text()
    page.click("#check-in-form button")
    page.wait_for_selector(".flash.ok")
    assert "已签到" in page.locator(".flash.ok").inner_text()
    assert "已签到 12:00" in page.locator("#chain tbody tr").nth(0).inner_text()
    screenshot(page, "board.png")


def test_wrong_password_shows_an_error_and_no_session(
    page: Any, console_url: str, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    page.goto(f"{console_url}/console/login")
    page.fill('input[name="username"]', staff("street", "duty_officer").username or "")
    page.fill('input[name="password"]', "not-the-password")
    page.click('button[type="submit"]')
    assert page.locator("#login-error").inner_text() == "用户名或密码错误。"
    assert not [c for c in page.context.cookies() if c["name"] == "dl_session"]
    page.goto(f"{console_url}/console/board")
    assert "/console/login" in page.url


def test_a_form_post_without_the_csrf_token_is_refused(
    page: Any, console_url: str, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    sign_in(page, console_url, staff("street", "duty_officer").username or "")
    page.evaluate("document.querySelector('#check-in-form input[name=csrf]').remove()")
    with page.expect_response(f"{console_url}/console/check-in") as answer:
        page.click("#check-in-form button")
    assert answer.value.status == 403
    assert "CSRF" in page.locator(".flash.error").inner_text()
    page.goto(f"{console_url}/console/board")
    assert "未签到" in page.locator("#chain tbody tr").nth(0).inner_text()


def test_incident_arrives_live_is_acknowledged_and_a_follow_up_makes_the_city_required(
    page: Any, console_url: str, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    headers = key_for(session, clock, "119")
    sign_in(page, console_url, staff("street", "duty_officer").username or "")
    page.click("text=突发事件")
    page.wait_for_selector("#no-incidents")

    created = httpx.post(f"{console_url}/api/v1/incidents", json=fire(), headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    tick(engine, clock)  # the scheduler is off here: the tick a commit wakes takes the first steps
    code = created.json()["code"]
    card = page.locator(f'article[data-code="{code}"]')
    card.wait_for()  # no reload: the list refreshes itself
    assert "sev-IV" in (card.get_attribute("class") or "")
    assert card.locator('[data-tier="street"] .countdown').inner_text() not in ("", "已到期")

    card.locator(".ack-button").click()
    page.wait_for_selector(".flash.ok")
    card = page.locator(f'article[data-code="{code}"]')
    assert "已签收" in card.locator('[data-tier="street"]').inner_text()
    assert card.locator(".ack-button").count() == 0
    assert card.locator('[data-tier="city"][data-required="yes"]').count() == 0

    card.locator("a").first.click()
    page.wait_for_selector("#report-form")
    page.select_option('#report-form select[name="kind"]', "first")
    page.fill('#report-form textarea[name="text"]', "住院部三层起火,死亡 12 人")
    page.fill('#report-form input[name="deaths"]', "12")
    page.click("#report-form button")
    page.wait_for_selector('#tiers [data-tier="city"][data-required="yes"]')
    assert page.locator("#incident-state .sev-badge").get_attribute("data-severity") == "II"
    assert "待签收" in page.locator('#tiers [data-tier="city"]').inner_text()
    assert page.locator('#timeline li[data-kind="regraded"]').count() >= 1
    # The street signed, the district and now the city have not: the incident as a whole is not signed.
    overall = page.locator("#incident-state .overall")
    assert overall.get_attribute("data-overall") == "partial" and "部分签收" in overall.inner_text()
    assert "agency:" not in page.locator("#timeline").inner_text()

    screenshot(page, "incident.png")
