"""Roster alerts through the notification pipeline: gaps ahead and missed check-ins."""

from __future__ import annotations

from datetime import date, datetime, time

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import transaction
from app.notify.models import OutboxMessage
from app.org import units
from app.roster import jobs
from tests.conftest import SHANGHAI
from tests.factories import login, make_person
from tests.roster.helpers import rotation


def messages(session: Session, template: str) -> list[OutboxMessage]:
    session.commit()
    return list(session.exec(select(OutboxMessage).where(OutboxMessage.template == template)
                             .order_by(col(OutboxMessage.id))).all())  # fmt: skip


def test_a_gap_pages_the_units_leader_and_the_parents_duty_officer_once_a_day(
    session: Session, clock: ManualClock, engine: Engine
) -> None:
    district_officer = make_person(session, clock, unit="110106", roles=["duty_officer"])
    street_leader = make_person(session, clock, unit="110106002", roles=["leader"])
    rotation(session, clock, unit="110106", role="duty_officer", people=[district_officer], start=date(2026, 4, 1))
    rotation(session, clock, unit="110106002", role="leader", people=[street_leader], start=date(2026, 4, 1))
    with transaction(engine) as s:
        result = jobs.gap_alerts(s, clock=clock)
    assert result.found > 0
    street_name = units.get(session, "110106002").name
    gap_pages = [m for m in messages(session, "roster_gap") if m.params["unit"] == street_name]
    assert {m.person_id for m in gap_pages} == {street_leader.id, district_officer.id}
    assert all(m.params["role"] == "duty_officer" for m in gap_pages)
    with transaction(engine) as s:
        again = jobs.gap_alerts(s, clock=clock)
    assert again.paged == 0  # the same gaps, the same day: nothing new


def test_a_duty_officer_who_does_not_check_in_pages_the_leader(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    officer = make_person(session, clock, unit="110106001", roles=["duty_officer"], username="street.officer")
    other = make_person(session, clock, unit="110106001", roles=["duty_officer"])
    leader = make_person(session, clock, unit="110106001", roles=["leader"])
    rotation(session, clock, unit="110106001", role="duty_officer", people=[officer, other], start=date(2026, 4, 1))
    rotation(session, clock, unit="110106001", role="leader", people=[leader], start=date(2026, 4, 1))
    # 2026-04-18 is the 17th day of the rotation: `other` took over at 08:30 and has not checked in.
    clock.set(datetime.combine(date(2026, 4, 18), time(8, 44), SHANGHAI))
    with transaction(engine) as s:
        assert jobs.missed_check_ins(s, clock=clock).found == 0  # within the 15-minute grace
    clock.set(datetime.combine(date(2026, 4, 18), time(8, 46), SHANGHAI))
    with transaction(engine) as s:
        jobs.missed_check_ins(s, clock=clock)
    with transaction(engine) as s:
        jobs.missed_check_ins(s, clock=clock)
    pages = messages(session, "missed_check_in")
    assert [(m.person_id, m.params["name"]) for m in pages] == [(leader.id, other.name)]

    # The next day it is `officer`'s turn, who checks in on time: no page.
    clock.set(datetime.combine(date(2026, 4, 19), time(8, 31), SHANGHAI))
    r = client.post("/api/v1/shifts/check-in", json={}, headers=login(client, "street.officer"))
    assert r.status_code == 201, r.text
    clock.set(datetime.combine(date(2026, 4, 19), time(9, 0), SHANGHAI))
    with transaction(engine) as s:
        assert jobs.missed_check_ins(s, clock=clock).found == 0
    assert len(messages(session, "missed_check_in")) == 1
