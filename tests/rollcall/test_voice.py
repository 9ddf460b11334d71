"""Roll-call pages take the same path as an incident's: leaders called when the roll-call asks for it, the day's
SMS budget, and a keypress that answers the roll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.escalation import jobs
from app.escalation.models import ChaseEvent
from app.notify.models import OutboxMessage
from tests.duty import staff
from tests.notify.conftest import Phone, Service
from tests.notify.pages import enqueue_page

DISTRICT, STREET = "110106", "110106001"


@pytest.fixture
def service_options() -> dict[str, Any]:
    return {"DUTYLINE_SMS_DAILY_BUDGET": 3, "DUTYLINE_SCHEDULER": False}


def _call_roll(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": f"duty_officer.{DISTRICT}", "password": "Correct-horse-9"}
        ).json()["access_token"]
        r = http.post("/api/v1/roll-calls", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 201, r.text
        rc: dict[str, Any] = r.json()
        return rc


def _entries(service: Service, rc: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    with httpx.Client(base_url=service.url, timeout=30) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": f"duty_officer.{DISTRICT}", "password": "Correct-horse-9"}
        ).json()["access_token"]
        detail = http.get(f"/api/v1/roll-calls/{rc['id']}", headers={"Authorization": f"Bearer {token}"}).json()
    return {(e["role"], e["state"], e["channel"]) for e in detail["entries"] if e["unit_code"] == STREET}


def test_a_leader_is_called_when_the_roll_call_asks_and_answers_by_pressing_1(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET], login={DISTRICT})
    rc = _call_roll(service, {"voice_for_leaders": True})
    assert rc["voice_for_leaders"] is True
    jobs.run_tick(engine, clock=clock)
    leader = phone(posts(STREET, "leader").phone)
    leader.expect_sms("【查岗】", rc["code"]).expect_call("查岗点名", "确认请按1")
    officer = phone(posts(STREET).phone).expect_sms("【查岗】", rc["code"])
    leader.press("1", "已签收")
    officer.reply(f"1 {rc['code']}").expect_sms("已确认在岗")
    assert _entries(service, rc) == {("leader", "answered", "voice"), ("duty_officer", "answered", "sms")}
    # Only the leader's post was called.
    session.commit()
    calls = session.exec(select(OutboxMessage).where(col(OutboxMessage.channel) == "voice")).all()
    assert [c.recipient for c in calls] == [posts(STREET, "leader").phone]


def test_past_the_days_sms_budget_a_roll_call_page_goes_by_voice_and_a_keypress_answers(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET], roles=("duty_officer",), login={DISTRICT})
    officer_phone = posts(STREET).phone
    for i in range(3):  # today's budget of 3 used up already
        enqueue_page(engine, clock, phone=officer_phone, incident_id=900 + i, code=f"B{i}X9")
    officer = phone(officer_phone)
    for i in range(3):
        officer.expect_sms(f"B{i}X9")
    rc = _call_roll(service, {"roles": ["duty_officer"]})
    jobs.run_tick(engine, clock=clock)
    officer.expect_call("查岗点名", "确认请按1")
    officer.press("1", "已签收")
    assert _entries(service, rc) == {("duty_officer", "answered", "voice")}
    session.commit()
    sms = session.exec(
        select(OutboxMessage).where(OutboxMessage.recipient == officer_phone, OutboxMessage.template == "rollcall_page")
    ).all()
    assert sms == []  # no fourth SMS today
    notes = [e.message for e in session.exec(select(ChaseEvent).where(ChaseEvent.kind == "page")).all()]
    assert any("今日短信已达3条，改为电话" in n for n in notes), notes
