"""A leader's instruction on an incident (领导批示): on its timeline, and an instruction notice to its lower tiers."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app.clock import ManualClock
from app.escalation import jobs
from app.notices.models import Notice
from app.notify.models import OutboxMessage
from tests.duty import staff
from tests.factories import login, signed_in
from tests.incidents.helpers import fire, key_for

CITY, DISTRICT, STREET = "110000", "110106", "110106001"


def test_a_city_leaders_instruction_reaches_the_district_and_the_street(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    posts = staff(session, clock, [CITY, DISTRICT, STREET], login={CITY, DISTRICT, STREET})
    inc = client.post("/api/v1/incidents", json=fire(), headers=key_for(session, clock, "119")).json()
    leader = login(client, f"leader.{CITY}")
    r = client.post(
        f"/api/v1/incidents/{inc['id']}/instructions",
        json={"text": "全力救治伤员,查明起火原因", "feedback_due_at": clock.now().replace(hour=23).isoformat()},
        headers=leader,
    )
    assert r.status_code == 201, r.text
    notice = r.json()
    assert notice["kind"] == "instruction" and notice["incident_id"] == inc["id"] and notice["unit_code"] == CITY
    assert {x["unit_code"] for x in notice["receipts"]} == {DISTRICT, STREET}
    assert notice["body"] == "全力救治伤员,查明起火原因"
    jobs.run_tick(engine, clock=clock)
    session.commit()
    pages = session.exec(select(OutboxMessage).where(OutboxMessage.template == "notice_page")).all()
    assert {p.person_id for p in pages} == {posts(DISTRICT).id, posts(STREET).id}
    assert all(p.body.startswith("【指令】北京市：") and "批示" in p.body for p in pages)
    timeline = client.get(f"/api/v1/incidents/{inc['id']}", headers=leader).json()["timeline"]
    entry = next(e for e in timeline if e["kind"] == "instruction")
    assert "全力救治伤员" in entry["message"] and entry["data"]["notice_id"] == notice["id"]

    for code in (STREET, DISTRICT):
        officer = login(client, f"duty_officer.{code}")
        r = client.post(f"/api/v1/notices/{notice['id']}/feedback", json={"text": f"{code}已落实"}, headers=officer)
        assert r.status_code == 200, r.text
    receipts = {x["unit_code"]: x for x in r.json()["receipts"]}
    assert receipts[STREET]["feedback"] == f"{STREET}已落实" and receipts[DISTRICT]["state"] == "signed"
    assert r.json()["summary"]["fed_back"] == 2 and r.json()["summary"]["late_feedback"] == 0

    # The district's leader instructs the street only.
    r = client.post(f"/api/v1/incidents/{inc['id']}/instructions", json={"text": "加强巡查"}, headers=login(
        client, f"leader.{DISTRICT}"))  # fmt: skip
    assert r.status_code == 201 and [x["unit_code"] for x in r.json()["receipts"]] == [STREET]


def test_only_a_leader_on_the_chain_gives_instructions(
    client: TestClient, session: Session, clock: ManualClock
) -> None:
    staff(session, clock, [STREET], login={STREET})
    inc = client.post("/api/v1/incidents", json=fire(), headers=key_for(session, clock, "119")).json()
    other_leader = signed_in(client, session, clock, unit="110105", roles=["leader"])
    street_leader = login(client, f"leader.{STREET}")
    officer = login(client, f"duty_officer.{STREET}")
    url = f"/api/v1/incidents/{inc['id']}/instructions"
    assert client.post(url, json={"text": "x"}, headers=officer).status_code == 403  # not a leader
    assert client.post(url, json={"text": "x"}, headers=other_leader).status_code == 404  # another district's
    r = client.post(url, json={"text": "x"}, headers=street_leader)  # the lowest tier: nobody below
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "incident_id"
    assert client.post(url, json={"text": ""}, headers=street_leader).status_code == 422
    session.commit()
    assert session.exec(select(func.count()).select_from(Notice)).one() == 0
