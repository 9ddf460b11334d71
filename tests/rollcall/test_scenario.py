"""Done-when scenario: the city calls the roll of all districts at 03:00; every post answers by SMS but one district's
duty officer, who never does: after the window her leader is paged and the city's duty officer is told."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.audit import AuditEntry
from app.clock import ManualClock
from tests.conftest import SHANGHAI
from tests.duty import children, follow_up, staff
from tests.notify.conftest import Phone, Service

CITY = "110000"


def test_the_city_calls_the_roll_at_3am_and_a_silent_officer_is_chased(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    clock.set(datetime(2026, 4, 19, 3, 0, tzinfo=SHANGHAI))
    districts = children(session, CITY)
    posts = staff(session, clock, [CITY, *districts], login={CITY})
    silent = districts[5]  # her phone gets the page and stays silent
    with httpx.Client(base_url=service.url) as http:
        token = http.post(
            "/api/v1/auth/token", data={"username": f"duty_officer.{CITY}", "password": "Correct-horse-9"}
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = http.post("/api/v1/roll-calls", json={"scope": "children", "note": "凌晨查岗"}, headers=auth)
        assert r.status_code == 201, r.text
        rc = r.json()
        code = rc["code"]
        assert rc["summary"]["posts"] == 32 and rc["summary"]["pending"] == 32
        follow_up(engine, clock)
        for district in districts:
            for role in ("duty_officer", "leader"):
                holder = phone(posts(district, role).phone).expect_sms("【查岗】北京市点名", f"回复 1 {code} 确认在岗")
                if (district, role) != (silent, "duty_officer"):
                    holder.reply(f"1 {code}").expect_sms(f"已确认在岗 {code}")

        clock.advance(minutes=4, seconds=59)
        follow_up(engine, clock)
        assert http.get(f"/api/v1/roll-calls/{rc['id']}", headers=auth).json()["summary"]["missed"] == 0
        clock.advance(seconds=1)
        follow_up(engine, clock)
        leader = phone(posts(silent, "leader").phone)
        leader.expect_sms("【查岗未应答】北京市查岗", code, posts(silent).name, "未在5分钟内应答")
        city = phone(posts(CITY).phone)
        city.expect_sms("【查岗结果】北京市查岗", code, "32岗，应答31，未应答1，空岗0", "值班员")
        detail = http.get(f"/api/v1/roll-calls/{rc['id']}", headers=auth).json()

        # The leader acknowledges the page about her officer; the post stays missed.
        leader.reply(f"1 {code}").expect_sms(f"已签收 {code}")
        clock.advance(minutes=10)
        follow_up(engine, clock)  # no more pages: the chase ended with the leader

    assert detail["summary"] == {"posts": 32, "answered": 31, "missed": 1, "vacant": 0, "pending": 0,
                                 "rate": round(31 / 32, 4)}  # fmt: skip
    missed = next(e for e in detail["entries"] if e["state"] == "missed")
    assert (missed["unit_code"], missed["role"], missed["answered_at"]) == (silent, "duty_officer", None)
    answered = [e for e in detail["entries"] if e["state"] == "answered"]
    assert all(e["channel"] == "sms" and e["answered_at"] for e in answered)
    session.commit()
    actions = session.exec(
        select(AuditEntry.action, func.count()).where(AuditEntry.object_type == "roll_call").group_by(AuditEntry.action)
    ).all()
    assert dict(actions) == {"rollcall.start": 1, "rollcall.answer": 31}
