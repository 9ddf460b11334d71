"""Roster rows made through the real service functions."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlmodel import Session

from app.auth.principal import Principal
from app.clock import Clock
from app.org import units as unit_service
from app.org.models import Person, Unit
from app.roster import service as roster_service
from app.roster.models import Override, Rotation
from app.roster.schemas import OverrideCreate, RotationCreate, ShiftCreate

SYSTEM = Principal.system("test")


def unit(session: Session, code: str) -> Unit:
    return unit_service.get(session, code)


def rotation(
    session: Session,
    clock: Clock,
    *,
    unit: str,
    role: str,
    people: list[Person],
    start: date,
    handoff: time = time(8, 30),
    shift_minutes: int = 1440,
    cycle_minutes: int | None = None,
    end: date | None = None,
) -> Rotation:
    data = RotationCreate(
        unit_code=unit,
        role=role,
        participants=[p.id for p in people if p.id is not None],
        start_date=start,
        handoff_time=handoff,
        shift_minutes=shift_minutes,
        cycle_minutes=cycle_minutes,
        end_date=end,
    )
    row = roster_service.create_rotation(session, clock=clock, actor=SYSTEM, data=data)
    session.commit()
    return row


def override(
    session: Session, clock: Clock, *, unit: str, role: str, person: Person, start: datetime, end: datetime
) -> Override:
    data = OverrideCreate(unit_code=unit, role=role, person=person.id or 0, starts_at=start, ends_at=end)
    row, _, _ = roster_service.create_override(session, clock=clock, actor=SYSTEM, data=data)
    session.commit()
    return row


def shift(
    session: Session, clock: Clock, *, unit: str, role: str, person: Person, start: datetime, end: datetime
) -> None:
    data = ShiftCreate(unit_code=unit, role=role, person=person.id or 0, starts_at=start, ends_at=end)
    roster_service.create_shift(session, clock=clock, actor=SYSTEM, data=data)
    session.commit()
