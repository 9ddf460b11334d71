"""The pipeline under a bad provider: failures, timeouts, a crash mid-send, rotation of auth tokens."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Set as AbstractSet
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.db import transaction
from app.notify import outbox
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.models import OutboxMessage
from tests.notify.conftest import Service, Simulator
from tests.notify.pages import enqueue_page


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def _page(session: Session, clock: ManualClock, i: int, *, to: str, tag: str) -> None:
    """The i-th level IV page of a run, coded `tag` + i."""
    code = f"{tag}{i:03d}"
    params = {"level": "IV", "category": "gas", "unit": "东铁匠营街道", "title": f"测试{i}", "code": code,
              "window_seconds": 300}  # fmt: skip
    outbox.enqueue(session, outbox.message(clock=clock, channel="sms", to=to, template="incident_page", params=params,
        dedup_key=f"{tag}:{i}", incident_id=i + 1, incident_code=code))  # fmt: skip


def _enqueue_many(engine: Engine, clock: ManualClock, n: int, *, bad: AbstractSet[int] = frozenset()) -> None:
    with transaction(engine) as session:
        for i in range(n):
            _page(session, clock, i, to="+8613600000000" if i in bad else f"+86137{i:08d}", tag="T")


def _run_until_settled(
    engine: Engine, clock: ManualClock, dispatcher: Dispatcher, simulator: Simulator, rounds: int = 60
) -> None:
    for _ in range(rounds):
        dispatcher.drain()
        pending = [r for r in _rows(engine) if r.status in ("queued", "sending")]
        if not pending:
            return
        # Past any backoff: the clock moves, nobody sleeps. Twenty minutes would also have let the provider
        # finish a request our client gave up on; here it may still be at it, so wait for that (real time).
        simulator.idle()
        clock.advance(minutes=20)
    raise AssertionError("messages still pending after every retry")


def _wait_receipts(engine: Engine, simulator: Simulator, *, unreceipted: int = 0, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        simulator.settle()
        if sum(r.status == "sent" for r in _rows(engine)) <= unreceipted:
            return
        time.sleep(0.05)


def test_under_failures_and_timeouts_every_message_ends_and_none_is_sent_twice(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    simulator.configure(failure_rate=0.30, timeout_rate=0.05, timeout_hold=3.0, undelivered_rate=0.05)
    bad = {5, 77}
    _enqueue_many(engine, clock, 150, bad=bad)
    simulator.configure(invalid_numbers={"+8613600000000"})

    _run_until_settled(engine, clock, service.dispatcher, simulator)
    _wait_receipts(engine, simulator)

    rows = _rows(engine)
    outcomes = Counter(r.status for r in rows)
    assert set(outcomes) <= {"delivered", "failed", "undelivered"}, outcomes
    for row in rows:
        if row.status != "delivered":
            assert row.last_error, f"message {row.id} ended {row.status} without a reason"
    assert {r.id for r in rows if r.error_class == "recipient_invalid"} == {rows[i].id for i in bad}
    assert simulator.state.duplicates() == {}
    counted = simulator.state.sends_by_key
    assert {str(r.id) for r in rows if r.status != "failed"} <= set(counted)
    assert simulator.state.injected["message_failure"] > 20 and simulator.state.injected["message_timeout"] > 0
    assert any(r.attempts > 1 and r.status == "delivered" for r in rows)


@pytest.fixture
def service_options() -> dict[str, Any]:
    return {"DUTYLINE_DISPATCH_LEASE_SECONDS": 60}


def test_a_dispatcher_that_dies_mid_send_loses_nothing_and_sends_nothing_twice(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    _enqueue_many(engine, clock, 20)
    crashed = service.dispatcher
    claimed = crashed.claim(12)
    # It got half of its batch out to Twilio, then the process was killed before recording anything;
    # the receipts for those six are lost too (nobody was listening), so only Twilio knows they went out.
    simulator.configure(send_callbacks=False)
    for message in claimed[:6]:
        crashed.channels["sms"].send(message)
    simulator.settle()
    simulator.configure(send_callbacks=True)

    replacement = Dispatcher(engine, clock=clock, channels=crashed.channels, config=DispatchConfig(lease_seconds=60))
    first = replacement.drain()
    assert first.claimed == 8  # only the unclaimed rows; the 12 are leased to the dead one
    clock.advance(seconds=61)
    second = replacement.drain()
    assert second.claimed == 12

    _wait_receipts(engine, simulator, unreceipted=6)
    rows = _rows(engine)
    # The six that went out before the crash were found at Twilio and adopted, not sent again.
    assert Counter(r.status for r in rows) == {"delivered": 14, "sent": 6}
    sids = {m["sid"] for m in simulator.state.messages}
    assert len(simulator.state.messages) == 20 and {r.provider_id for r in rows} == sids
    assert simulator.state.duplicates() == {}
    assert sum(r.attempts == 2 for r in rows) == 12


def test_a_message_retaken_after_a_crash_is_adopted_even_when_its_recipient_got_many_since(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    # Found by the crash drill (docs/reliability.md): the city duty officer receives a page for every incident,
    # so by the time a dead dispatcher's lease runs out, Twilio's newest 100 messages to that phone no longer
    # include the one it sent, and the retaken row was sent again.
    phone = "+8613800000001"
    with transaction(engine) as session:
        for i in range(151):
            _page(session, clock, i, to=phone, tag="B")
    crashed = service.dispatcher
    simulator.configure(send_callbacks=False)
    [lost] = crashed.claim(1)
    crashed.channels["sms"].send(lost)  # it went out, then the process died before recording it
    replacement = Dispatcher(engine, clock=clock, channels=crashed.channels, config=DispatchConfig(lease_seconds=60))
    assert replacement.drain().sent == 150  # the other pages to the same phone, sent after it
    clock.advance(seconds=61)
    retaken = replacement.drain()
    assert retaken.claimed == 1 and retaken.sent == 1
    assert simulator.state.duplicates() == {}
    assert len(simulator.state.messages) == 151


def test_restart_picks_up_queued_rows(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    page = enqueue_page(engine, clock, phone="+8613800000001", incident_id=5, code="R5T6")
    # A new process: a new dispatcher over the same database finds the row.
    fresh = Dispatcher(engine, clock=clock, channels=service.dispatcher.channels)
    assert fresh.drain().sent == 1
    assert fresh.drain().claimed == 0
    _wait_receipts(engine, simulator)
    assert _rows(engine)[0].id == page and _rows(engine)[0].status == "delivered"


def test_status_receipts_accept_any_rotated_token(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    service.app.state.twilio.auth_tokens.insert(0, "the-new-token")  # the new one signs; the old still accepted
    page = enqueue_page(engine, clock, phone="+8613800000001", incident_id=5, code="R5T6")
    service.dispatcher.drain()
    _wait_receipts(engine, simulator)
    assert _rows(engine)[0].status == "delivered"
    assert page == _rows(engine)[0].id
    clock.advance(timedelta(seconds=1))


def test_in_a_backlog_the_gravest_pages_go_first(engine: Engine, clock: ManualClock, service: Service) -> None:
    # A burst left more due than one round sends: level IV pages queued first, then a level I and a level III.
    fourth = [enqueue_page(engine, clock, phone=f"+8613700000{i:03d}", incident_id=i, code=f"F{i:03d}", level="IV")
              for i in range(4)]  # fmt: skip
    clock.advance(seconds=1)
    grave = enqueue_page(engine, clock, phone="+8613700000900", incident_id=900, code="G900", level="I")
    third = enqueue_page(engine, clock, phone="+8613700000901", incident_id=901, code="G901", level="III")
    order = []
    for _ in range(6):
        report = service.dispatcher.run_once(limit=1)
        assert report.claimed == 1
        order += [r.id for r in _rows(engine) if r.status in ("sent", "delivered") and r.id not in order]
    assert order == [grave, third, *fourth]
