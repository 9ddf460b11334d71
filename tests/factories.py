"""Typed factories: real rows through the real service functions."""

from __future__ import annotations

import itertools

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.auth.principal import Principal
from app.clock import Clock
from app.org import agencies, people
from app.org.models import Agency, Person
from app.org.schemas import AgencyCreate, PersonCreate

PASSWORD = "Correct-horse-9"
_seq = itertools.count(1)


def next_phone() -> str:
    return f"+86139{next(_seq):08d}"


def make_person(
    session: Session,
    clock: Clock,
    *,
    unit: str,
    roles: list[str],
    username: str | None = None,
    password: str | None = PASSWORD,
    name: str | None = None,
) -> Person:
    session.commit()  # end any read snapshot first (SQLite WAL): a stale one cannot be upgraded to write
    n = next(_seq)
    username = username or f"user{n}"
    person, _ = people.create(
        session,
        clock=clock,
        actor=Principal.system("test"),
        data=PersonCreate(
            name=name or f"测试人员{n}",
            phone=next_phone(),
            unit_code=unit,
            roles=roles,
            username=username,
            password=password,
        ),
    )
    session.commit()
    return person


def make_agency(session: Session, clock: Clock, *, code: str, kind: str = "fire", unit: str | None = None) -> Agency:
    session.commit()  # end any read snapshot first (SQLite WAL)
    agency, _ = agencies.create(
        session,
        clock=clock,
        actor=Principal.system("test"),
        data=AgencyCreate(code=code, name=f"agency {code}", kind=kind, unit_code=unit),
    )
    session.commit()
    return agency


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def signed_in(client: TestClient, session: Session, clock: Clock, *, unit: str, roles: list[str]) -> dict[str, str]:
    person = make_person(session, clock, unit=unit, roles=roles)
    assert person.username is not None
    return login(client, person.username)
