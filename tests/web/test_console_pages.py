"""The board and roster pages: what they show and what their forms do, through the real services."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from app.roster.models import CheckIn, Override, Shift
from app.roster.resolve import set_default_timezone
from tests.factories import make_person
from tests.roster import helpers as roster
from tests.web.helpers import console_sign_in

STREET = "110106001"
DISTRICT = "110106"


def fresh(session: Session) -> Session:
    session.rollback()
    return session


def test_board_shows_the_chain_the_units_below_and_gaps(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    duty = make_person(session, clock, unit=DISTRICT, roles=["duty_officer"], name="张伟")
    lead = make_person(session, clock, unit=DISTRICT, roles=["leader"], name="刘洋")
    roster.rotation(session, clock, unit=DISTRICT, role="duty_officer", people=[duty], start=date(2026, 4, 1))
    roster.rotation(session, clock, unit=DISTRICT, role="leader", people=[lead], start=date(2026, 4, 1))
    assert duty.username is not None
    console_sign_in(client, duty.username)
    page = client.get("/console/board").text
    assert "张伟" in page and "刘洋" in page
    assert "丰台区" in page and "北京市" in page
    assert 'data-unit="110106001"' in page  # a street of 丰台区, in the units below
    assert "空岗" in page  # the city and the streets have nobody
    assert "未签到" in page
    # drill down to a street: its chain, no units below
    street = client.get(f"/console/board?unit={STREET}").text
    assert 'id="below"' not in street and "右安门" in street


def test_board_refuses_units_outside_scope(client: TestClient, session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    assert person.username is not None
    console_sign_in(client, person.username)
    assert client.get("/console/board?unit=110105").status_code == 403  # 朝阳区: not above, not below


def test_check_in_from_the_page_and_refusal_when_off_duty(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    assert person.username is not None
    csrf = console_sign_in(client, person.username)
    r = client.post("/console/check-in", data={"csrf": csrf})
    assert r.status_code == 409 and "不在班" in r.text and "当前在岗" in r.text
    assert fresh(session).exec(select(CheckIn)).all() == []
    now = clock.now()
    roster.override(
        session, clock, unit=STREET, role="duty_officer", person=person, start=now, end=now + timedelta(hours=8)
    )
    r = client.post("/console/check-in", data={"csrf": csrf})
    assert r.status_code == 200 and "已签到" in r.text
    assert len(fresh(session).exec(select(CheckIn)).all()) == 1


def test_handover_from_the_page(client: TestClient, session: Session, clock: ManualClock) -> None:
    person = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    nxt = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    now = clock.now()
    roster.override(
        session,
        clock,
        unit=STREET,
        role="duty_officer",
        person=person,
        start=now - timedelta(hours=7),
        end=now + timedelta(hours=1),
    )
    assert person.username is not None
    csrf = console_sign_in(client, person.username)
    r = client.post(
        "/console/handover",
        data={"csrf": csrf, "notes": "无异常", "open_items": "燃气泄漏回访\n\n消防通道检查", "incoming": nxt.username},
    )
    assert r.status_code == 200 and "交接班记录已保存" in r.text
    log = client.get(f"/api/v1/shifts/log?unit={STREET}", headers=_bearer(client, person.username)).json()
    assert log["items"][0]["open_items"] == ["燃气泄漏回访", "消防通道检查"]
    r = client.post("/console/handover", data={"csrf": csrf, "incoming": person.username})
    assert r.status_code == 422 and "接班人不能交接给自己" in r.text


def _bearer(client: TestClient, username: str | None) -> dict[str, str]:
    from tests.factories import login

    assert username is not None
    return login(client, username)


def test_month_view_overrides_and_gaps(client: TestClient, session: Session, clock: ManualClock) -> None:
    admin = make_person(session, clock, unit=DISTRICT, roles=["unit_admin"])
    a = make_person(session, clock, unit=STREET, roles=["duty_officer"], name="甲值班")
    b = make_person(session, clock, unit=STREET, roles=["duty_officer"], name="乙值班")
    roster.rotation(
        session, clock, unit=STREET, role="duty_officer", people=[a], start=date(2026, 4, 1), end=date(2026, 4, 20)
    )
    assert admin.username is not None
    csrf = console_sign_in(client, admin.username)
    page = client.get(f"/console/rosters?unit={STREET}&month=2026-04")
    assert page.status_code == 200
    assert "甲值班" in page.text and "04-30" in page.text
    assert "存在空岗" in page.text  # leaders are never rostered; duty ends on the 20th
    r = client.post(
        "/console/overrides",
        data={
            "csrf": csrf,
            "unit_code": STREET,
            "role": "duty_officer",
            "person": b.username,
            "starts_at": "2026-04-19T08:30",
            "ends_at": "2026-04-19T20:30",
            "reason": "病假",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    row = fresh(session).exec(select(Override)).one()
    assert row.starts_at.isoformat() == "2026-04-19T00:30:00+00:00"  # 08:30 in Shanghai
    page = client.get(r.headers["location"]).text
    assert "替班已保存" in page and "乙值班" in page and "病假" in page

    bad = client.post(
        "/console/overrides",
        data={
            "csrf": csrf,
            "unit_code": STREET,
            "role": "duty_officer",
            "person": "nobody-here",
            "starts_at": "2026-04-19T08:30",
            "ends_at": "2026-04-19T20:30",
        },
    )
    assert bad.status_code == 422
    assert 'data-field="person"' in bad.text and "人员不存在：nobody-here" in bad.text
    backwards = client.post(
        "/console/overrides",
        data={
            "csrf": csrf,
            "unit_code": STREET,
            "role": "duty_officer",
            "person": b.username,
            "starts_at": "2026-04-19T08:30",
            "ends_at": "2026-04-18T08:30",
        },
    )
    assert backwards.status_code == 422 and "结束时间须晚于开始时间" in backwards.text
    assert len(fresh(session).exec(select(Override)).all()) == 1

    r = client.post(f"/console/overrides/{row.id}/cancel", data={"csrf": csrf, "unit_code": STREET})
    assert r.status_code == 200 and "替班已撤销" in r.text
    assert fresh(session).exec(select(Override)).all() == []


def test_overrides_outside_scope_are_refused(client: TestClient, session: Session, clock: ManualClock) -> None:
    admin = make_person(session, clock, unit=STREET, roles=["unit_admin"])
    assert admin.username is not None
    csrf = console_sign_in(client, admin.username)
    r = client.post(
        "/console/overrides",
        data={
            "csrf": csrf,
            "unit_code": DISTRICT,
            "role": "leader",
            "person": admin.username,
            "starts_at": "2026-04-19T08:30",
            "ends_at": "2026-04-19T20:30",
        },
    )
    assert r.status_code == 403
    assert fresh(session).exec(select(Override)).all() == []


def test_csv_import_from_the_page_all_or_nothing(client: TestClient, session: Session, clock: ManualClock) -> None:
    admin = make_person(session, clock, unit=DISTRICT, roles=["unit_admin"])
    a = make_person(session, clock, unit=STREET, roles=["duty_officer"])
    assert admin.username is not None
    csrf = console_sign_in(client, admin.username)
    good = f"unit_code,role,date,person\n{STREET},duty_officer,2026-05-01,{a.username}\n"
    bad = good + f"{STREET},duty_officer,2026-05-02,ghost\n"
    r = client.post(
        "/console/rosters/import",
        data={"csrf": csrf, "unit_code": STREET},
        files={"file": ("may.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 422 and 'id="import-errors"' in r.text and "第3行 人员：不存在：ghost" in r.text
    assert fresh(session).exec(select(Shift)).all() == []
    r = client.post(
        "/console/rosters/import",
        data={"csrf": csrf, "unit_code": STREET},
        files={"file": ("may.csv", good.encode(), "text/csv")},
    )
    assert r.status_code == 200 and "新建 1" in r.text
    assert len(fresh(session).exec(select(Shift)).all()) == 1
    csv = client.get(f"/console/rosters/export?unit={STREET}&month=2026-05")
    assert csv.status_code == 200 and a.username in csv.text
    no_token = client.post(
        "/console/rosters/import", data={"unit_code": STREET}, files={"file": ("may.csv", good.encode(), "text/csv")}
    )
    assert no_token.status_code == 403


def test_the_month_page_cuts_days_in_the_units_zone_on_a_utc_server(
    engine: Engine, session: Session, clock: ManualClock, settings: Settings
) -> None:
    """A server left at DUTYLINE_TIMEZONE=UTC still shows a Beijing street's night shift on the evening it began."""
    unit = roster.unit(session, STREET)
    unit.timezone = "Asia/Shanghai"
    session.add(unit)
    session.commit()
    try:
        with TestClient(create_app(settings.model_copy(update={"timezone": "UTC"}), engine=engine, clock=clock)) as c:
            night = make_person(session, clock, unit=STREET, roles=["duty_officer"], name="夜班乙")
            start = datetime(2027, 1, 31, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
            roster.shift(
                session,
                clock,
                unit=STREET,
                role="duty_officer",
                person=night,
                start=start,
                end=start + timedelta(hours=12),
            )
            console_sign_in(c, night.username or "")
            january = c.get(f"/console/rosters?unit={STREET}&month=2027-01").text
            last = re.search(r'<td class="date">01-31 .*?</tr>', january, re.S)
            assert last and "20:00–00:00" in last.group(0) and "夜班乙" in last.group(0)
            february = c.get(f"/console/rosters?unit={STREET}&month=2027-02").text
            first = re.search(r'<td class="date">02-01 .*?</tr>', february, re.S)
            assert first and "00:00–08:00" in first.group(0) and "夜班乙" in first.group(0)
            assert "Asia/Shanghai" in january
    finally:
        set_default_timezone("Asia/Shanghai")
        unit.timezone = None
        session.add(unit)
        session.commit()
