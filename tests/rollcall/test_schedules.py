"""Unannounced roll-calls: instants drawn at random each local day inside a window that crosses midnight."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from app.audit import AuditEntry
from app.clock import ManualClock
from app.db import transaction
from app.rollcall import schedules
from app.rollcall.models import RollCall, RollCallSchedule
from tests.conftest import SHANGHAI
from tests.duty import staff
from tests.factories import login, signed_in

DISTRICT = "110106"


STEP = timedelta(minutes=7)


def _run_until(engine: Engine, clock: ManualClock, end: datetime) -> list[datetime]:
    """Tick every STEP until `end`; the drawn instants that came due, in the order they fired."""
    fired: list[datetime] = []
    while clock.now() < end:
        clock.advance(STEP)
        with transaction(engine) as session:
            for schedule in session.exec(select(RollCallSchedule)).all():
                # One roll-call per schedule per tick: an instant still due at the next tick is not a new one.
                due = [t for t in map(datetime.fromisoformat, schedule.planned) if t <= clock.now()]
                fired += [t for t in due if t not in fired]
            schedules.due(session, clock=clock)
    return fired


def test_three_checks_a_night_at_random_instants(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff(session, clock, [DISTRICT], login={DISTRICT})
    officer = login(client, f"duty_officer.{DISTRICT}")
    body = {"times_per_day": 3, "between": "22:00-06:00", "answer_within_seconds": 300}
    r = client.post("/api/v1/roll-call-schedules", json=body, headers=officer)
    assert r.status_code == 201, r.text
    assert r.json()["between"] == "22:00-06:00" and r.json()["next_at"] is None  # never announced
    nights: list[list[datetime]] = []
    for day in range(2):
        night_start = datetime.combine(clock.now().astimezone(SHANGHAI).date(), time(12)) + timedelta(days=1)
        fired = _run_until(engine, clock, night_start.replace(tzinfo=SHANGHAI))
        session.commit()
        started = session.exec(select(RollCall).order_by(col(RollCall.started_at))).all()[3 * day :]
        nights.append(fired)
        assert len(started) == 3 and len(fired) == 3, (fired, [rc.started_at for rc in started])
        for instant, rc in zip(fired, started, strict=True):
            local = instant.astimezone(SHANGHAI).time()
            assert local >= time(22) or local < time(6), local  # drawn inside the window
            assert timedelta(0) <= rc.started_at - instant <= 2 * STEP  # and started within a tick or two of it
            assert rc.schedule_id is not None and rc.note == "不定时抽查" and rc.started_by.startswith("system:")
    assert nights[0] != nights[1]
    audits = session.exec(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "rollcall.start"))
    assert audits.one() == 6
    schedule = session.exec(select(RollCallSchedule)).one()
    assert len(schedule.planned) == 3 and schedule.next_at is not None  # the next night is drawn already


def test_bad_schedules_are_refused(client: TestClient, session: Session, clock: ManualClock) -> None:
    officer = signed_in(client, session, clock, unit=DISTRICT, roles=["duty_officer"])
    street = signed_in(client, session, clock, unit="110106001", roles=["duty_officer"])
    for body, headers, status, field in [
        ({"between": "25:00-06:00"}, officer, 422, "between"),
        ({"between": "22:00-22:00"}, officer, 422, "between"),
        ({"times_per_day": 0}, officer, 422, "times_per_day"),
        ({"answer_within_seconds": 10}, officer, 422, "answer_within_seconds"),
        ({}, street, 422, "scope"),
        ({"unit_code": "110105"}, officer, 403, None),
    ]:
        r = client.post("/api/v1/roll-call-schedules", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        if field:
            assert field in [e["field"] for e in r.json()["errors"]]
    session.commit()
    assert session.exec(select(func.count()).select_from(RollCallSchedule)).one() == 0


def test_two_instants_drawn_close_together_both_fire(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff(session, clock, [DISTRICT], login={DISTRICT})
    officer = login(client, f"duty_officer.{DISTRICT}")
    assert client.post("/api/v1/roll-call-schedules", json={"times_per_day": 2}, headers=officer).status_code == 201
    schedule = session.exec(select(RollCallSchedule)).one()
    soon = clock.now() + timedelta(minutes=1)
    schedule.planned = [soon.isoformat(), (soon + timedelta(seconds=30)).isoformat()]
    schedule.next_at = soon
    session.add(schedule)
    session.commit()
    clock.advance(minutes=5)  # both are due at the same tick
    for _ in range(2):
        with transaction(engine) as s:
            assert schedules.due(s, clock=clock) == 1
    session.commit()
    assert session.exec(select(func.count()).select_from(RollCall)).one() == 2
