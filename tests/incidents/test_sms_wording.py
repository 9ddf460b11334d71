"""What the phones read, as the Twilio simulator received it: the level named so it cannot be taken for a hospital
grade, the address and casualties in the first page within two segments, the configured window, reminders that
name the tier that has not signed, full-width punctuation, and a text to every tier involved when the level rises."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from app.auth.principal import Principal
from app.clock import ManualClock
from app.escalation.rules import service as rules_service
from app.notify import templates
from tests.factories import PASSWORD
from tests.incidents.delivery import TIMEOUT, sms_to
from tests.incidents.helpers import Staff, fire, key_for, staff_chain, tick
from tests.notify.conftest import Service, Simulator

HALF_WIDTH = re.compile(r"[,;()]|(?<!\d):(?!\d)")  # a colon between digits is a time (13:00)


@pytest.fixture
def service_options() -> dict[str, Any]:
    return {"DUTYLINE_SCHEDULER": False}  # the test ticks, on its own clock


def _windows(session: Session, clock: ManualClock, seconds: int) -> None:
    """Every level's acknowledgement window set to `seconds` (a city admin's PUT of the rules)."""
    document = rules_service.current(session).model_dump(mode="json")
    for rule in document["levels"].values():
        rule["ack_window_seconds"] = seconds
    rules_service.replace(session, clock=clock, actor=Principal.system("test"), document=document)
    session.commit()


def _new(simulator: Simulator, phone: str, seen: dict[str, int]) -> list[str]:
    """The SMS a phone received since the last look."""
    texts = sms_to(simulator, phone)
    fresh = texts[seen.get(phone, 0) :]
    seen[phone] = len(texts)
    for text in fresh:
        assert not HALF_WIDTH.search(text), f"half-width punctuation in {text!r}"
    return fresh


def _step(service: Service, engine: Engine, clock: ManualClock, seconds: float = 0) -> None:
    clock.advance(seconds=seconds)
    tick(engine, clock)
    service.dispatcher.drain()


def test_first_page_reminders_and_the_tier_above_read_right(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    _windows(session, clock, 120)
    key = key_for(session, clock, "119")
    body = fire(
        title="医院住院部三层起火",
        address="丰台区右安门外大街1号右安门医院住院部",
        casualties={"deaths": 1, "injuries": 2, "trapped": 0, "missing": 0},
    )
    inc = httpx.post(f"{service.url}/api/v1/incidents", json=body, headers=key, timeout=TIMEOUT).json()
    assert inc["severity"] == "IV"
    code = inc["code"]
    seen: dict[str, int] = {}
    _step(service, engine, clock)

    street_duty, street_leader = staff("street", "duty_officer").phone, staff("street", "leader").phone
    district_duty = staff("district", "duty_officer").phone
    [first] = _new(simulator, street_duty, seen)
    assert first.startswith("【一般（IV级）事件·医院】右安门街道：医院住院部三层起火。")
    assert "地址：丰台区右安门外大街1号右安门医院住院部；伤亡：死亡1人、重伤2人。" in first
    assert first.endswith(f"编号{code}，请于2分钟内回复1签收")  # the configured window, not a constant
    assert "IV级医院" not in first and len(first) <= templates.TWO_SEGMENTS
    [district_first] = _new(simulator, district_duty, seen)
    assert "一般（IV级）事件" in district_first and "请于2分钟内回复1签收" in district_first

    # One window: the street's leader is paged, and its duty officer is reminded that the street has not signed.
    _step(service, engine, clock, 121)
    [reminder] = _new(simulator, street_duty, seen)
    assert reminder.startswith("【催签】右安门街道尚未签收") and f"（编号{code}）" in reminder
    assert "请于2分钟内回复1签收" in reminder
    assert _new(simulator, street_leader, seen)[0].startswith("【一般（IV级）事件·医院】")
    [district_reminder] = _new(simulator, district_duty, seen)
    assert district_reminder.startswith("【催签】丰台区尚未签收右安门街道一般（IV级）事件")

    # Two windows: the district is told how long the street has gone unsigned (both windows, 4 minutes).
    _step(service, engine, clock, 121)
    told = [t for t in _new(simulator, district_duty, seen) if "请丰台区签收处置" in t]
    assert len(told) == 1, told
    assert told[0].startswith(
        "【一般（IV级）事件·医院】右安门街道4分钟未签收，请丰台区签收处置：右安门街道医院住院部三层起火"
    )
    assert told[0].endswith(f"编号{code}，请于2分钟内回复1签收")


def _raise(service: Service, key: dict[str, str], incident_id: int, deaths: int) -> None:
    figures = {"deaths": deaths, "injuries": 0, "trapped": 0, "missing": 0}
    kind = "first" if deaths < 10 else "follow_up"
    body = {"kind": kind, "text": "续报", "casualties": figures}
    r = httpx.post(f"{service.url}/api/v1/incidents/{incident_id}/reports", headers=key, json=body, timeout=TIMEOUT)
    assert r.status_code in (200, 201), r.text


def _phones(staff: Staff) -> dict[str, str]:
    return {f"{tier}.{role}": staff(tier, role).phone for tier in ("street", "district", "city")
            for role in ("duty_officer", "leader")}  # fmt: skip


def test_a_rise_in_level_is_texted_to_every_tier_involved_once(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    inc = httpx.post(f"{service.url}/api/v1/incidents", json=fire(), headers=key, timeout=TIMEOUT).json()
    code, phones = inc["code"], _phones(staff)
    seen: dict[str, int] = {}
    _step(service, engine, clock)
    for name in phones:
        _new(simulator, phones[name], seen)
    street = httpx.post(f"{service.url}/api/v1/auth/token", timeout=TIMEOUT,
                        data={"username": staff("street", "duty_officer").username, "password": PASSWORD})  # fmt: skip
    token = street.json()["access_token"]
    ack = httpx.post(f"{service.url}/api/v1/incidents/{inc['id']}/ack", timeout=TIMEOUT,
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert ack.status_code == 200, ack.text

    # 3 deaths: IV → III. The street (signed) is told, no answer needed; the district (not signed) must sign at
    # the new level, and its leader is paged at once (III pages leaders at once); the city is now informed.
    _raise(service, key, inc["id"], 3)
    _step(service, engine, clock, 1)
    got = {name: _new(simulator, phone, seen) for name, phone in phones.items()}
    rise = "由一般（IV级）升为较大（III级）"
    [street_told] = got["street.duty_officer"]
    assert street_told.startswith("【事件升级·医院】右安门街道事件（编号" + code) and rise in street_told
    assert street_told.endswith("伤亡：死亡3人。无需回复")
    [district_told] = got["district.duty_officer"]
    assert rise in district_told and district_told.endswith("请于5分钟内回复1签收")
    [district_leader] = got["district.leader"]
    assert district_leader.startswith("【较大（III级）事件·医院】")
    [city_info] = got["city.duty_officer"]
    assert city_info.startswith("【较大（III级）事件通报·医院】") and city_info.endswith("无需签收")
    assert got["street.leader"] == [] and got["city.leader"] == []

    # The regrade is sent once per post: more ticks send nothing new.
    _step(service, engine, clock, 1)
    _step(service, engine, clock, 1)
    assert all(_new(simulator, phone, seen) == [] for phone in phones.values())

    # 12 deaths: III → II. The city must now sign (its first page at the new level, leaders too); every other
    # tier involved hears of this second rise, once.
    _raise(service, key, inc["id"], 12)
    _step(service, engine, clock, 1)
    got = {name: _new(simulator, phone, seen) for name, phone in phones.items()}
    second = "由较大（III级）升为重大（II级）"
    assert [second in t for t in got["street.duty_officer"]] == [True]
    assert [second in t and t.endswith("请于3分钟内回复1签收") for t in got["district.duty_officer"]] == [True]
    assert [second in t for t in got["district.leader"]] == [True]
    assert got["city.duty_officer"][0].startswith("【重大（II级）事件·医院】")
    assert got["city.leader"][0].startswith("【重大（II级）事件·医院】")
