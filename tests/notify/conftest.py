"""Fixtures for the notification pipeline: the Twilio simulator and our app served live on loopback,
and phones that read their SMS from the simulator and reply to it, like a duty officer would."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from app.clock import ManualClock
from app.config import Settings
from app.main import create_app
from app.notify.dispatcher import Dispatcher
from app.notify.simulator import SimulatorConfig, SimulatorState, standalone
from tests.notify.live import LiveServer

# Random credentials (and control token), the same for the whole run: the service fixture signs in with them.
SIM_DEFAULTS = SimulatorConfig()


@dataclass
class Simulator:
    url: str  # the Twilio API base URL (…/sim)
    state: SimulatorState
    http: httpx.Client

    def configure(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state.config, key, value)

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until no send request is still being handled (one held past the client's timeout included)."""
        self._wait_for(lambda: self.state.requests_in_flight, timeout)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the simulator has sent every callback it owes (they run in the background)."""
        self._wait_for(lambda: self.state.pending_tasks, timeout)

    @staticmethod
    def _wait_for(busy: Callable[[], int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while busy() and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture(scope="session")
def _simulator_server() -> Iterator[tuple[str, SimulatorState]]:
    app, state = standalone(replace(SIM_DEFAULTS))
    server = LiveServer().start(app)
    yield f"{server.url}/sim", state
    server.stop()


@pytest.fixture
def simulator(_simulator_server: tuple[str, SimulatorState]) -> Iterator[Simulator]:
    url, state = _simulator_server
    state.reset()
    for key, value in vars(replace(SIM_DEFAULTS, seed=7)).items():
        setattr(state.config, key, value)
    state.rng.seed(7)
    control = {"Authorization": f"Bearer {SIM_DEFAULTS.control_token}"}
    with httpx.Client(base_url=url, timeout=10, headers=control) as http:
        yield Simulator(url=url, state=state, http=http)
    state.reset()


@dataclass
class Service:
    """Our app, served live, talking to the simulator as its Twilio."""

    url: str
    app: FastAPI
    settings: Settings

    @property
    def dispatcher(self) -> Dispatcher:
        dispatcher: Dispatcher = self.app.state.dispatcher
        return dispatcher


@pytest.fixture
def service_options() -> dict[str, Any]:
    """Extra settings for the `service` fixture; a test module overrides it."""
    return {}


@pytest.fixture
def service(
    engine: Engine,
    clock: ManualClock,
    database_url: str,
    simulator: Simulator,
    service_options: dict[str, Any],
) -> Iterator[Service]:
    server = LiveServer()
    options: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "DUTYLINE_SECRET_KEY": "test-secret-key-not-for-production",
        "DUTYLINE_LOG_FORMAT": "text",
        "PUBLIC_BASE_URL": server.url,
        "TWILIO_ACCOUNT_SID": SIM_DEFAULTS.account_sid,
        "TWILIO_AUTH_TOKEN": SIM_DEFAULTS.auth_token,
        "TWILIO_FROM_NUMBER": SIM_DEFAULTS.service_number,
        "TWILIO_API_BASE_URL": simulator.url,
        "TWILIO_TIMEOUT_SECONDS": 1.5,  # well under the simulator's timeout_hold in the tests that inject timeouts
        "DUTYLINE_SIMULATOR": "off",
        "DUTYLINE_DISPATCHER": False,
        "DUTYLINE_SMS_DAILY_BUDGET": 1000,  # as in tests/conftest.py
        "DUTYLINE_DISPATCH_CONCURRENCY": 8,
        # These tests exercise Twilio for every number; the mainland routes have tests of their own.
        "DUTYLINE_SMS_ROUTES": "*=twilio",
        "DUTYLINE_VOICE_ROUTES": "*=twilio",
    } | service_options
    settings = Settings(**options)
    app = create_app(settings, engine=engine, clock=clock)
    server.start(app)
    simulator.configure(inbound_url=f"{server.url}/twilio/sms/inbound")
    yield Service(url=server.url, app=app, settings=settings)
    simulator.settle()
    server.stop()


class Phone:
    """One mobile phone, as the simulator sees it. Reads like the duty office:
    `phone("+86…").expect_sms("III级", "回复1签收").reply("1").expect_sms("已签收")`."""

    def __init__(self, number: str, service: Service, simulator: Simulator, seen: set[str]) -> None:
        self.number = number
        self.service = service
        self.simulator = simulator
        self.seen = seen  # shared by all phones of the test: what somebody expected
        self.last_call: dict[str, Any] | None = None

    def _unread(self) -> list[dict[str, Any]]:
        r = self.simulator.http.get("/messages", params={"to": self.number})
        r.raise_for_status()
        return [m for m in r.json() if m["sid"] not in self.seen]

    def expect_sms(self, *fragments: str, timeout: float = 5.0) -> Phone:
        deadline = time.monotonic() + timeout
        while True:
            self.service.dispatcher.drain()
            unread = self._unread()
            for message in unread:
                if all(f in message["body"] for f in fragments):
                    self.seen.add(message["sid"])
                    return self
            if time.monotonic() > deadline:
                bodies = [m["body"] for m in unread]
                pytest.fail(f"{self.number} got no SMS with {fragments!r}; unread: {bodies!r}")
            time.sleep(0.02)

    def reply(self, text: str) -> Phone:
        r = self.simulator.http.post("/messages", json={"from": self.number, "body": text})
        r.raise_for_status()
        assert r.json()["status"] == 200, r.json()
        return self

    def expect_call(self, *fragments: str, timeout: float = 5.0) -> Phone:
        deadline = time.monotonic() + timeout
        while True:
            self.service.dispatcher.drain()
            calls = self.simulator.http.get("/calls", params={"to": self.number}).json()
            for call in calls:
                said = " ".join(call["say"])
                if call["sid"] not in self.seen and call["say"] and all(f in said for f in fragments):
                    self.seen.add(call["sid"])
                    self.last_call = call
                    return self
            if time.monotonic() > deadline:
                pytest.fail(f"{self.number} got no call saying {fragments!r}; calls: {calls!r}")
            time.sleep(0.02)

    def press(self, digits: str, *expect_said: str) -> Phone:
        assert self.last_call is not None, "press() needs a call: expect_call() first"
        r = self.simulator.http.post(f"/calls/{self.last_call['sid']}/digits", json={"digits": digits})
        r.raise_for_status()
        said = " ".join(r.json()["say"])
        assert all(f in said for f in expect_said), said
        return self


@pytest.fixture
def phone(service: Service, simulator: Simulator) -> Iterator[Callable[[str], Phone]]:
    seen: set[str] = set()
    phones: dict[str, Phone] = {}

    def make(number: str) -> Phone:
        return phones.setdefault(number, Phone(number, service, simulator, seen))

    yield make
    service.dispatcher.drain()
    simulator.settle()
    with simulator.state.lock:
        unexpected = [(m["to"], m["body"]) for m in simulator.state.messages if m["sid"] not in seen]
        unexpected += [(c["to"], " ".join(c["say"])) for c in simulator.state.calls if c["sid"] not in seen]
    if unexpected:
        pytest.fail(f"messages nobody expected: {unexpected!r}")
