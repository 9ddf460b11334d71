"""Done-when scenario: a rainstorm red warning (CAP) for 门头沟区 and 房山区 reaches both districts and all their
streets; the streets sign by SMS reply but one, which is chased (its leader, then overdue and the city told); the
update amends it and asks for new signatures; the cancellation withdraws it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from tests.duty import children, follow_up, staff, warning_key
from tests.notices.test_cap import sample
from tests.notify.conftest import Phone, Service

CITY, MENTOUGOU, FANGSHAN = "110000", "110109", "110111"
CAP = {"Content-Type": "application/cap+xml"}


@pytest.fixture
def service_options() -> dict[str, Any]:
    # The test ticks (follow_up) at the moments it means. With the service's own tick running too, the 33 hours
    # the clock jumps before the cancellation made the update's reminders due, and now and then that tick sent
    # them before the cancellation arrived (the phone fixture then fails on 42 unexpected 催签).
    return {"DUTYLINE_SCHEDULER": False}


def test_a_rainstorm_red_warning_signed_chased_updated_and_cancelled(
    service: Service, session: Session, clock: ManualClock, phone: Callable[[str], Phone], engine: Engine
) -> None:
    streets = children(session, MENTOUGOU) + children(session, FANGSHAN)
    posts = staff(session, clock, [CITY, MENTOUGOU, FANGSHAN, *streets], login={MENTOUGOU, FANGSHAN})
    silent = streets[3]
    key = warning_key(session, clock)
    with httpx.Client(base_url=service.url, timeout=10) as http:
        r = http.post("/api/v1/warnings/cap", content=sample("alert"), headers=key | CAP)
        assert r.status_code == 201, r.text
        notice = r.json()
        code = notice["code"]
        follow_up(engine, clock)
        for unit in [MENTOUGOU, FANGSHAN, *streets]:
            holder = phone(posts(unit).phone).expect_sms(
                "【红色预警】北京市：北京市气象台发布暴雨红色预警信号", f"回复 1 {code} 签收"
            )
            if unit in streets and unit != silent:
                holder.reply(f"1 {code}").expect_sms(f"已签收 {code}")
        for district in (MENTOUGOU, FANGSHAN):  # the districts sign in the console or the API
            token = http.post(
                "/api/v1/auth/token", data={"username": f"duty_officer.{district}", "password": "Correct-horse-9"}
            ).json()["access_token"]
            signed = http.post(f"/api/v1/notices/{notice['id']}/sign", headers={"Authorization": f"Bearer {token}"})
            assert signed.status_code == 200, signed.text

        # Red: 15 minutes to sign. Then the silent street's leader; 15 more and it is overdue, the city told.
        clock.advance(minutes=15)
        follow_up(engine, clock)
        phone(posts(silent, "leader").phone).expect_sms("【催签】", "未签收北京市红色预警", f"回复 1 {code} 签收")
        clock.advance(minutes=15)
        follow_up(engine, clock)
        city = phone(posts(CITY).phone)
        units = {u["unit_code"]: u["unit_name"] for u in notice["receipts"]}
        city.expect_sms("【签收逾期】1个单位逾期未签收红色预警", code, units[silent])
        seen = http.get(f"/api/v1/notices/{notice['id']}", headers=key).json()
        by_unit = {x["unit_code"]: x for x in seen["receipts"]}
        assert by_unit[silent]["state"] == "overdue"
        assert all(x["state"] == "signed" for u, x in by_unit.items() if u != silent)
        assert sum(1 for x in seen["receipts"] if x["signed_via"] == "sms") == len(streets) - 1
        assert seen["summary"] == {"units": 43, "signed": 42, "pending": 0, "overdue": 1, "fed_back": 0,
                                   "late_feedback": 0}  # fmt: skip

        # The update: the text is amended and every unit is asked to sign the new version.
        clock.advance(hours=5)
        upd = http.post("/api/v1/warnings/cap", content=sample("update"), headers=key | CAP)
        assert upd.status_code == 200 and upd.json()["version"] == 2
        follow_up(engine, clock)
        for unit in [MENTOUGOU, FANGSHAN, *streets]:
            holder = phone(posts(unit).phone).expect_sms(
                "【红色预警更新】北京市：北京市气象台更新暴雨红色预警信号", "重新签收"
            )
            if unit == silent:
                holder.reply(f"1 {code}").expect_sms(f"已签收 {code}")  # signs the new version late, by SMS
        now = http.get(f"/api/v1/notices/{notice['id']}", headers=key).json()
        assert {x["unit_code"]: x["state"] for x in now["receipts"]}[silent] == "signed"
        assert now["summary"]["pending"] == 42

        # The cancellation: the chase of the new version stops; every unit is told; nobody is chased any more.
        clock.advance(hours=33)
        gone = http.post("/api/v1/warnings/cap", content=sample("cancel"), headers=key | CAP)
        assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
        follow_up(engine, clock)
        for unit in [MENTOUGOU, FANGSHAN, *streets]:
            phone(posts(unit).phone).expect_sms("【红色预警解除】", "已解除，无需回复")
        clock.advance(hours=2)
        follow_up(engine, clock)  # no reminders for a withdrawn warning (the phone fixture fails on any)
