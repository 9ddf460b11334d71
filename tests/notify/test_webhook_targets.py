"""Webhook URLs must not reach inside: refused when subscribed (422 naming `url`) and again when sent, after
resolving the name (it may have been re-pointed), unless DUTYLINE_WEBHOOK_ALLOW_PRIVATE=true."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import netguard
from app.auth.principal import Principal
from app.clock import ManualClock
from app.config import Settings
from app.db import transaction
from app.errors import Invalid
from app.main import create_app
from app.notify import webhooks
from app.notify.channels.webhook import WebhookChannel
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.models import OutboxMessage
from tests.factories import signed_in
from tests.notify.live import LiveServer

INSIDE = [
    "http://127.0.0.1:5432/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8000/",
    "http://localhost:8000/sim/reset",
    "http://LocalHost./x",
    "http://api.localhost/x",
    "http://10.0.0.8/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://[fd12:3456::1]/hook",  # unique-local
    "http://[fe80::1%25eth0]/hook",  # link-local with a zone
    "http://224.0.0.251/hook",  # multicast
    "http://[ff02::1]/hook",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
    "http://[::ffff:169.254.169.254]/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
]
PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("url", INSIDE)
def test_subscribing_an_inside_url_is_422_naming_url(
    url: str, client: TestClient, session: Session, clock: ManualClock
) -> None:
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post("/api/v1/webhook-subscriptions", json={"url": url}, headers=admin)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["url"]
    assert client.get("/api/v1/webhook-subscriptions", headers=admin).json()["total"] == 0


def test_allow_private_lets_an_intranet_receiver_subscribe(
    engine: Engine, clock: ManualClock, settings: Settings, session: Session
) -> None:
    allowed = settings.model_copy(update={"webhook_allow_private": True})
    with TestClient(create_app(allowed, engine=engine, clock=clock)) as c:
        admin = signed_in(c, session, clock, unit="110000", roles=["admin"])
        r = c.post("/api/v1/webhook-subscriptions", json={"url": "http://10.0.0.8/hook"}, headers=admin)
        assert r.status_code == 201, r.text


def test_a_name_that_resolves_inside_is_refused_when_subscribed(engine: Engine, clock: ManualClock) -> None:
    data = webhooks.SubscriptionCreate(url="https://hooks.example.net/in")
    with pytest.raises(Invalid) as refused, transaction(engine) as session:
        webhooks.create(
            session, clock=clock, actor=Principal.system("t"), data=data, resolver=lambda _h, _p: [PUBLIC, "10.1.2.3"]
        )
    assert refused.value.fields[0].field == "url" and "10.1.2.3" in refused.value.fields[0].message


class Counting:
    """A receiver that answers with an internal-looking page: nothing of it may reach `last_error`."""

    def __init__(self, status: int = 500) -> None:
        self.calls: list[str] = []
        self.status = status
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        self.calls.append(request.headers.get("host", ""))
        return Response("root:x:0:0 INTERNAL-SECRET-PAGE", status_code=self.status)


@pytest.fixture
def receiver() -> Iterator[tuple[Counting, LiveServer]]:
    counting = Counting()
    server = LiveServer().start(counting.app)
    yield counting, server
    server.stop()


def _deliveries(engine: Engine) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.exec(select(OutboxMessage).where(OutboxMessage.channel == "webhook")).all())


def _subscribe_and_publish(engine: Engine, clock: ManualClock, url: str, *, allow_private: bool = False) -> None:
    with transaction(engine) as session:
        data = webhooks.SubscriptionCreate(url=url)
        # Stored while the name resolved to a public address.
        webhooks.create(
            session,
            clock=clock,
            actor=Principal.system("t"),
            data=data,
            allow_private=allow_private,
            resolver=lambda _h, _p: [PUBLIC],
        )
    with transaction(engine) as session:
        webhooks.publish(
            session,
            clock=clock,
            event_type="incident.created",
            incident={"id": 1, "code": "F3K7", "severity": "III", "category": "fire"},
            category="fire",
            severity="III",
            unit_path="110000/110106/110106001",
            event_id="evt_1",
        )


def _dispatch(engine: Engine, clock: ManualClock, channel: WebhookChannel) -> None:
    dispatcher = Dispatcher(
        engine, clock=clock, channels={"webhook": channel}, config=DispatchConfig(concurrency=2, max_attempts=1)
    )
    dispatcher.drain()


def test_a_name_re_pointed_inside_is_refused_at_send_time_and_never_contacted(
    engine: Engine, clock: ManualClock, receiver: tuple[Counting, LiveServer]
) -> None:
    counting, server = receiver
    _subscribe_and_publish(engine, clock, f"http://hooks.example.net:{server.port}/hook")

    def rebound(host: str, _port: int) -> Sequence[str]:
        return [PUBLIC, "127.0.0.1"] if host == "hooks.example.net" else []

    _dispatch(engine, clock, WebhookChannel(clock=clock, timeout=30, resolver=rebound))
    [row] = _deliveries(engine)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("refused target") and "127.0.0.1" in row.last_error
    assert counting.calls == []


def test_the_sender_connects_to_the_address_it_checked(
    engine: Engine, clock: ManualClock, receiver: tuple[Counting, LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting, server = receiver
    _subscribe_and_publish(engine, clock, f"http://hooks.example.net:{server.port}/hook")
    # The system resolver does not know this name: the only way to reach the receiver is the checked address.
    pinned = netguard.pin(
        f"http://hooks.example.net:{server.port}/hook", allow_private=False, resolver=lambda _h, _p: [PUBLIC]
    )
    assert pinned.url == f"http://{PUBLIC}:{server.port}/hook"
    assert pinned.headers == {"Host": f"hooks.example.net:{server.port}"}
    tls = netguard.pin("https://hooks.example.net/h", allow_private=False, resolver=lambda _h, _p: [PUBLIC])
    assert tls.url == f"https://{PUBLIC}:443/h" and tls.extensions == {"sni_hostname": "hooks.example.net"}

    # Only here: loopback passes the check, so the connection to the checked address can be observed.
    original = netguard.refusal
    monkeypatch.setattr(netguard, "refusal", lambda a: None if str(a) == "127.0.0.1" else original(a))
    _dispatch(engine, clock, WebhookChannel(clock=clock, timeout=30, resolver=lambda _h, _p: ["127.0.0.1"]))
    assert counting.calls == [f"hooks.example.net:{server.port}"]  # reached through 127.0.0.1, named by Host
    [row] = _deliveries(engine)
    # The receiver's body is not echoed: only the status.
    assert row.last_error is not None and row.last_error.endswith("HTTP 500 Internal Server Error")
    assert "SECRET" not in row.last_error


@pytest.mark.parametrize("url", INSIDE)
def test_pin_refuses_every_inside_form(url: str) -> None:
    with pytest.raises(netguard.Refused):
        netguard.pin(url, allow_private=False, resolver=lambda _h, _p: ["127.0.0.1"])


def test_allow_private_sends_to_an_inside_receiver(
    engine: Engine, clock: ManualClock, receiver: tuple[Counting, LiveServer]
) -> None:
    counting, server = receiver
    counting.status = 204
    _subscribe_and_publish(engine, clock, f"{server.url}/hook", allow_private=True)
    _dispatch(engine, clock, WebhookChannel(clock=clock, timeout=30, allow_private=True))
    [row] = _deliveries(engine)
    assert row.status == "delivered" and len(counting.calls) == 1
