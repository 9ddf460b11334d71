"""Alerts that target one post fall through a vacant post to the next step of the chain, up to the city's leader,
then to the admins: a missed heartbeat, an overdue report, a roster gap, a missed check-in (issue 12)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import transaction
from app.notify.models import OutboxMessage
from app.org.models import Person
from app.roster import jobs as roster_jobs
from tests.conftest import SHANGHAI
from tests.factories import make_person
from tests.incidents.helpers import fire, key_for, signed_in_as, staff_chain, tick
from tests.roster.helpers import rotation

START = date(2026, 4, 1)


def on_duty(session: Session, clock: ManualClock, unit: str, role: str) -> Person:
    person = make_person(session, clock, unit=unit, roles=[role])
    rotation(session, clock, unit=unit, role=role, people=[person], start=START)
    return person


def sent(session: Session, template: str) -> list[OutboxMessage]:
    session.commit()
    query = select(OutboxMessage).where(OutboxMessage.template == template).order_by(col(OutboxMessage.id))
    return list(session.exec(query).all())


def test_a_missed_heartbeat_with_the_city_duty_officer_vacant_pages_the_citys_leader(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    leader = on_duty(session, clock, "110000", "leader")
    key = key_for(session, clock, "120", kind="ambulance")
    assert client.post("/api/v1/heartbeats/cad-120", json={"interval_seconds": 60}, headers=key).status_code == 200
    clock.advance(seconds=61)
    tick(engine, clock)
    tick(engine, clock)
    assert [m.person_id for m in sent(session, "heartbeat_missed")] == [leader.id]


def test_a_missed_heartbeat_with_the_whole_city_vacant_tells_its_admins(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    admin = make_person(session, clock, unit="110000", roles=["admin"])
    key = key_for(session, clock, "120", kind="ambulance")
    client.post("/api/v1/heartbeats/cad-120", json={"interval_seconds": 60}, headers=key)
    clock.advance(seconds=61)
    tick(engine, clock)
    (told,) = sent(session, "post_all_vacant")
    assert told.person_id == admin.id and "cad-120" in told.body


def test_an_overdue_report_with_the_tier_above_vacant_goes_up_to_the_next_post(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    # Level III: the district leads; its report is overdue to the city, whose duty officer post is vacant.
    staff = staff_chain(session, clock, chain={"street": "110106001", "district": "110106"})
    city_leader = on_duty(session, clock, "110000", "leader")
    key = key_for(session, clock, "119")
    inc = client.post(
        "/api/v1/incidents", json=fire(casualties={"deaths": 3, "injuries": 0, "trapped": 0, "missing": 0}), headers=key
    ).json()
    tick(engine, clock)
    for tier in ("district", "street"):
        client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=signed_in_as(client, staff(tier, "duty_officer")))
    clock.advance(minutes=61)
    tick(engine, clock)
    overdue = sent(session, "report_overdue")
    assert [m.person_id for m in overdue] == [city_leader.id]
    assert overdue[0].incident_id == inc["id"]
    detail = client.get(f"/api/v1/incidents/{inc['id']}", headers=key).json()
    vacant = [e["message"] for e in detail["timeline"] if e["kind"] == "vacant"]
    assert any("北京市值班员" in m for m in vacant), vacant
    tick(engine, clock)
    assert len(sent(session, "report_overdue")) == 1


def test_a_missed_check_in_with_the_leader_vacant_pages_the_tier_above(
    session: Session, clock: ManualClock, engine: Engine
) -> None:
    first = make_person(session, clock, unit="110106001", roles=["duty_officer"])
    officer = make_person(session, clock, unit="110106001", roles=["duty_officer"])
    rotation(session, clock, unit="110106001", role="duty_officer", people=[first, officer], start=START)
    district_officer = on_duty(session, clock, "110106", "duty_officer")
    # 2026-04-18 is the rotation's 17th day: `officer` took over at 08:30 and has not checked in.
    clock.set(datetime.combine(date(2026, 4, 18), time(8, 46), SHANGHAI))
    with transaction(engine) as s:
        result = roster_jobs.missed_check_ins(s, clock=clock)
    assert result.paged == 1
    (page,) = sent(session, "missed_check_in")
    assert page.person_id == district_officer.id and officer.name in page.body


def test_a_gap_in_a_units_leader_post_is_told_to_the_parents_duty_officer_once(
    session: Session, clock: ManualClock, engine: Engine
) -> None:
    on_duty(session, clock, "110106002", "duty_officer")  # the street's leader post is the gap
    district_officer = on_duty(session, clock, "110106", "duty_officer")
    with transaction(engine) as s:
        roster_jobs.gap_alerts(s, clock=clock, horizon=timedelta(hours=72))
    street = [
        m for m in sent(session, "roster_gap") if m.params["unit"] == "太平桥街道" and m.params["role"] == "leader"
    ]
    assert [m.person_id for m in street] == [district_officer.id]


def test_a_gap_in_the_citys_leader_post_is_told_to_the_citys_admins(
    session: Session, clock: ManualClock, engine: Engine
) -> None:
    on_duty(session, clock, "110000", "duty_officer")  # the city's leader post is the gap; nobody is above it
    admin = make_person(session, clock, unit="110000", roles=["admin"])
    with transaction(engine) as s:
        roster_jobs.gap_alerts(s, clock=clock, horizon=timedelta(hours=72))
    told = [m for m in sent(session, "post_all_vacant") if "北京市带班领导" in m.body]
    assert [m.person_id for m in told] == [admin.id]
