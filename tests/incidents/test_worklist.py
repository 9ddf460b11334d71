"""The open incidents a duty officer works through (the board and the incident list poll it every few seconds):
gravest first, the tier each viewer could sign for, in a fixed number of queries."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from app.auth import service as auth_service
from app.clock import ManualClock
from app.incidents import worklist
from tests.incidents.helpers import fire, key_for, staff_chain, tick


def _statements(engine: Engine, session: Session, clock: ManualClock, person_id: int) -> tuple[list[str], int]:
    seen: list[str] = []

    def count(*_: object) -> None:
        seen.append("x")

    session.commit()
    actor = auth_service.person_principal(session, person_id)
    event.listen(engine, "before_cursor_execute", count)
    try:
        items = worklist.open_incidents(session, clock=clock, actor=actor, limit=200)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return seen, len(items)


def test_gravest_first_the_tier_to_sign_and_a_fixed_number_of_queries(
    client: TestClient, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    key = key_for(session, clock, "119")
    minor = client.post("/api/v1/incidents", json=fire(external_id="w-1"), headers=key).json()
    clock.advance(minutes=1)
    grave = fire(external_id="w-2", casualties={"deaths": 12, "injuries": 0, "trapped": 0, "missing": 0})
    major = client.post("/api/v1/incidents", json=grave, headers=key).json()
    tick(engine, clock)
    street = staff("street", "duty_officer")
    assert street.id is not None
    session.commit()
    actor = auth_service.person_principal(session, street.id)
    items = worklist.open_incidents(session, clock=clock, actor=actor, limit=200)
    assert [(i.incident.code, i.ack_tier) for i in items] == [(major["code"], "street"), (minor["code"], "street")]
    # The city's leader sees both and signs for the city on the grave one only (a level IV never reaches the city).
    city = staff("city", "leader")
    assert city.id is not None
    leader = worklist.open_incidents(session, clock=clock, actor=auth_service.person_principal(session, city.id),
                                     limit=200)  # fmt: skip
    assert {i.incident.code: i.ack_tier for i in leader} == {major["code"]: "city", minor["code"]: None}

    few, n = _statements(engine, session, clock, street.id)
    assert n == 2
    for i in range(8):
        client.post("/api/v1/incidents", json=fire(external_id=f"w-more-{i}"), headers=key)
    tick(engine, clock)
    many, n = _statements(engine, session, clock, street.id)
    assert n == 10 and len(many) == len(few), (len(few), len(many))
