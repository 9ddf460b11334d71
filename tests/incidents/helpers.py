"""Scenario helpers: a staffed chain (street → district → city), intake, ticks, and the pages sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.auth import api_keys
from app.clock import ManualClock
from app.db import transaction
from app.escalation import jobs
from app.notify.models import OutboxMessage
from app.org.models import Person
from tests.factories import login, make_agency, make_person
from tests.roster.helpers import rotation

CHAIN = {"street": "110106001", "district": "110106", "city": "110000"}


@dataclass
class Staff:
    people: dict[tuple[str, str], Person]

    def __call__(self, tier: str, role: str) -> Person:
        return self.people[(tier, role)]

    def tier_of(self, person_id: int | None) -> tuple[str, str]:
        return next(k for k, p in self.people.items() if p.id == person_id)


def staff_chain(session: Session, clock: ManualClock, chain: dict[str, str] = CHAIN) -> Staff:
    """A duty officer and a leader on duty around the clock at every tier of the chain."""
    people: dict[tuple[str, str], Person] = {}
    start = clock.now().date() - timedelta(days=30)
    for tier, code in chain.items():
        for role in ("duty_officer", "leader"):
            person = make_person(session, clock, unit=code, roles=[role], username=f"{tier}.{role}.{code}")
            rotation(session, clock, unit=code, role=role, people=[person], start=date(start.year, start.month, 1))
            people[(tier, role)] = person
    return Staff(people)


def fire(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": "119-20260418-0042",
        "category": "hospital",
        "title": "医院住院部起火",
        "description": "住院部三层起火",
        "unit_code": "110106001",
        "address": "右安门街道某医院",
        "location": {"lat": 39.86, "lon": 116.36},
        "occurred_at": "2026-04-18T11:50:00+08:00",
        "severity": None,
        "casualties": {"deaths": 0, "injuries": 0, "trapped": 0, "missing": 0},
        "economic_loss_cny": 0,
        "sensitive": False,
    }
    body.update(overrides)
    return body


def tick(engine: Engine, clock: ManualClock) -> jobs.TickResult:
    return jobs.run_tick(engine, clock=clock)


def pages(session: Session, incident_id: int, channel: str = "sms") -> list[OutboxMessage]:
    session.commit()  # a fresh snapshot: SQLite in WAL mode reads one snapshot per transaction
    return list(
        session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.incident_id == incident_id, OutboxMessage.channel == channel)
            .order_by(col(OutboxMessage.id))
        ).all()
    )


def paged(session: Session, staff: Staff, incident_id: int) -> list[tuple[str, str]]:
    """Who was paged by SMS, as (tier, role) of the people, in order."""
    return [staff.tier_of(m.person_id) for m in pages(session, incident_id)]


def key_for(
    session: Session,
    clock: ManualClock,
    code: str,
    *,
    kind: str = "fire",
    unit: str | None = None,
    scopes: list[str] | None = None,
) -> dict[str, str]:
    """An agency with an API key; the headers that send it."""
    agency = make_agency(session, clock, code=code, kind=kind, unit=unit)
    scopes = scopes or ["incidents:write", "incidents:read", "heartbeats:write"]
    new = api_keys.create(session, clock=clock, agency=agency, scopes=scopes)
    session.commit()
    return {"X-API-Key": new.key}


def signed_in_as(client: TestClient, person: Person) -> dict[str, str]:
    assert person.username is not None
    return login(client, person.username)


def in_transaction(engine: Engine) -> Any:
    return transaction(engine)
