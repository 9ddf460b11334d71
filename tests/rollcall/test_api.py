"""Roll-call over the API: who is paged, who may answer, and bad input refused with nothing written."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from app.clock import ManualClock
from app.escalation import jobs
from app.notify.models import OutboxMessage
from app.rollcall.models import RollCall, RollCallEntry
from tests.duty import children, staff
from tests.factories import login, signed_in

CITY, DISTRICT, OTHER_DISTRICT = "110000", "110106", "110105"


def _sms(session: Session, code: str, template: str = "rollcall_page") -> list[OutboxMessage]:
    session.commit()
    query = select(OutboxMessage).where(OutboxMessage.incident_code == code, OutboxMessage.template == template)
    return list(session.exec(query.order_by(col(OutboxMessage.id))))


def test_the_city_calls_the_roll_of_its_districts(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    districts = children(session, CITY)
    posts = staff(session, clock, [CITY, *districts[:3]], login={CITY, districts[0]})
    city = login(client, f"duty_officer.{CITY}")
    r = client.post("/api/v1/roll-calls", json={"scope": "children", "note": "夜间查岗"}, headers=city)
    assert r.status_code == 201, r.text
    rc = r.json()
    assert re.fullmatch(r"R[A-Z2-9]{4}", rc["code"])
    assert rc["unit_code"] == CITY and rc["answer_within_seconds"] == 300
    # One entry per post of every district: 16 districts x 2 roles; only three districts are staffed.
    assert rc["summary"] == {"posts": 32, "answered": 0, "missed": 0, "vacant": 26, "pending": 6, "rate": 0.0}
    staffed = {(e["unit_code"], e["role"]): e for e in rc["entries"] if e["state"] == "pending"}
    assert set(staffed) == {(d, role) for d in districts[:3] for role in ("duty_officer", "leader")}
    assert staffed[(districts[0], "duty_officer")]["person"]["id"] == posts(districts[0]).id

    assert _sms(session, rc["code"]) == []  # the chase pages: the tick that its commit woke
    jobs.run_tick(engine, clock=clock)
    sms = _sms(session, rc["code"])
    assert sorted(m.person_id or 0 for m in sms) == sorted(p.id or 0 for k, p in posts.people.items() if k[0] != CITY)
    body = next(m.body for m in sms if m.person_id == posts(districts[0]).id)
    assert body.startswith("【查岗】北京市点名：") and f"请于5分钟内回复 1 {rc['code']} 确认在岗" in body
    # A vacant post falls through at once; nobody holds any post of those districts, so nobody else is paged.
    assert _sms(session, rc["code"], "rollcall_missed") == []

    # The district's duty officer answers from the console/API; answering twice changes nothing.
    officer = login(client, f"duty_officer.{districts[0]}")
    r = client.post(f"/api/v1/roll-calls/{rc['id']}/answer", headers=officer)
    assert r.status_code == 200, r.text
    mine = next(e for e in r.json()["entries"] if e["unit_code"] == districts[0] and e["role"] == "duty_officer")
    assert mine["state"] == "answered" and mine["channel"] == "api" and mine["answered_at"] is not None
    assert r.json()["summary"]["answered"] == 1 and r.json()["summary"]["rate"] == round(1 / 6, 4)
    again = client.post(f"/api/v1/roll-calls/{rc['id']}/answer", headers=officer)
    assert again.status_code == 200 and again.json()["entries"] == r.json()["entries"]

    # Someone who holds no post of this roll-call cannot answer it.
    assert client.post(f"/api/v1/roll-calls/{rc['id']}/answer", headers=city).status_code == 403
    # The district reads the roll it was called in; the listing of the city shows it.
    assert client.get(f"/api/v1/roll-calls/{rc['id']}", headers=officer).status_code == 200
    listed = client.get("/api/v1/roll-calls", params={"unit": CITY}, headers=city).json()
    assert [i["code"] for i in listed["items"]] == [rc["code"]] and listed["items"][0]["summary"]["answered"] == 1


def test_bad_roll_calls_are_refused_and_write_nothing(client: TestClient, session: Session, clock: ManualClock) -> None:
    officer = signed_in(client, session, clock, unit=DISTRICT, roles=["duty_officer"])
    viewer = signed_in(client, session, clock, unit=DISTRICT, roles=["viewer"])
    street = signed_in(client, session, clock, unit="110106001", roles=["duty_officer"])
    cases = [
        ({"unit_code": OTHER_DISTRICT}, officer, 403, None),  # outside the caller's subtree
        ({"unit_code": CITY}, officer, 403, None),  # above it
        ({"scope": "children"}, street, 422, "scope"),  # a street has nothing below it: an empty scope
        ({"answer_within_seconds": 59}, officer, 422, "answer_within_seconds"),
        ({"answer_within_seconds": 86_401}, officer, 422, "answer_within_seconds"),
        ({"roles": []}, officer, 422, "roles"),
        ({"roles": ["admin"]}, officer, 422, "roles.0"),
        ({"scope": "everyone"}, officer, 422, "scope"),
        ({}, viewer, 403, None),  # a viewer may read, not call the roll
    ]
    for body, headers, status, field in cases:
        r = client.post("/api/v1/roll-calls", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if field is not None:
            assert field in [e["field"] for e in r.json()["errors"]], r.json()
    session.commit()
    assert session.exec(select(func.count()).select_from(RollCall)).one() == 0
    assert session.exec(select(func.count()).select_from(RollCallEntry)).one() == 0
    assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == 0
    # The same district calls the roll of its own streets: accepted.
    assert client.post("/api/v1/roll-calls", json={"answer_within_seconds": 60}, headers=officer).status_code == 201
