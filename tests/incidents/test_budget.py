"""The daily SMS budget per number: the last SMS is a digest of what is pending, then voice (or the console)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.incidents.models import IncidentTier
from app.notify.models import OutboxMessage
from tests.conftest import SHANGHAI
from tests.incidents.delivery import calls_to, report, sms_to, timeline
from tests.incidents.helpers import key_for, staff_chain, tick
from tests.notify.conftest import Service, Simulator


@pytest.fixture
def service_options() -> dict[str, Any]:
    # These tests run the tick themselves: a background one commits every second, and a test's own read-then-write
    # (make_person hashes a password in between) then fails on SQLite with "database is locked".
    return {"DUTYLINE_SMS_DAILY_BUDGET": 3, "DUTYLINE_SCHEDULER": False}


def test_a_budget_running_out_into_a_digest_then_voice(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    officer = staff("street", "duty_officer").phone
    key = key_for(session, clock, "119")
    first = report(service, key, 1)
    clock.advance(seconds=1)
    second = report(service, key, 2)
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    texts = sms_to(simulator, officer)
    assert len(texts) == 2 and calls_to(simulator, officer) == []
    assert sorted(first["code"] in b for b in texts) == [False, True]

    # The window passes: both incidents remind the street officer. The first reminder is the budget's last SMS
    # (the 3rd): a digest naming both pending incidents. The second goes by voice.
    clock.advance(minutes=5)
    tick(engine, clock)
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    texts = sms_to(simulator, officer)
    assert len(texts) == 3, texts
    digest = texts[2]
    assert "待签收汇总" in digest and "2起" in digest and first["code"] in digest and second["code"] in digest
    [call] = calls_to(simulator, officer)
    assert " ".join(second["code"]) in " ".join(call["say"])
    said = {
        inc["code"]: [e["message"] for e in timeline(service, key, inc["id"]) if e["kind"] == "page"]
        for inc in (first, second)
    }
    assert any("改发待签收汇总" in m for m in said[first["code"]])
    assert any("（电话）" in m and "今日短信已达3条，改为电话" in m for m in said[second["code"]])

    # The call acknowledges the second incident at the street, as any call does.
    r = simulator.http.post(f"/calls/{call['sid']}/digits", json={"digits": "1"})
    assert r.status_code == 200 and "已签收" in " ".join(r.json()["say"])
    session.commit()
    street = session.exec(
        select(IncidentTier).where(IncidentTier.incident_id == second["id"], IncidentTier.tier == "street")
    ).one()
    assert street.acknowledged_at is not None

    # Counted from the outbox rows: exactly the budget went by SMS today.
    midnight = datetime(2026, 4, 18, tzinfo=SHANGHAI)
    rows = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.recipient == officer,
            OutboxMessage.channel == "sms",
            col(OutboxMessage.created_at) >= midnight,
        )
    ).all()
    assert len(rows) == 3 and rows[-1].template == "digest"

    # A new local day, a new budget.
    clock.set(datetime(2026, 4, 19, 0, 1, tzinfo=SHANGHAI))
    third = report(service, key, 3, occurred_at=clock.now().isoformat())
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    assert third["code"] in sms_to(simulator, officer)[-1] and "回复1签收" in sms_to(simulator, officer)[-1]


def test_informational_pages_beyond_the_budget_stay_in_the_console(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    city = staff("city", "duty_officer").phone
    key = key_for(session, clock, "119")
    # Sensitive incidents inform the city; the city duty officer needs not acknowledge them.
    incidents = [report(service, key, n, sensitive=True) for n in range(1, 5)]
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    texts = sms_to(simulator, city)
    assert len(texts) == 3 and all("无需签收" in t for t in texts)  # nothing pending: no digest of nothing
    assert calls_to(simulator, city) == []
    # Which incident's page came fourth depends on the order the tick took them in: one of them is held.
    held = [e for inc in incidents for e in timeline(service, key, inc["id"]) if e["kind"] == "page_held"]
    assert len(held) == 1 and "通报仅在平台显示" in held[0]["message"] and held[0]["tier"] == "city"
    assert clock.now() - timedelta(hours=1) < datetime.fromisoformat(held[0]["at"])
