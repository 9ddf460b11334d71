"""Staffing for roll-call and notice scenarios: many units, each post held around the clock by its own person."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.auth import api_keys
from app.auth.principal import Principal
from app.clock import ManualClock
from app.db import transaction
from app.escalation import jobs
from app.notices import jobs as notice_jobs
from app.org import people
from app.org.models import Person, Unit
from app.org.schemas import PersonCreate
from app.rollcall import jobs as rollcall_jobs
from app.roster import service as roster_service
from app.roster.schemas import RotationCreate
from tests.factories import PASSWORD, make_agency, next_phone

SYSTEM = Principal.system("test")


@dataclass
class Posts:
    """Who holds each post: (unit code, role) -> person."""

    people: dict[tuple[str, str], Person] = field(default_factory=dict)

    def __call__(self, code: str, role: str = "duty_officer") -> Person:
        return self.people[(code, role)]

    def post_of(self, person_id: int | None) -> tuple[str, str]:
        return next(k for k, p in self.people.items() if p.id == person_id)


def staff(
    session: Session,
    clock: ManualClock,
    codes: list[str],
    *,
    roles: tuple[str, ...] = ("duty_officer", "leader"),
    login: set[str] | None = None,
    posts: Posts | None = None,
) -> Posts:
    """Each unit's posts held by one person each, around the clock (a daily rotation of one). Only the units in
    `login` get a password (hashing one is slow)."""
    session.commit()
    posts = posts or Posts()
    start = clock.now().date() - timedelta(days=30)
    for code in codes:
        for role in roles:
            # A writer from its first statement (BEGIN IMMEDIATE, queued on the process's write lock): a
            # transaction that read first cannot be upgraded to write once a live server's thread wrote between.
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            can_login = login is not None and code in login
            person, _ = people.create(
                session,
                clock=clock,
                actor=SYSTEM,
                data=PersonCreate(
                    name=f"{code[-3:]}{'值班' if role == 'duty_officer' else '领导'}",
                    phone=next_phone(),
                    unit_code=code,
                    roles=[role],
                    username=f"{role}.{code}",
                    password=PASSWORD if can_login else None,
                ),
            )
            session.flush()
            roster_service.create_rotation(
                session,
                clock=clock,
                actor=SYSTEM,
                data=RotationCreate(
                    unit_code=code,
                    role=role,
                    participants=[person.id or 0],
                    start_date=date(start.year, start.month, 1),
                ),
            )
            posts.people[(code, role)] = person
            session.commit()
    return posts


def children(session: Session, code: str) -> list[str]:
    parent = session.exec(select(Unit).where(Unit.code == code)).one()
    return [u.code for u in session.exec(select(Unit).where(Unit.parent_id == parent.id).order_by(col(Unit.code)))]


def warning_key(session: Session, clock: ManualClock, code: str = "bjqx") -> dict[str, str]:
    """The early-warning system's API key (warnings:write), city-wide."""
    agency = make_agency(session, clock, code=code, kind="other")
    new = api_keys.create(session, clock=clock, agency=agency, scopes=["warnings:write", "notices:read"])
    session.commit()
    return {"X-API-Key": new.key}


def follow_up(engine: Engine, clock: ManualClock) -> None:
    """What the scheduler runs: the escalation tick (chases included), then roll-call and notice follow-ups."""
    jobs.run_tick(engine, clock=clock)
    with transaction(engine) as session:
        rollcall_jobs.tick(session, clock=clock)
        notice_jobs.tell_issuers(session, clock=clock)
    jobs.run_tick(engine, clock=clock)  # the one-shot alerts those made
