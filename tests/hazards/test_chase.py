"""The deadline chase re-planned: an extension moves the reminders and the overdue steps to the new deadline; a
hazard listed at the city reports past its unit's leader straight to the city; a vacant post falls through."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from app.clock import ManualClock
from app.escalation import jobs
from tests.hazards.helpers import create, team
from tests.hazards.test_scenario import RESPONSIBLE, Phones, at
from tests.incidents.helpers import staff_chain


def test_an_extension_moves_the_chase_to_the_new_deadline(
    client: TestClient, engine: Engine, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    t = team(client, session, clock)
    phones = Phones(session)
    h = create(client, t["inspector"], clock)  # due 2026-04-25
    r = client.post(f"/api/v1/hazards/{h['id']}/extension", json={"until": "2026-05-05", "reason": "需采购防火门"},
                    headers=t["district_leader"])  # fmt: skip
    assert r.status_code == 200 and r.json()["deadline"] == "2026-05-05"
    assert r.json()["timeline"][-1]["kind"] == "extension"

    def tick_at(when: datetime) -> list[str]:
        clock.set(when)
        jobs.run_tick(engine, clock=clock)
        return sorted(p for p, _ in phones.new())

    assert tick_at(at("2026-04-22")) == []  # the old reminder day
    assert tick_at(at("2026-04-26")) == []  # the old day after
    assert tick_at(at("2026-05-02")) == sorted([staff("street", "duty_officer").phone, RESPONSIBLE])
    assert tick_at(at("2026-05-04")) == sorted([staff("street", "duty_officer").phone, RESPONSIBLE])
    assert tick_at(at("2026-05-06")) == [staff("street", "leader").phone]


def test_a_hazard_listed_at_the_city_reports_to_the_city(
    client: TestClient, engine: Engine, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock)
    t = team(client, session, clock)
    phones = Phones(session)
    h = create(client, t["inspector"], clock, deadline="2026-04-19")
    r = client.post(f"/api/v1/hazards/{h['id']}/listing", json={"tier": "city", "reason": "市级挂牌"},
                    headers=t["city_admin"])  # fmt: skip
    assert r.status_code == 200, r.text

    def tick_at(when: datetime) -> list[str]:
        clock.set(when)
        jobs.run_tick(engine, clock=clock)
        return [p for p, _ in phones.new()]

    assert tick_at(at("2026-04-20")) == [staff("street", "leader").phone]
    assert tick_at(at("2026-04-23")) == [staff("city", "duty_officer").phone]  # not the district: the listing tier
    assert tick_at(at("2026-04-30")) == []  # the ladder ends at the listing tier
    kinds = [e["kind"] for e in client.get(f"/api/v1/hazards/{h['id']}", headers=t["city_admin"]).json()["timeline"]]
    assert kinds.count("overdue") == 1 and kinds.count("escalated") == 1


def test_a_vacant_leader_falls_through_to_the_tier_above(
    client: TestClient, engine: Engine, session: Session, clock: ManualClock
) -> None:
    staff = staff_chain(session, clock, {"district": "110106", "city": "110000"})  # nobody on the street's roster
    t = team(client, session, clock)
    phones = Phones(session)
    h = create(client, t["inspector"], clock, deadline="2026-04-19")
    clock.set(at("2026-04-20"))
    jobs.run_tick(engine, clock=clock)
    assert [p for p, _ in phones.new()] == [staff("district", "duty_officer").phone]
    kinds = [e["kind"] for e in client.get(f"/api/v1/hazards/{h['id']}", headers=t["city_admin"]).json()["timeline"]]
    assert "vacant" in kinds
