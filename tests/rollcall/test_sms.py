"""Answering a roll-call and signing a notice from the phone: `1 <code>`, plain `1`, and what is not theirs."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.escalation import jobs
from tests.duty import staff
from tests.notify.conftest import Phone, Service

DISTRICT, STREET, OTHER = "110106", "110106001", "110106002"


def test_posts_answer_the_roll_by_sms(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET, OTHER], roles=("duty_officer",), login={DISTRICT})
    with httpx.Client(base_url=service.url) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": f"duty_officer.{DISTRICT}", "password": "Correct-horse-9"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        rc = http.post("/api/v1/roll-calls", json={"roles": ["duty_officer"]}, headers=auth).json()
        code = rc["code"]
        jobs.run_tick(engine, clock=clock)
        street = phone(posts(STREET).phone).expect_sms("【查岗】", f"回复 1 {code} 确认在岗")
        other = phone(posts(OTHER).phone).expect_sms("【查岗】", code)
        street.reply(f"1 {code.lower()}").expect_sms(f"已确认在岗 {code}")
        other.reply("1").expect_sms(f"已确认在岗 {code}")  # plain 1: the newest pending page
        other.reply("1").expect_sms("没有待签收")
        phone(posts(DISTRICT).phone).reply(f"1 {code}").expect_sms("未找到", code)  # the caller holds no entry
        detail = http.get(f"/api/v1/roll-calls/{rc['id']}", headers=auth).json()
    states = {
        (e["unit_code"], e["state"], e["channel"]) for e in detail["entries"] if e["unit_code"] in (STREET, OTHER)
    }
    assert states == {(STREET, "answered", "sms"), (OTHER, "answered", "sms")}


def test_a_street_signs_a_notice_by_sms(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    posts = staff(session, clock, [DISTRICT, STREET], roles=("duty_officer",), login={DISTRICT})
    with httpx.Client(base_url=service.url) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": f"duty_officer.{DISTRICT}", "password": "Correct-horse-9"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        body = {"title": "防汛通知", "body": "请做好准备", "to": {"units": [STREET]}, "sign_within_seconds": 600}
        notice = http.post("/api/v1/notices", json=body, headers=auth).json()
        code = notice["code"]
        jobs.run_tick(engine, clock=clock)
        street = phone(posts(STREET).phone).expect_sms("【通知】", "防汛通知", f"回复 1 {code} 签收")
        street.reply(f"1 {code}").expect_sms(f"已签收 {code}")
        street.reply(f"1 {code}").expect_sms("未找到", code)  # already signed: nothing pending under that code
        detail = http.get(f"/api/v1/notices/{notice['id']}", headers=auth).json()
    receipt = detail["receipts"][0]
    assert receipt["state"] == "signed" and receipt["signed_via"] == "sms"
    assert receipt["signed_by"]["id"] == posts(STREET).id
