from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from app import demo
from app.clock import ManualClock
from app.db import transaction
from app.org.models import Person
from app.roster.models import Override, Rotation
from tests.factories import login, signed_in


def counts(session: Session) -> tuple[int, int, int]:
    session.rollback()
    people, rotations, overrides = (
        session.exec(select(func.count()).select_from(m)).one() for m in (Person, Rotation, Override)
    )
    return people, rotations, overrides


def test_demo_board_has_no_gap_and_demo_is_idempotent(
    engine: Engine, client: TestClient, session: Session, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUTYLINE_DEMO_PASSWORD", "Demo-password-1")
    began = time.monotonic()
    with transaction(engine) as s:
        report = demo.install(s, clock=clock)
    assert time.monotonic() - began < 15
    assert "721 rotations for 360 units" in report
    first = counts(session)
    with transaction(engine) as s:
        demo.install(s, clock=clock)
    assert counts(session) == first

    headers = signed_in(client, session, clock, unit="110000", roles=["admin"])
    board = client.get("/api/v1/oncall/board", headers=headers).json()["items"]
    assert len(board) == 360
    assert [e["unit_code"] for e in board if e["duty_officer"] is None or e["leader"] is None] == []
    gaps = client.get("/api/v1/rosters/gaps?unit=110000&to=2026-05-18T12:00:00%2B08:00", headers=headers).json()
    assert gaps["items"] == []

    # The demo sign-ins hold their units' shifts right now, so they can check in.
    chain = client.get("/api/v1/oncall?unit=110106001", headers=headers).json()
    assert [e["duty_officer"]["name"] for e in chain] == [
        "陈静（右安门街道值班员）",
        "张伟（丰台区值班员）",
        "王海（市值班员）",
    ]
    r = client.post("/api/v1/shifts/check-in", json={}, headers=login(client, "street.duty", "Demo-password-1"))
    assert r.status_code == 201, r.text
