"""Every console page on a phone (390×844) and on a desktop (1280×860): none scrolls sideways, the navigation
folds behind a menu button on the phone, and a tier signs for an incident (签收) from the phone's board.

The pages are listed from the app's own routes under /console, so a page added later is visited too (or the test
says it has not been classified). With DUTYLINE_SCREENSHOTS=1 the tests write docs/screenshots/<page>-<layout>.png
(DUTYLINE_SCREENSHOT_DIR elsewhere, DUTYLINE_SCREENSHOT_FULL=1 whole pages rather than the first screen).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from tests.duty import staff
from tests.factories import PASSWORD, make_person
from tests.hazards.helpers import hazard_body, image_bytes
from tests.incidents.helpers import fire, key_for, tick
from tests.notify.live import LiveServer
from tests.web.overflow import DESKTOP, NARROW_PHONE, PHONE, assert_no_sideways_scroll, visit

CITY, DISTRICT, STREET = "110000", "110106", "110106001"
SCREENSHOTS = Path(
    os.environ.get("DUTYLINE_SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "docs" / "screenshots"
)

# GET routes under /console that are not pages of their own, and why.
NOT_PAGES = {
    "/console": "redirects to the board",
    "/console/board/live": "the board's live fragment (part of the board page)",
    "/console/incidents/live": "the incident list's live fragment",
    "/console/incidents/{incident_id}/live": "the incident's live fragment",
    "/console/rollcalls/{roll_call_id}/live": "the roll-call's live fragment",
    "/console/rosters/export": "a CSV download",
    "/console/hazards/export": "a CSV or XLSX download",
    "/console/hazards/{hazard_id}/photos/{photo_id}": "a photo",
}
# Pages worth a screenshot, by the name the file gets.
SHOTS = {
    "/console/board": "board",
    "/console/incidents": "incidents",
    "/console/incidents/{incident_id}": "incident",
    "/console/incidents/new": "intake",
    "/console/rosters": "rosters",
    "/console/notices/{notice_id}": "notice",
    "/console/rollcalls/{roll_call_id}": "rollcall",
    "/console/hazards": "hazards",
    "/console/hazards/{hazard_id}": "hazard",
}


@dataclass
class World:
    url: str
    app: FastAPI
    ids: dict[str, int]


def screenshot(page: Any, name: str, *, full: bool = False) -> None:
    if os.environ.get("DUTYLINE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(SCREENSHOTS / f"{name}.png"), full_page=full or bool(os.environ.get("DUTYLINE_SCREENSHOT_FULL"))
        )


def _token(base: str, username: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def world(engine: Engine, clock: ManualClock, database_url: str, session: Session, tmp_path: Path) -> Iterator[World]:
    """The whole app (simulator on) with something on every page: staffed posts from the city to a street, an
    incident with a report and its pages, a notice, a roll-call and a hazard with a photo."""
    server = LiveServer()
    settings = Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        PUBLIC_BASE_URL=server.url,
        DUTYLINE_DISPATCHER=False,
        DUTYLINE_SCHEDULER=False,
        DUTYLINE_SIMULATOR="on",
        DUTYLINE_DATA_DIR=str(tmp_path / "data"),
    )
    app = create_app(settings, engine=engine, clock=clock)
    server.start(app)
    base = server.url
    staff(session, clock, [CITY, DISTRICT, STREET], login={CITY, DISTRICT, STREET})
    make_person(session, clock, unit=CITY, roles=["admin"], username="phone.admin", name="系统管理员")
    agency = key_for(session, clock, "119")
    inc = httpx.post(f"{base}/api/v1/incidents", json=fire(), headers=agency, timeout=10)
    assert inc.status_code == 201, inc.text
    tick(engine, clock)
    city = _token(base, f"duty_officer.{CITY}")
    street = _token(base, f"duty_officer.{STREET}")
    report = {"kind": "first", "text": "住院部三层起火,已疏散病人42名,消防正在扑救,暂无人员伤亡。"}
    r = httpx.post(f"{base}/api/v1/incidents/{inc.json()['id']}/reports", json=report, headers=street, timeout=10)
    assert r.status_code in (200, 201), r.text
    notice = httpx.post(
        f"{base}/api/v1/notices",
        json={"kind": "warning", "title": "关于做好强降雨天气防范应对工作的紧急通知",
              "body": "气象台发布暴雨橙色预警,各区立即启动防汛应急响应,加强值守,及时报告险情。",
              "to": {"scope": "children"}},
        headers=city,
        timeout=10,
    )  # fmt: skip
    assert notice.status_code == 201, notice.text
    rc = httpx.post(
        f"{base}/api/v1/roll-calls", json={"scope": "children", "note": "夜间查岗"}, headers=city, timeout=10
    )
    assert rc.status_code == 201, rc.text
    admin = _token(base, "phone.admin")
    hazard = httpx.post(f"{base}/api/v1/hazards", json=hazard_body(clock), headers=admin, timeout=10)
    assert hazard.status_code == 201, hazard.text
    photo = httpx.post(
        f"{base}/api/v1/hazards/{hazard.json()['id']}/photos",
        data={"phase": "before"},
        files={"file": ("before.jpg", image_bytes(size=(1600, 1200)), "image/jpeg")},
        headers=admin,
        timeout=10,
    )
    assert photo.status_code == 201, photo.text
    ids = {
        "incident_id": inc.json()["id"],
        "notice_id": notice.json()["id"],
        "roll_call_id": rc.json()["id"],
        "hazard_id": hazard.json()["id"],
    }
    yield World(base, app, ids)
    server.stop()


def get_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path, through included routers (FastAPI keeps those as wrappers)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # fastapi.routing._IncludedRouter
            context = getattr(route, "include_context", None)
            yield from get_routes(route.original_router.routes, prefix + getattr(context, "prefix", ""))


def console_pages(world: World) -> list[tuple[str, str]]:
    """(route, URL) for every GET page under /console; a route that is neither a page we can fill in nor listed in
    NOT_PAGES fails the test, so a new page is never skipped silently."""
    out = []
    for path, route in get_routes(world.app.routes):
        if not path.startswith("/console") or "GET" not in (route.methods or set()):
            continue
        if path in NOT_PAGES:
            continue
        params = re.findall(r"{(\w+)}", path)
        missing = [p for p in params if p not in world.ids]
        assert not missing, f"{path}: a new console page; give the test a {missing} (or add it to NOT_PAGES)"
        out.append((path, path.format(**world.ids)))
    return out


def sign_in(page: Any, base: str, username: str) -> None:
    visit(page, f"{base}/console/login", "the sign-in page")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r".*/console/board"))


@pytest.mark.parametrize("layout", ["phone", "narrow", "desktop"])
def test_no_console_page_scrolls_sideways(browser: Any, world: World, layout: str) -> None:
    viewport = {"phone": PHONE, "narrow": NARROW_PHONE, "desktop": DESKTOP}[layout]
    pages = console_pages(world)
    paths = {p for p, _ in pages}
    for expected in ("/console/board", "/console/incidents", "/console/incidents/{incident_id}",
                     "/console/incidents/new", "/console/rosters", "/console/simulator", "/console/notices",
                     "/console/notices/sent", "/console/notices/new", "/console/notices/{notice_id}",
                     "/console/rollcalls", "/console/rollcalls/{roll_call_id}", "/console/hazards",
                     "/console/hazards/new", "/console/hazards/{hazard_id}", "/console/login"):  # fmt: skip
        assert expected in paths, f"{expected} is among the console's pages"
    # The city's duty officer (the widest tables: every district), the district's (a notice and a roll-call to
    # answer) and the admin (the simulator) see different forms on the same pages.
    for username in (f"duty_officer.{CITY}", f"duty_officer.{DISTRICT}", "phone.admin"):
        context = browser.new_context(viewport=viewport, locale="zh-CN", is_mobile=layout != "desktop")
        context.set_default_timeout(10_000)
        page = context.new_page()
        sign_in(page, world.url, username)
        for route, url in pages:
            response = visit(page, f"{world.url}{url}", f"{route} as {username}")
            assert response is not None and response.status < 500, f"{url}: {response and response.status}"
            if username == f"duty_officer.{CITY}" and route in SHOTS and layout != "narrow":
                screenshot(page, f"{SHOTS[route]}-{layout}")
        context.close()


def test_the_phone_folds_the_navigation_behind_a_menu_button(browser: Any, world: World) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    page = context.new_page()
    sign_in(page, world.url, f"duty_officer.{DISTRICT}")
    nav = page.locator("header.top nav")
    assert not nav.is_visible() and page.locator("#menu-button").is_visible()
    page.click("#menu-button")
    assert nav.is_visible() and page.locator("#menu-button").get_attribute("aria-expanded") == "true"
    assert_no_sideways_scroll(page, "the open menu")
    screenshot(page, "menu-phone")
    page.click("header.top nav >> text=排班表")
    page.wait_for_url(re.compile(r".*/console/rosters"))
    assert not page.locator("header.top nav").is_visible()
    context.close()
    desktop = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    wide = desktop.new_page()
    sign_in(wide, world.url, f"duty_officer.{DISTRICT}")
    assert wide.locator("header.top nav").is_visible() and not wide.locator("#menu-button").is_visible()
    desktop.close()


def test_a_street_leader_signs_for_the_tier_on_a_phone(browser: Any, world: World) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, world.url, f"leader.{STREET}")
    code = page.locator("#waiting article.incident").first.get_attribute("data-code")
    card = page.locator(f'#waiting article[data-code="{code}"]')
    button = card.locator(".ack-button")
    assert button.inner_text().startswith("签收")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 40 and box["x"] + box["width"] <= PHONE["width"]  # a thumb's size
    assert_no_sideways_scroll(page, "the board with an incident waiting")
    screenshot(page, "board-sign-phone")
    button.tap()
    page.wait_for_selector(".flash.ok")
    assert "已签收" in page.locator(".flash.ok").inner_text()
    assert page.locator(f'#waiting article[data-code="{code}"]').count() == 0
    assert_no_sideways_scroll(page, "the board after signing")
    visit(page, f"{world.url}/console/incidents/{world.ids['incident_id']}", "the incident after signing")
    assert "已签收" in page.locator('#tiers [data-tier="street"]').inner_text()
    context.close()


def test_the_board_shows_a_new_incident_without_a_reload(
    browser: Any, world: World, session: Session, clock: ManualClock
) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, world.url, f"duty_officer.{STREET}")
    before = page.locator("#waiting article.incident").count()
    page.evaluate("window.scrollTo(0, 200); window.dutylineMark = 'same page'")
    created = httpx.post(
        f"{world.url}/api/v1/incidents",
        json=fire(external_id="119-20260418-0077", title="燃气管道泄漏", category="gas"),
        headers=key_for(session, clock, "119-gas"),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    page.wait_for_selector(f'#waiting article[data-code="{created.json()["code"]}"]')  # the board's next poll
    assert page.locator("#waiting article.incident").count() == before + 1
    assert page.evaluate("window.dutylineMark") == "same page"  # swapped in place, not reloaded
    assert page.evaluate("window.scrollY") == 200  # and the reader keeps their place
    assert_no_sideways_scroll(page, "the board after it refreshed")
    context.close()
