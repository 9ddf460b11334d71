"""A call is placed once, even after an uncertain attempt (a timeout, a dispatcher that died mid-call): before
calling again the dispatcher asks Twilio for the calls it already placed to that number and adopts one."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from app.clock import ManualClock
from app.notify.channels.voice import VoiceChannel
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.models import OutboxMessage
from app.notify.providers.routing import RoutedChannel
from app.notify.providers.twilio import TwilioVoice
from tests.notify.conftest import SIM_DEFAULTS, Service, Simulator
from tests.notify.pages import enqueue_page


@pytest.fixture
def service_options() -> dict[str, Any]:
    return {"DUTYLINE_DISPATCH_LEASE_SECONDS": 60}


def _calls(engine: Engine, clock: ManualClock, n: int, *, phone: str | None = None) -> list[int]:
    return [
        enqueue_page(
            engine, clock, phone=phone or f"+86138{i:08d}", incident_id=i + 1, code=f"V{i:03d}", channel="voice"
        )
        for i in range(n)
    ]


def _twilio_voice(service: Service) -> VoiceChannel:
    routed = service.dispatcher.channels["voice"]
    assert isinstance(routed, RoutedChannel)
    provider = routed.providers["twilio"]
    assert isinstance(provider, TwilioVoice)
    return provider.channel


def _dead_replicas_channel(service: Service) -> VoiceChannel:
    """The voice channel of a replica that died: Twilio's request for the call's TwiML finds nobody there, so
    the call is never recorded by our answer callback either (only Twilio knows it was placed)."""
    live = _twilio_voice(service)
    dead = "http://127.0.0.1:9"
    return VoiceChannel(
        live.client, from_number=live.from_number, answer_url=f"{dead}/twilio/voice/answer", status_callback_url=None
    )


def _rows(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def test_a_dispatcher_that_dies_mid_call_places_no_call_twice(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    _calls(engine, clock, 10)
    crashed = service.dispatcher
    claimed = crashed.claim(6)
    dead = _dead_replicas_channel(service)
    for message in claimed[:4]:  # four calls placed, then the process was killed before recording them
        assert dead.send(message).ok
    simulator.settle()

    replacement = Dispatcher(engine, clock=clock, channels=crashed.channels, config=DispatchConfig(lease_seconds=60))
    assert replacement.drain().claimed == 4  # the rows nobody held
    clock.advance(seconds=61)
    retaken = replacement.drain()
    assert retaken.claimed == 6 and retaken.sent == 6
    simulator.settle()

    rows = _rows(engine)
    assert simulator.state.duplicates() == {}
    assert len(simulator.state.calls) == 10
    assert {r.provider_id for r in rows} == {c["sid"] for c in simulator.state.calls}
    assert sum(r.attempts == 2 for r in rows) == 6


def test_a_call_retaken_after_a_crash_is_adopted_among_many_to_the_same_leader(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    """The city leader gets a call for every grave incident; only the call nobody recorded is adopted."""
    leader = "+8613800000002"
    _calls(engine, clock, 12, phone=leader)
    crashed = service.dispatcher
    [lost] = crashed.claim(1)
    assert _dead_replicas_channel(service).send(lost).ok
    replacement = Dispatcher(engine, clock=clock, channels=crashed.channels, config=DispatchConfig(lease_seconds=60))
    assert replacement.drain().sent == 11
    clock.advance(seconds=61)
    retaken = replacement.drain()
    assert retaken.claimed == 1 and retaken.sent == 1
    simulator.settle()
    assert simulator.state.duplicates() == {}
    assert len(simulator.state.calls) == 12
    assert len({r.provider_id for r in _rows(engine)}) == 12


def test_calls_that_time_out_are_looked_up_not_placed_again(
    engine: Engine, clock: ManualClock, service: Service, simulator: Simulator
) -> None:
    simulator.configure(timeout_rate=0.4, timeout_hold=3.0, send_callbacks=False)
    _calls(engine, clock, 20)
    for _ in range(40):
        service.dispatcher.drain()
        if all(r.status not in ("queued", "sending") for r in _rows(engine)):
            break
        simulator.idle()
        clock.advance(minutes=20)
    rows = _rows(engine)
    assert simulator.state.injected["call_timeout"] > 0
    assert set(Counter(r.status for r in rows)) <= {"sent", "delivered"}
    assert simulator.state.duplicates() == {}
    assert len(simulator.state.calls) == 20


def test_the_simulator_lists_calls_like_twilio(
    service: Service, simulator: Simulator, engine: Engine, clock: ManualClock
) -> None:
    """The twilio library's calls.list: by To, From and start time (a date, or a time), newest first."""
    _calls(engine, clock, 3, phone="+8613800000002")
    _calls(engine, clock, 1, phone="+8613800000003")
    service.dispatcher.drain()
    simulator.settle()
    client = _twilio_voice(service).client
    listed = client.calls.list(to="+8613800000002", from_=SIM_DEFAULTS.service_number)
    assert len(listed) == 3 and all(c.to == "+8613800000002" for c in listed)
    assert [c.date_created for c in listed] == sorted((c.date_created for c in listed), reverse=True)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert len(client.calls.list(to="+8613800000002", start_time_after=today)) == 3
    assert client.calls.list(to="+8613800000002", start_time_after=today + timedelta(days=1)) == []
    assert len(client.calls.list(start_time_before=today + timedelta(days=1))) == 4
    assert client.calls.list(to="+8613800000009") == []
