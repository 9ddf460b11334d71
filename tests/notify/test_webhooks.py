from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.clock import ManualClock
from app.db import transaction
from app.notify import webhooks
from app.notify.channels.webhook import WebhookChannel
from app.notify.dispatcher import DispatchConfig, Dispatcher
from app.notify.models import OutboxMessage
from tests.factories import make_agency, signed_in
from tests.notify.live import LiveServer

INCIDENT = {"id": 31, "code": "F3K7", "title": "某医院住院部起火", "severity": "III", "category": "hospital"}
FENGTAI_STREET = "110000/110106/110106001"


def _agency_key(
    client: TestClient, session: Session, clock: ManualClock, code: str, unit: str | None = None
) -> dict[str, str]:
    make_agency(session, clock, code=code, unit=unit)
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    r = client.post(
        f"/api/v1/agencies/{code}/api-keys", json={"scopes": ["webhooks:write", "webhooks:read"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def test_an_agency_manages_its_own_subscriptions(client: TestClient, session: Session, clock: ManualClock) -> None:
    fire = _agency_key(client, session, clock, "119")
    gas = _agency_key(client, session, clock, "gas")

    r = client.post(
        "/api/v1/webhook-subscriptions",
        json={"url": "https://cad.example/hooks", "categories": ["fire"], "min_severity": "III"},
        headers=fire,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["agency_code"] == "119"
    assert created["event_types"] == list(webhooks.EVENT_TYPES)

    listed = client.get("/api/v1/webhook-subscriptions", headers=fire).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]
    assert client.get("/api/v1/webhook-subscriptions", headers=gas).json()["items"] == []
    assert client.delete(f"/api/v1/webhook-subscriptions/{created['id']}", headers=gas).status_code == 404
    assert client.delete(f"/api/v1/webhook-subscriptions/{created['id']}", headers=fire).status_code == 204
    assert client.get("/api/v1/webhook-subscriptions", headers=fire).json()["items"] == []

    audit_secret = session.exec(select(OutboxMessage)).all()
    assert audit_secret == []
    admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
    entries = client.get("/api/v1/audit?object_type=webhook_subscription", headers=admin).json()
    assert len(entries["items"]) == 2 and created["secret"] not in json.dumps(entries)


def test_bad_subscriptions_are_422_naming_the_field(client: TestClient, session: Session, clock: ManualClock) -> None:
    fire = _agency_key(client, session, clock, "119")
    for body, field, status in [
        ({"url": "ftp://x"}, "url", 422),
        ({"url": "https://x", "event_types": ["incident.exploded"]}, "event_types", 422),
        ({"url": "https://x", "min_severity": "V"}, "min_severity", 422),
        ({"url": "https://x", "unit_code": "999999"}, "unit_code", 404),
        ({"url": "https://x", "secret": "short"}, "secret", 422),
    ]:
        r = client.post("/api/v1/webhook-subscriptions", json=body, headers=fire)
        assert r.status_code == status, (body, r.text)
        assert r.json()["errors"][0]["field"] == field


def test_a_scoped_agency_hears_only_its_subtree(client: TestClient, session: Session, clock: ManualClock) -> None:
    local = _agency_key(client, session, clock, "ft-fire", unit="110106")
    r = client.post("/api/v1/webhook-subscriptions", json={"url": "https://x.example"}, headers=local)
    assert r.status_code == 201 and r.json()["unit_code"] == "110106"
    r = client.post(
        "/api/v1/webhook-subscriptions", json={"url": "https://x.example", "unit_code": "110105"}, headers=local
    )
    assert r.status_code == 403
    viewer = signed_in(client, session, clock, unit="110000", roles=["viewer"])
    assert client.post("/api/v1/webhook-subscriptions", json={"url": "https://x"}, headers=viewer).status_code == 403


def _subscribe(engine: Engine, clock: ManualClock, **fields: Any) -> int:
    from app.auth.principal import Principal

    data = webhooks.SubscriptionCreate(url=fields.pop("url", "https://example.invalid/h"), **fields)
    with transaction(engine) as session:
        # The receivers of these tests listen on loopback (DUTYLINE_WEBHOOK_ALLOW_PRIVATE=true in production terms).
        created = webhooks.create(session, clock=clock, actor=Principal.system("test"), data=data, allow_private=True)
    return created.id


def _publish(engine: Engine, clock: ManualClock, **overrides: Any) -> int:
    args: dict[str, Any] = {
        "event_type": "incident.created",
        "incident": INCIDENT,
        "category": "hospital",
        "severity": "III",
        "unit_path": FENGTAI_STREET,
    } | overrides
    with transaction(engine) as session:
        return webhooks.publish(session, clock=clock, **args)


def test_publish_applies_the_filters(engine: Engine, clock: ManualClock, session: Session) -> None:
    make_agency(session, clock, code="health", kind="health")
    everything = _subscribe(engine, clock)
    fires_only = _subscribe(engine, clock, categories=["fire"])
    grave_only = _subscribe(engine, clock, min_severity="II")
    chaoyang = _subscribe(engine, clock, unit_code="110105")
    fengtai = _subscribe(engine, clock, unit_code="110106")
    closings = _subscribe(engine, clock, event_types=["incident.closed"])
    health = _subscribe(engine, clock, categories=["flood"], agency_code="health")

    assert _publish(engine, clock) == 2
    assert _publish(engine, clock, agency_codes=["health"]) == 3  # the rules route it to health anyway
    assert _publish(engine, clock, severity="I", category="fire") == 4
    assert _publish(engine, clock, event_type="incident.closed") == 3
    with Session(engine) as s:
        got = Counter(row.subscription_id for row in s.exec(select(OutboxMessage)).all())
    assert got == {everything: 4, fengtai: 4, health: 1, fires_only: 1, grave_only: 1, closings: 1}
    assert chaoyang not in got
    with pytest.raises(Exception, match="event_type"):
        _publish(engine, clock, event_type="incident.exploded")


class Receiver:
    """A subscriber's endpoint: verifies every signature, answers badly now and then, drops duplicates."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.calls = 0
        self.bad_signatures = 0
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    def verify(self, header: str, body: bytes) -> bool:
        parts = dict(item.split("=", 1) for item in header.split(","))
        expected = hmac.new(self.secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.calls += 1
            n = self.calls
        if not self.verify(request.headers["X-Signature"], body):
            self.bad_signatures += 1
            return Response(status_code=400)
        event_id = request.headers["X-Webhook-Id"]
        assert json.loads(body)["id"] == event_id
        if n % 5 == 1:
            return Response(status_code=503)
        if n % 7 == 2:
            return Response(status_code=429, headers={"Retry-After": "30"})
        if n % 11 == 3:
            await asyncio.sleep(0.6)  # past the sender's timeout, but the receiver got it
        with self.lock:
            self.seen[event_id] += 1
        return Response(status_code=204)


def test_a_receiver_verifies_every_signature_and_sees_each_event(
    engine: Engine, clock: ManualClock, client: TestClient, session: Session
) -> None:
    secret = "whsec_receiver-test-secret-0123456789"
    receiver = Receiver(secret)
    server = LiveServer().start(receiver.app)
    try:
        sub = _subscribe(engine, clock, url=f"{server.url}/hook", secret=secret)
        events = {f"evt_{i}" for i in range(40)}
        for event_id in sorted(events):
            _publish(engine, clock, event_id=event_id)
        dispatcher = Dispatcher(
            engine,
            clock=clock,
            channels={"webhook": WebhookChannel(clock=clock, timeout=0.3, allow_private=True)},
            config=DispatchConfig(concurrency=8, max_attempts=10),
        )
        for _ in range(20):
            dispatcher.drain()
            clock.advance(minutes=30)
        with Session(engine) as s:
            rows = s.exec(select(OutboxMessage).where(OutboxMessage.subscription_id == sub)).all()
        assert {r.status for r in rows} == {"delivered"}
        assert receiver.bad_signatures == 0
        assert set(receiver.seen) == events  # after de-duplication by X-Webhook-Id, each event once
        assert receiver.calls > len(events)  # there were retries

        # A dead endpoint: 410 dead-letters at once; a replay sends it again with the same event id.
        gone = _subscribe(engine, clock, url=f"{server.url}/nowhere", secret=secret)
        _publish(engine, clock, event_id="evt_dead")
        dispatcher.drain()
        with Session(engine) as s:
            dead = s.exec(select(OutboxMessage).where(OutboxMessage.subscription_id == gone)).one()
        assert dead.status == "failed" and dead.last_error and dead.last_error.startswith("HTTP 404")

        admin = signed_in(client, session, clock, unit="110000", roles=["admin"])
        assert client.post(f"/api/v1/webhook-deliveries/{dead.id}/replay", headers=admin).status_code == 202
        assert client.post(f"/api/v1/webhook-deliveries/{dead.id}/replay", headers=admin).status_code == 409
        deliveries = client.get(f"/api/v1/webhook-subscriptions/{gone}/deliveries", headers=admin).json()
        assert deliveries[0]["status"] == "queued" and deliveries[0]["attempts"] == 0
        assert client.post("/api/v1/webhook-deliveries/999999/replay", headers=admin).status_code == 404
    finally:
        server.stop()
