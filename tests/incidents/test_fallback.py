"""SMS → voice fallback: a page that needs an acknowledgement and whose SMS fails rings the same person, once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from app.clock import ManualClock
from app.notify.models import OutboxMessage
from tests.incidents.delivery import calls_to, report, sms_to, timeline
from tests.incidents.helpers import key_for, staff_chain, tick
from tests.notify.conftest import Service, Simulator


@pytest.fixture
def service_options() -> dict[str, Any]:
    # These tests run the tick themselves: a background one commits every second, and a test's own read-then-write
    # (make_person hashes a password in between) then fails on SQLite with "database is locked".
    return {"DUTYLINE_DISPATCH_MAX_ATTEMPTS": 2, "DUTYLINE_SCHEDULER": False}


def _row(session: Session, phone: str, channel: str) -> OutboxMessage:
    session.commit()
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.recipient == phone, OutboxMessage.channel == channel)
    ).one()


def test_an_undelivered_sms_page_falls_back_to_one_voice_call(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    officer, city = staff("street", "duty_officer"), staff("city", "duty_officer")
    key = key_for(session, clock, "119")
    simulator.configure(undelivered_rate=1.0)  # the carrier reports every SMS undelivered (error 30003)
    inc = report(service, key, 1, sensitive=True)  # sensitive: the city is informed too, needing no ack
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    simulator.settle()  # the receipts came back: the street officer's page is undelivered
    assert _row(session, officer.phone, "sms").status == "undelivered"
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()

    [call] = calls_to(simulator, officer.phone)
    assert " ".join(inc["code"]) in " ".join(call["say"])
    # The city's SMS was informational: undelivered, and no call for it.
    assert _row(session, city.phone, "sms").status == "undelivered" and calls_to(simulator, city.phone) == []
    entries = [e for e in timeline(service, key, inc["id"]) if e["kind"] == "fallback"]
    assert len(entries) == 2  # the street and the district duty officers
    street = next(e for e in entries if e["tier"] == "street")
    assert "未送达" in street["message"] and street["data"]["person_id"] == officer.id

    # The carrier repeats the receipt: still one call.
    sms = _row(session, officer.phone, "sms")
    url = f"{service.url}/twilio/sms/status?oid={sms.id}"
    params = {"MessageSid": str(sms.provider_id), "MessageStatus": "undelivered", "ErrorCode": "30003"}
    params |= {"AccountSid": simulator.state.config.account_sid, "To": officer.phone}
    r = httpx.post(url, data=params, headers={"X-Twilio-Signature": simulator.state.sign(url, params)}, timeout=30)
    assert r.status_code == 204
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    assert len(calls_to(simulator, officer.phone)) == 1

    # The call is answered and acknowledged like any other.
    r = simulator.http.post(f"/calls/{call['sid']}/digits", json={"digits": "1"})
    assert "已签收" in " ".join(r.json()["say"])
    assert sms_to(simulator, officer.phone) and _row(session, officer.phone, "voice").acknowledged_at is not None


def test_an_sms_the_dispatcher_gives_up_on_falls_back_to_voice(
    service: Service, simulator: Simulator, session: Session, clock: ManualClock, engine: Engine
) -> None:
    staff = staff_chain(session, clock)
    officer = staff("street", "duty_officer")
    key = key_for(session, clock, "119")
    simulator.configure(failure_rate=1.0)  # Twilio answers 429/503 to everything
    inc = report(service, key, 1)
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    clock.advance(minutes=2)  # past the first retry's backoff: the second (and last) attempt fails too
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    sms = _row(session, officer.phone, "sms")
    assert sms.status == "failed" and sms.attempts == 2 and "gave up" in (sms.last_error or "")
    assert calls_to(simulator, officer.phone) == []  # the voice row is queued; Twilio is still failing

    simulator.configure(failure_rate=0.0)
    clock.advance(minutes=2)
    tick(engine, clock)  # intake records, the tick pages
    service.dispatcher.drain()
    [call] = calls_to(simulator, officer.phone)
    assert " ".join(inc["code"]) in " ".join(call["say"])
    [entry] = [e for e in timeline(service, key, inc["id"]) if e["kind"] == "fallback" and e["tier"] == "street"]
    assert "发送失败" in entry["message"] and "gave up" in entry["message"]
